// toml-test decoder (https://github.com/toml-lang/toml-test): reads a TOML document from
// standard input, writes its tagged JSON form to standard output. Invalid input (including
// invalid UTF-8) exits with status 1 and the located error on standard error.

using System.Text.Encodings.Web;
using System.Text.Json;
using Propolis.Standalone.Toml;

byte[] input;
using (var stdin = Console.OpenStandardInput())
using (var buffer = new MemoryStream())
{
    stdin.CopyTo(buffer);
    input = buffer.ToArray();
}

TomlTable document;
try
{
    document = TomlParser.ParseUtf8(input, "<stdin>");
}
catch (TomlException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

using (var stdout = Console.OpenStandardOutput())
using (var writer = new Utf8JsonWriter(stdout, new JsonWriterOptions
{
    Indented = true,
    Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
}))
{
    TomlTaggedJson.Write(writer, document);
}
Console.Out.WriteLine();
return 0;

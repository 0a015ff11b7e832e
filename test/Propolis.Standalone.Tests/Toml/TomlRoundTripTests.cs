// Properties over every valid toml-test document: writing the tree back out and reading it
// again gives the same tree (and the written text is a fixed point); the same document with
// CRLF line endings gives the same tree.

using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Tests.Toml;

public class TomlRoundTripTests
{
    public static TheoryData<string> ValidCases => TomlTestSuiteTests.ValidCases;

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void WrittenDocumentReadsBackToTheSameTree(string name)
    {
        TomlTable original = TomlParser.ParseUtf8(TomlTestSuite.ReadToml(name));
        string written = TomlTestWriter.Write(original);
        TomlTable reread = TomlParser.Parse(written);
        Assert.Equal(TomlTaggedJson.ToJson(original), TomlTaggedJson.ToJson(reread));
        Assert.Equal(written, TomlTestWriter.Write(reread));
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void CrLfLineEndingsGiveTheSameTree(string name)
    {
        string text = Encoding.UTF8.GetString(TomlTestSuite.ReadToml(name));
        var crlf = new StringBuilder(text.Length + 64);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
                crlf.Append('\r');
            crlf.Append(text[i]);
        }
        Assert.Equal(
            TomlTaggedJson.ToJson(TomlParser.Parse(text)),
            TomlTaggedJson.ToJson(TomlParser.Parse(crlf.ToString())));
    }
}

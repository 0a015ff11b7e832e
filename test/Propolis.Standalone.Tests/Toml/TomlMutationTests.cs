// A deterministic mutation fuzzer run as a unit test: damaged versions of every valid
// toml-test document either parse or fail with a TomlException located inside the text,
// never with another exception.

using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Tests.Toml;

public class TomlMutationTests
{
    private const int MutationsPerDocument = 40;

    // Characters that matter to the grammar, plus a few that must be rejected.
    private static readonly string[] Fragments =
    [
        "\"", "'", "\"\"\"", "'''", "[", "]", "[[", "]]", "{", "}", ",", ".", "=", "#", "\\", "\\u", "\\U0010FFFF",
        "\n", "\r", "\r\n", " ", "\t", "\0", "\u007F", "\u001F", "_", "+", "-", ":", "e", "0x", "0", "9",
        "T", "Z", "inf", "nan", "true", "\uD800", "\U0001F600", "\u00E9", "\uFEFF", "a.b", "[a]",
    ];

    public static TheoryData<string> ValidCases => TomlTestSuiteTests.ValidCases;

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void MutatedDocumentsFailOnlyWithLocatedTomlExceptions(string name)
    {
        string text = Encoding.UTF8.GetString(TomlTestSuite.ReadToml(name));
        var random = new Random(StableHash(name));
        for (int i = 0; i < MutationsPerDocument; i++)
        {
            string mutated = Mutate(text, random);
            try
            {
                TomlTable document = TomlParser.Parse(mutated);
                // Whatever parses must also convert (no lone surrogates, no malformed values).
                _ = TomlTaggedJson.ToUtf8Bytes(document);
            }
            catch (TomlException e)
            {
                int lines = mutated.Count(c => c == '\n') + 1;
                Assert.True(e.Position.Line >= 1 && e.Position.Line <= lines && e.Position.Column >= 1,
                    $"{name} mutation {i}: position {e.Position} outside the text ({lines} lines): {e.Message}");
            }
            catch (Exception e)
            {
                Assert.Fail($"{name} mutation {i} threw {e.GetType().Name}: {e.Message}\n--- input ---\n{mutated}");
            }
        }
    }

    private static string Mutate(string text, Random random)
    {
        var sb = new StringBuilder(text);
        int edits = 1 + random.Next(3);
        for (int e = 0; e < edits; e++)
        {
            int at = sb.Length == 0 ? 0 : random.Next(sb.Length + 1);
            switch (random.Next(4))
            {
                case 0 when sb.Length > 0 && at < sb.Length:
                    sb.Remove(at, Math.Min(1 + random.Next(4), sb.Length - at));
                    break;
                case 1 when sb.Length > 0 && at < sb.Length:
                    // Duplicate a short run, e.g. a key or a whole line.
                    int length = Math.Min(1 + random.Next(40), sb.Length - at);
                    sb.Insert(at, sb.ToString(at, length));
                    break;
                default:
                    sb.Insert(at, Fragments[random.Next(Fragments.Length)]);
                    break;
            }
        }
        return sb.ToString();
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = (int)2166136261;
            foreach (char c in s)
                h = (h ^ c) * 16777619;
            return h;
        }
    }
}

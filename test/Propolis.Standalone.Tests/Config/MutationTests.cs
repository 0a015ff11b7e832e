using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;

namespace Propolis.Standalone.Tests.Config;

/// <summary>Damaged configurations never escape as anything but located errors: whatever
/// the edit, loading either succeeds (and the tree prints) or throws ConfigException whose
/// every error carries FILE:LINE:COL.</summary>
public sealed class MutationTests : IDisposable
{
    private readonly ConfigFixture _f = new();

    public void Dispose() => _f.Dispose();

    private static readonly string[] Tokens =
    {
        "=", "\"", "[", "]", "[[", "{", "}", ",", ".", "\n", "#", "0", "-1", "3.5", "true", "x",
        "\"\"", "\"0.1.0\"", "\"0.4.0\"", "9223372036854775807", "1979-05-27", "[]", "{ a = 1 }",
        "\"\\u0000\"", "\"ubuntu\"", "\"my_crucible\"", "cpus", "type", "driver", "block_dev",
    };

    [Fact]
    public void RandomEditsOfTheSeedYieldLocatedErrorsOrAValidMachine()
    {
        var seed = ValidConfigTests.SeedToml(_f);
        var rng = new Random(20261122);
        int valid = 0, invalid = 0;
        for (int i = 0; i < 1500; i++)
        {
            var text = Mutate(seed, rng);
            try
            {
                var config = _f.Load(text);
                Assert.NotEmpty(SpecPrinter.Format(MachineSpec.From(config, "./ttya")));
                valid++;
            }
            catch (ConfigException e)
            {
                Assert.NotEmpty(e.Errors);
                foreach (var error in e.Errors)
                {
                    Assert.True(error.Position.IsKnown, $"unlocated error for edit {i}: {error}\n{text}");
                    Assert.StartsWith("vm.toml:", error.ToString());
                }
                invalid++;
            }
        }
        Assert.True(valid > 0 && invalid > 0, $"{valid} valid, {invalid} invalid");
    }

    private static string Mutate(string text, Random rng)
    {
        int edits = rng.Next(1, 4);
        for (int e = 0; e < edits; e++)
        {
            int at = rng.Next(text.Length);
            switch (rng.Next(4))
            {
                case 0:
                    text = text.Remove(at, Math.Min(rng.Next(1, 12), text.Length - at));
                    break;
                case 1:
                    text = text.Insert(at, Tokens[rng.Next(Tokens.Length)]);
                    break;
                case 2:
                {
                    var lines = text.Split('\n').ToList();
                    int a = rng.Next(lines.Count), b = rng.Next(lines.Count);
                    (lines[a], lines[b]) = (lines[b], lines[a]);
                    text = string.Join('\n', lines);
                    break;
                }
                default:
                {
                    var lines = text.Split('\n').ToList();
                    int a = rng.Next(lines.Count);
                    lines.Insert(rng.Next(lines.Count), lines[a]);
                    text = string.Join('\n', lines);
                    break;
                }
            }
        }
        return text;
    }
}

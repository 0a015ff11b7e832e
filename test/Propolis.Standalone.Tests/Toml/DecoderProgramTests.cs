using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace Propolis.Standalone.Tests.Toml;

/// <summary>Runs the real toml-test decoder program (test/TomlDecoder) over every TOML 1.0
/// case, as toml-test's own runner would: the TOML on stdin, the tagged JSON on stdout,
/// exit status 1 for an invalid document.</summary>
public class DecoderProgramTests
{
    private readonly ITestOutputHelper _output;

    public DecoderProgramTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void EveryTomlOneCasePassesThroughTheDecoderProgram()
    {
        string decoder = FindDecoder();
        var failures = new ConcurrentBag<string>();
        var cases = TomlTestSuite.Cases("valid").Select(c => (Kind: "valid", Name: c))
            .Concat(TomlTestSuite.Cases("invalid").Select(c => (Kind: "invalid", Name: c)))
            .ToList();

        Parallel.ForEach(cases, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount) }, c =>
        {
            var (status, stdout, stderr) = RunDecoder(decoder, TomlTestSuite.ReadToml(c.Name));
            if (c.Kind == "invalid")
            {
                if (status != 1)
                    failures.Add($"{c.Name}: exit status {status} for an invalid document (want 1)");
                else if (stderr.Trim().Length == 0)
                    failures.Add($"{c.Name}: rejected without a message on stderr");
                return;
            }
            if (status != 0)
            {
                failures.Add($"{c.Name}: exit status {status} for a valid document: {stderr.Trim()}");
                return;
            }
            try
            {
                using var expected = JsonDocument.Parse(TomlTestSuite.ReadExpectedJson(c.Name));
                using var actual = JsonDocument.Parse(stdout);
                string? diff = TaggedJsonComparer.Compare(expected.RootElement, actual.RootElement);
                if (diff is not null)
                    failures.Add($"{c.Name}: {diff}");
            }
            catch (JsonException e)
            {
                failures.Add($"{c.Name}: the decoder printed invalid JSON: {e.Message}");
            }
        });

        _output.WriteLine($"{cases.Count - failures.Count}/{cases.Count} cases passed through {decoder}");
        Assert.True(cases.Count > 700, $"expected the full TOML 1.0 case list, found {cases.Count} cases");
        Assert.True(failures.IsEmpty, $"{failures.Count} cases failed:\n" + string.Join("\n", failures.OrderBy(f => f)));
    }

    private static (int Status, string Stdout, string Stderr) RunDecoder(string decoderDll, byte[] input)
    {
        var psi = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(decoderDll);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.BaseStream.Write(input);
        p.StandardInput.Close();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string DotnetHost()
    {
        string? self = Environment.ProcessPath;
        return self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
    }

    /// <summary>test/TomlDecoder's build output for the configuration this test was built in
    /// (the test project references it, so it is built first).</summary>
    private static string FindDecoder()
    {
        // .../test/Propolis.Standalone.Tests/bin/<Configuration>/<tfm>/
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string tfm = baseDir.Name;
        string configuration = baseDir.Parent!.Name;
        string testDir = baseDir.Parent!.Parent!.Parent!.Parent!.FullName;
        string dll = Path.Combine(testDir, "TomlDecoder", "bin", configuration, tfm, "toml-decoder.dll");
        Assert.True(File.Exists(dll), $"the decoder program was not built: {dll} is missing");
        return dll;
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Propolis.Standalone.Tests.Config;

/// <summary>The command line, run in-process: output streams and exit codes.</summary>
public sealed class CliTests : IDisposable
{
    private readonly ConfigFixture _f = new();
    private readonly Dictionary<string, string> _env = new();
    private LogLevel? _level;

    public void Dispose() => _f.Dispose();

    private (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        int code = Cli.Run(args, stdout, stderr, name => _env.GetValueOrDefault(name), level =>
        {
            _level = level;
            return NullLoggerFactory.Instance;
        });
        return (code, stdout.ToString(), stderr.ToString());
    }

    private string WriteSeed() => _f.WriteText("vm.toml", ValidConfigTests.SeedToml(_f));

    [Fact]
    public void CheckPrintsTheTreeAndExitsZero()
    {
        var (code, stdout, stderr) = Run(WriteSeed(), "--check");
        Assert.Equal("", stderr);
        Assert.Equal(0, code);
        Assert.Equal(ValidConfigTests.SeedTree(_f), stdout);
    }

    [Fact]
    public void ConsoleOptionNamesTheSocketInTheTree()
    {
        var (code, stdout, _) = Run(WriteSeed(), "--check", "--console", "/run/vm/ttya");
        Assert.Equal(0, code);
        Assert.Contains("├─ 0.1.0  piix3 lpc (chipset)  COM1 -> /run/vm/ttya\n", stdout);
    }

    [Fact]
    public void InvalidConfigPrintsEveryErrorAndExitsTwo()
    {
        var path = _f.WriteText("bad.toml", """
            [main]
            name = "vm"
            cpus = 99
            memory = 512
            kernel = "vmlinuz"
            colour = "red"
            """);
        var (code, stdout, stderr) = Run(path, "--check");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal(
            $"{path}:3:8: 'cpus' must be between 1 and 32, found 99\n" +
            $"{path}:6:1: unknown key 'colour' in [main]\n" +
            $"propolis-standalone: {path}: 2 errors; nothing was started\n", stderr);
    }

    [Fact]
    public void TomlSyntaxErrorExitsTwoWithLocation()
    {
        var path = _f.WriteText("syntax.toml", "[main\nname = \"vm\"\n");
        var (code, _, stderr) = Run(path, "--check");
        Assert.Equal(2, code);
        Assert.StartsWith($"{path}:1:", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void MissingConfigFileExitsTwo()
    {
        var path = _f.PathOf("absent.toml");
        var (code, stdout, stderr) = Run(path);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal($"propolis-standalone: cannot read {path}: no such file\n", stderr);
    }

    [Fact]
    public void ConfigThatIsADirectoryExitsTwo()
    {
        var (code, _, stderr) = Run(_f.Dir, "--check");
        Assert.Equal(2, code);
        Assert.Equal($"propolis-standalone: cannot read {_f.Dir}: it is a directory\n", stderr);
    }

    [Fact]
    public void EmptyConfigPathExitsTwo()
    {
        var (code, _, stderr) = Run("", "--check");
        Assert.Equal(2, code);
        Assert.Equal("propolis-standalone: cannot read '': not a valid path\n", stderr);
    }

    [Fact]
    public void ConfigThatIsNotUtf8ExitsTwo()
    {
        var path = _f.PathOf("latin1.toml");
        File.WriteAllBytes(path, new byte[] { (byte)'#', 0xE9, (byte)'\n' });
        var (code, _, stderr) = Run(path, "--check");
        Assert.Equal(2, code);
        Assert.Equal($"propolis-standalone: cannot read {path}: not valid UTF-8\n", stderr);
    }

    [Fact]
    public void WithoutCheckDevicesThisBuildCannotRunAreNamedAndNothingStarts()
    {
        // Every device of the seed runs; a vsock device does not yet. The refusal comes before
        // any device is built, so no downstairs is contacted and no TAP is made.
        var config = _f.WriteText("vm.toml", ValidConfigTests.SeedToml(_f) + """

            [dev.vsock0]
            driver = "pci-virtio-socket"
            pci-path = "0.7.0"
            guest_cid = 3
            """);
        var (code, stdout, stderr) = Run(config, "--console", _f.PathOf("ttya"));
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = stderr.TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Equal("propolis-standalone: testvm: [dev.vsock0] (driver pci-virtio-socket) at pci-path 0.7.0: this build does not support this device yet", lines[0]);
        Assert.Equal("propolis-standalone: testvm: nothing was started", lines[1]);
        Assert.False(File.Exists(_f.PathOf("ttya")));
    }

    [Fact]
    public void MoreMemoryThanTheHostHasIsRefusedBeforeAnythingStarts()
    {
        var kernel = _f.WriteText("vmlinuz", "a kernel");
        var config = _f.WriteText("big.toml", $"""
            [main]
            name = "big"
            cpus = 1
            memory = 33554432
            kernel = "{kernel}"
            """);
        var (code, _, stderr) = Run(config, "--console", _f.PathOf("ttya"));
        Assert.Equal(1, code);
        Assert.StartsWith("propolis-standalone: big: [main] memory = 33554432 MiB, but this host has only ", stderr);
        Assert.EndsWith(" MiB of RAM; lower memory\n", stderr);
        Assert.False(File.Exists(_f.PathOf("ttya")));
    }

    [Fact]
    public void WithoutKvmTheMessageSaysHowToGetIt()
    {
        var missing = _f.PathOf("no-kvm-here");
        var e = Assert.Throws<Propolis.Core.Vmm.HypervisorException>(() => Propolis.Core.Vmm.Kvm.KvmHypervisor.Open(missing));
        var lines = Propolis.Standalone.Machine.MachineRunner.DescribeHypervisorFailure(e, missing, "propolis-standalone");
        Assert.Equal(2, lines.Count);
        Assert.StartsWith($"propolis-standalone: no {missing}:", lines[0]);
        Assert.Contains("test/e2e/kvm-sandbox.sh --interactive -- propolis-standalone CONFIG", lines[1]);
    }

    [Theory]
    [InlineData("--frobnicate")]
    [InlineData("--log-level", "loud")]
    [InlineData]
    public void UsageErrorsExitSixtyFour(params string[] extra)
    {
        var args = extra.Length == 0 ? Array.Empty<string>() : new[] { WriteSeed() }.Concat(extra).ToArray();
        var (code, stdout, stderr) = Run(args);
        Assert.Equal(64, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("propolis-standalone: ", stderr);
        Assert.EndsWith("usage: propolis-standalone CONFIG [--check] [--log-level LEVEL] [--console PATH] [--api ADDR] (see --help)\n", stderr);
    }

    [Fact]
    public void BadLogLevelOptionIsNamed()
    {
        var (_, _, stderr) = Run(WriteSeed(), "--log-level", "loud");
        Assert.StartsWith("propolis-standalone: 'loud' is not a log level; use one of trace, debug, info, warn, error\n", stderr);
    }

    [Fact]
    public void LogLevelComesFromOptionThenPropolisLogThenInfo()
    {
        var seed = WriteSeed();
        Assert.Equal(0, Run(seed, "--check").Code);
        Assert.Equal(LogLevel.Information, _level);

        _env["PROPOLIS_LOG"] = "DEBUG";
        Assert.Equal(0, Run(seed, "--check").Code);
        Assert.Equal(LogLevel.Debug, _level);

        Assert.Equal(0, Run(seed, "--check", "--log-level", "warn").Code);
        Assert.Equal(LogLevel.Warning, _level);

        _env["PROPOLIS_LOG"] = "chatty";
        var (code, _, stderr) = Run(seed, "--check");
        Assert.Equal(64, code);
        Assert.Equal("propolis-standalone: PROPOLIS_LOG='chatty' is not a log level; use one of trace, debug, info, warn, error\n", stderr);
    }

    [Fact]
    public void HelpExitsZeroAndListsTheOptions()
    {
        var (code, stdout, _) = Run("--help");
        Assert.Equal(0, code);
        foreach (var word in new[] { "CONFIG", "--check", "--log-level", "--console", "--api", "vcr" })
            Assert.Contains(word, stdout);
    }

    [Fact]
    public void VcrHelpListsItsOptions()
    {
        var (code, stdout, _) = Run("vcr", "--help");
        Assert.Equal(0, code);
        foreach (var word in new[] { "--api", "-u, --uuid", "--vcr-replace" })
            Assert.Contains(word, stdout);
    }

    [Fact]
    public void ApiWithCheckIsAUsageError()
    {
        var (code, stdout, stderr) = Run(WriteSeed(), "--check", "--api", "127.0.0.1:55400");
        Assert.Equal(64, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("propolis-standalone: --api serves a running VM; --check runs none (drop one of them)\n", stderr);
    }

    [Theory]
    [InlineData("55400")]
    [InlineData("localhost:55400")]
    [InlineData("127.0.0.1:70000")]
    public void ApiThatIsNotAnAddressIsAUsageError(string address)
    {
        var (code, _, stderr) = Run(WriteSeed(), "--api", address);
        Assert.Equal(64, code);
        Assert.StartsWith($"propolis-standalone: '{address}' is not an IP:PORT address (for example 127.0.0.1:55400, or [::1]:55400)\n", stderr);
    }

    [Fact]
    public void ATakenApiAddressEndsTheRunBeforeTheMachineIsBuilt()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var address = taken.LocalEndpoint.ToString()!;
        var kernel = _f.WriteText("vmlinuz", "not a kernel: the run must stop before reading it");
        var config = _f.WriteText("api.toml", $"""
            [main]
            name = "apivm"
            cpus = 1
            memory = 64
            kernel = "{kernel}"
            """);
        var (code, _, stderr) = Run(config, "--console", _f.PathOf("ttya"), "--api", address);
        Assert.Equal(1, code);
        Assert.StartsWith($"propolis-standalone: apivm: --api {address}: cannot listen there: ", stderr);
        Assert.EndsWith("; nothing was started\n", stderr);
        Assert.False(File.Exists(_f.PathOf("ttya")));
    }
}

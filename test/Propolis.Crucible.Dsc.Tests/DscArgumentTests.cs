namespace Propolis.Crucible.Dsc.Tests;

public class DscArgumentTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void CleanupOnStartRequiresCreate()
    {
        var (code, _, err) = Run("start", "--cleanup");
        Assert.Equal(Cli.ExitUsage, code);
        Assert.Contains("--cleanup requires --create", err);
    }

    [Fact]
    public void UnknownCommandsAndOptionsAreUsageErrors()
    {
        Assert.Equal(Cli.ExitUsage, Run("frobnicate").Code);
        Assert.Equal(Cli.ExitUsage, Run("create", "--extent-size", "lots").Code);
        Assert.Equal(Cli.ExitUsage, Run("cmd", "state").Code); // --cid is required
    }

    [Fact]
    public void AMissingDownstairsBinaryIsReportedWithItsPath()
    {
        using var dir = new TempDir();
        var (code, _, err) = Run("create", "--ds-bin", dir["nope"], "--output-dir", dir["out"], "--region-dir", dir["r"]);
        Assert.Equal(Cli.ExitFailure, code);
        Assert.Contains($"Can't find downstairs binary at \"{dir["nope"]}\"", err);
    }

    [Fact]
    public void RegionDirectoriesMustBeOneOrOnePerDownstairs()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        var ex = Assert.Throws<DscException>(() =>
            new DscInfo(bin, dir["out"], [dir["a"], dir["b"]], create: true, 8810, 3, false, TextWriter.Null));
        Assert.Contains("Region directory needs one or 3 elements", ex.Message);

        // Four directories for four downstairs is fine.
        _ = new DscInfo(bin, dir["out"], [dir["a"], dir["b"], dir["c"], dir["d"]], create: true, 8810, 4, false, TextWriter.Null);
        Assert.True(Directory.Exists(dir["d"]));
    }

    [Fact]
    public void CreateRefusesAnExistingRegionAndStartNeedsOne()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        Directory.CreateDirectory(dir["r"]);
        Assert.Contains("Remove region", Assert.Throws<DscException>(() =>
            new DscInfo(bin, dir["out"], [dir["r"]], create: true, 8810, 3, false, TextWriter.Null)).Message);
        Assert.Contains("Failed to find region", Assert.Throws<DscException>(() =>
            new DscInfo(bin, dir["out"], [dir["missing"]], create: false, 8810, 3, false, TextWriter.Null)).Message);
    }

    [Fact]
    public void RegionPathsAndUuidsFollowThePorts()
    {
        Assert.Equal(Path.Combine("/var/tmp/dsc/region", "8820"), DscInfo.PortToRegion("/var/tmp/dsc/region", 8820));
        Assert.Equal(Guid.Parse("12345678-0000-0000-0000-000000008810"), DscInfo.UuidForPort(8810));
    }

    [Fact]
    public void CreateRunsTheDownstairsCreateCommandLinePerRegion()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        var (code, output, err) = Run("create", "--ds-bin", bin, "--cleanup", "--extent-size", "16384", "--extent-count", "128",
            "--block-size", "4096", "--encrypted", "--output-dir", dir["out"],
            "--region-dir", dir["disk0"], "--region-dir", dir["disk1"], "--region-dir", dir["disk2"]);
        Assert.True(code == 0, err);
        Assert.Equal(
        [
            $"create -d {dir["disk0"]}/8810 --uuid 12345678-0000-0000-0000-000000008810 --extent-count 128 --extent-size 16384 --block-size 4096 --encrypted",
            $"create -d {dir["disk1"]}/8820 --uuid 12345678-0000-0000-0000-000000008820 --extent-count 128 --extent-size 16384 --block-size 4096 --encrypted",
            $"create -d {dir["disk2"]}/8830 --uuid 12345678-0000-0000-0000-000000008830 --extent-count 128 --extent-size 16384 --block-size 4096 --encrypted",
        ], FakeDownstairs.Log(dir));
        Assert.Contains("Created 3 regions", output);

        // Without --cleanup, a second create refuses to touch the existing regions.
        (code, _, err) = Run("create", "--ds-bin", bin, "--output-dir", dir["out"], "--region-dir", dir["disk0"],
            "--region-dir", dir["disk1"], "--region-dir", dir["disk2"]);
        Assert.Equal(Cli.ExitFailure, code);
        Assert.Contains("Remove region", err);
    }

    [Fact]
    public void DefaultsAreTheRealDscDefaults()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        var (code, _, err) = Run("create", "--ds-bin", bin, "--output-dir", dir["out"], "--region-dir", dir["r"], "--region-count", "1");
        Assert.True(code == 0, err);
        Assert.Equal($"create -d {dir["r"]}/8810 --uuid 12345678-0000-0000-0000-000000008810 --extent-count 15 --extent-size 100 --block-size 4096",
            Assert.Single(FakeDownstairs.Log(dir)));
    }

    [Fact]
    public void ACreateFailureShowsTheDownstairsOutput()
    {
        using var dir = new TempDir();
        string bin = dir["failing"];
        File.WriteAllText(bin, "#!/bin/sh\necho 'region says no' >&2\nexit 1\n");
        File.SetUnixFileMode(bin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var (code, output, err) = Run("create", "--ds-bin", bin, "--output-dir", dir["out"], "--region-dir", dir["r"]);
        Assert.Equal(Cli.ExitFailure, code);
        Assert.Contains("region says no", output);
        Assert.Contains("Creating region failed", err);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9998", "127.0.0.1:9998")]
    [InlineData("http://[::1]:9000", "[::1]:9000")]
    [InlineData("http://127.0.0.1", "127.0.0.1:80")]
    public void ServerUrlsAreParsed(string url, string endPoint)
    {
        Assert.Equal(endPoint, ControlClient.ParseServer(url).ToString());
    }

    [Fact]
    public void CmdToNobodySaysWhereItLooked()
    {
        int port = Ports.FreePort();
        var (code, _, err) = Run("cmd", "--server", $"http://127.0.0.1:{port}", "all-running");
        Assert.Equal(Cli.ExitFailure, code);
        Assert.Contains($"cannot reach dsc at http://127.0.0.1:{port}", err);
    }
}

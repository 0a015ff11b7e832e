using System.Diagnostics;

namespace Propolis.Crucible.Dsc.Tests;

public class DscStartTests
{
    private static bool Alive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    [Fact]
    public async Task StartCreateRunsEveryDownstairsAndTheControlApiReportsAndControlsThem()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        int b = Ports.FreePortBase(3);
        using var dsc = new RunningDsc(dir, bin, b, 3, "--create", "--cleanup");
        dsc.WaitFor("true", "all-running");

        Assert.Equal("3", dsc.Cmd("region-count"));
        Assert.Equal("RegionExtentInfo { block_size: 4096, blocks_per_extent: 100, extent_count: 15 }", dsc.Cmd("region-info"));
        Assert.Equal((b + 10).ToString(), dsc.Cmd("port", "-c", "1"));
        Assert.Equal($"12345678-0000-0000-0000-{b + 20:D12}", dsc.Cmd("uuid", "--cid", "2"));
        Assert.Equal("Running", dsc.Cmd("state", "-c", "0"));
        Assert.Equal("false", dsc.Cmd("read-only"));
        Assert.Equal("false", dsc.Cmd("all-stopped"));

        // Each downstairs runs the real command line, its output in OUTPUT_DIR/downstairs-PORT.txt.
        for (int i = 0; i < 3; i++)
        {
            int port = b + 10 * i;
            Assert.Contains($"run -p {port} -d {dir["regions"]}/{port} --mode rw", FakeDownstairs.Log(dir));
            dsc.WaitUntil(() => File.Exists(dir[$"pids/pid-{port}"]) && File.ReadAllText(dir[$"pids/pid-{port}"]).Trim() == dsc.Pid(i).ToString(),
                $"downstairs {i} to record its pid");
            Assert.Contains($"fake downstairs running: run -p {port}", File.ReadAllText(Path.Combine(dir["out"], $"downstairs-{port}.txt")));
        }

        int pid1 = dsc.Pid(1);
        dsc.Cmd("stop", "-c", "1");
        dsc.WaitFor("Exit", "state", "-c", "1");
        Assert.Equal("None", dsc.Cmd("pid", "-c", "1"));
        Assert.False(Alive(pid1));
        Assert.Equal("false", dsc.Cmd("all-running"));

        dsc.Cmd("start", "-c", "1");
        dsc.WaitFor("Running", "state", "-c", "1");
        Assert.NotEqual(pid1, dsc.Pid(1));

        Assert.Throws<InvalidOperationException>(() => dsc.Cmd("state", "-c", "3"));

        int[] pids = [dsc.Pid(0), dsc.Pid(1), dsc.Pid(2)];
        dsc.Cmd("shutdown");
        Assert.Equal(0, await dsc.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.All(pids, p => Assert.False(Alive(p)));
    }

    [Fact]
    public void AutoRestartBringsBackAKilledDownstairsUntilDisabled()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        using var dsc = new RunningDsc(dir, bin, Ports.FreePortBase(1), 1, "--create");
        dsc.WaitFor("true", "all-running");

        dsc.Cmd("enable-restart", "-c", "0");
        int first = dsc.Pid(0);
        Process.GetProcessById(first).Kill();
        dsc.WaitUntil(() => dsc.TryCmd("pid", "-c", "0") is { } p && p.StartsWith("Some(") && p != $"Some({first})", "a restarted downstairs");
        Assert.Equal("Running", dsc.Cmd("state", "-c", "0"));

        dsc.Cmd("disable-restart-all");
        int second = dsc.Pid(0);
        Process.GetProcessById(second).Kill();
        dsc.WaitFor("Exit", "state", "-c", "0");
        Thread.Sleep(500);
        Assert.Equal("Exit", dsc.Cmd("state", "-c", "0"));
        Assert.Equal("true", dsc.Cmd("all-stopped"));
    }

    [Fact]
    public void ADownstairsThatExitsWithAStatusIsFailedAndNotRestarted()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir, runExit: 3);
        using var dsc = new RunningDsc(dir, bin, Ports.FreePortBase(1), 1, "--create");
        dsc.WaitFor("Failed", "state", "-c", "0");
        dsc.Cmd("enable-restart-all");
        Thread.Sleep(500);
        Assert.Equal("Failed", dsc.Cmd("state", "-c", "0"));
        Assert.Equal("None", dsc.Cmd("pid", "-c", "0"));
    }

    [Fact]
    public void StartWithoutCreateUsesTheExistingRegionsReadOnly()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        int b = Ports.FreePortBase(2);
        var o = new StringWriter();
        Assert.Equal(0, Cli.Run(["create", "--ds-bin", bin, "--output-dir", dir["out"], "--region-dir", dir["regions"],
            "--port-base", b.ToString(), "--region-count", "2", "--extent-size", "64", "--block-size", "512"], o, o));

        using var dsc = new RunningDsc(dir, bin, b, 2, "--read-only");
        dsc.WaitFor("true", "all-running");
        Assert.Equal("true", dsc.Cmd("read-only"));
        Assert.Equal("RegionExtentInfo { block_size: 512, blocks_per_extent: 64, extent_count: 15 }", dsc.Cmd("region-info"));
        Assert.Contains($"run -p {b + 10} -d {dir["regions"]}/{b + 10} --mode ro", FakeDownstairs.Log(dir));
    }

    [Fact]
    public void RandomStopSettingsAreAccepted()
    {
        using var dir = new TempDir();
        string bin = FakeDownstairs.Write(dir);
        using var dsc = new RunningDsc(dir, bin, Ports.FreePortBase(1), 1, "--create");
        dsc.WaitFor("true", "all-running");
        Assert.Equal("", dsc.Cmd("enable-random-min", "-m", "1"));
        Assert.Equal("", dsc.Cmd("enable-random-max", "--max", "2"));
        dsc.Cmd("enable-restart-all");
        int first = dsc.Pid(0);
        dsc.Cmd("enable-random-stop");
        // Within a few seconds the only downstairs is stopped at random, then restarted.
        dsc.WaitUntil(() => dsc.TryCmd("pid", "-c", "0") is { } p && p.StartsWith("Some(") && p != $"Some({first})", "a random stop and restart", 30);
        dsc.Cmd("disable-random-stop");
    }
}

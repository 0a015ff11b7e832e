using System.Diagnostics;
using System.Globalization;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Regions.Block;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Regions;

/// <summary>
/// Kills a writer (<see cref="CrashWriter"/>, this assembly run as a child) with SIGKILL at random
/// points, reopens the region so that recovery runs, and checks what a user relies on: what was
/// flushed reads back; every other block reads back a version it held at or after the last flush,
/// whole, with a context whose hashes match the data.
/// </summary>
public class CrashTests
{
    private const int Iterations = 8;
    private const ulong BlocksPerExtent = 32;
    private const uint Extents = 4;
    private const ulong TotalBlocks = BlocksPerExtent * Extents;

    [Fact]
    public void SigkillMidStreamLosesNothingFlushedAndTearsNoBlock()
    {
        using var tmp = new TempDir();
        string dir = tmp.Sub("region");
        using (Region.Create(dir, RegionDefinition.ForNewRegion(512, BlocksPerExtent, Extents, Guid.NewGuid(), false)))
        {
        }

        var rng = new Random(20260522);
        var state = new ulong[TotalBlocks]; // exact contents (version) at the start of each iteration
        ulong lastFlush = 0;
        ulong highestExtentFlush = 0;
        int totalWrites = 0, totalFlushes = 0;

        for (int iteration = 0; iteration < Iterations; iteration++)
        {
            string logPath = tmp.Sub($"log{iteration}");
            File.WriteAllText(logPath, "");
            ulong firstVersion = (ulong)(iteration + 1) * 1_000_000;
            RunAndKill(dir, logPath, rng.Next(), firstVersion, Math.Max(lastFlush, highestExtentFlush), killAfterMs: rng.Next(20, 400));

            // Replay the log: the exact state at the last logged flush, and every version each block
            // may hold since (including the writes the kill may have cut short).
            var allowed = new HashSet<ulong>[TotalBlocks];
            for (ulong b = 0; b < TotalBlocks; b++)
            {
                allowed[b] = [state[b]];
            }
            // Whole lines only: the kill may cut the last one anywhere (a number included), and
            // the write it announced had not started.
            string log = File.ReadAllText(logPath);
            foreach (string line in log[..(log.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] f = line.Split(' ');
                Assert.True(IsWholeLogLine(f), $"a malformed log line: '{line}'");
                switch (f[0])
                {
                    case "W" or "U":
                        ulong block = ulong.Parse(f[1], CultureInfo.InvariantCulture);
                        ulong version = ulong.Parse(f[2], CultureInfo.InvariantCulture);
                        if (f[0] == "W" || state[block] == 0)
                        {
                            state[block] = version;
                        }
                        allowed[block].Add(version);
                        totalWrites++;
                        break;
                    case "F":
                        ulong flush = ulong.Parse(f[1], CultureInfo.InvariantCulture);
                        Assert.True(flush > Math.Max(lastFlush, highestExtentFlush), $"flush numbers go up: {flush} after {lastFlush}");
                        lastFlush = flush;
                        totalFlushes++;
                        for (ulong b = 0; b < TotalBlocks; b++)
                        {
                            allowed[b] = [state[b]];
                        }
                        break;
                }
            }

            using var region = Region.Open(dir, readOnly: false);
            // The flush in progress at the kill may have reached some extents, and the next writer
            // continues from the highest flush number it finds.
            ulong ceiling = Math.Max(lastFlush, highestExtentFlush) + 1;
            foreach (ExtentMeta meta in region.MetaInfo())
            {
                Assert.True(meta.FlushNumber <= ceiling, $"extent flush {meta.FlushNumber} > {ceiling}");
                highestExtentFlush = Math.Max(highestExtentFlush, meta.FlushNumber);
            }
            var data = new byte[512];
            var ctx = new BlockContext?[1];
            for (ulong b = 0; b < TotalBlocks; b++)
            {
                region.Read((uint)(b / BlocksPerExtent), b % BlocksPerExtent, data, ctx);
                ulong? version = CrashWriter.VersionOf(b, data);
                Assert.True(version is not null, $"iteration {iteration}: block {b} holds a torn or foreign block");
                Assert.True(allowed[b].Contains(version!.Value),
                    $"iteration {iteration}: block {b} holds version {version}, allowed {string.Join(",", allowed[b])}");
                if (version == 0)
                {
                    Assert.Null(ctx[0]);
                }
                else
                {
                    Assert.NotNull(ctx[0]);
                    Assert.True(ctx[0]!.Value.Matches(data), $"iteration {iteration}: block {b} context does not match its data");
                    Assert.Equal(CrashWriter.ContextFor(version.Value, data), ctx[0]);
                }
                state[b] = version.Value;
            }
            for (uint eid = 0; eid < Extents; eid++)
            {
                Assert.Null(region.GetExtent(eid).Validate());
            }
        }

        // The stream really ran: many writes and some flushes across the iterations.
        Assert.True(totalWrites > 50, $"only {totalWrites} writes logged");
        Assert.True(totalFlushes > 5, $"only {totalFlushes} flushes logged");
    }

    /// <summary>"W|U block version" or "F flush".</summary>
    private static bool IsWholeLogLine(string[] f) => f[0] switch
    {
        "W" or "U" => f.Length == 3 && ulong.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out _)
            && ulong.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out _),
        "F" => f.Length == 2 && ulong.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out _),
        _ => false,
    };

    private static void RunAndKill(string dir, string logPath, int seed, ulong firstVersion, ulong lastFlushUsed, int killAfterMs)
    {
        var psi = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "exec", Path.Combine(AppContext.BaseDirectory, "Propolis.Crucible.Tests.dll"), CrashWriter.Verb, dir, logPath,
                     seed.ToString(CultureInfo.InvariantCulture), firstVersion.ToString(CultureInfo.InvariantCulture),
                     lastFlushUsed.ToString(CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }
        using Process child = Process.Start(psi)!;

        Task<string?> ready = child.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(20)) || ready.Result != "ready")
        {
            child.Kill();
            Assert.Fail($"crash writer did not start: {child.StandardError.ReadToEnd()}");
        }
        Thread.Sleep(killAfterMs);
        if (child.HasExited)
        {
            Assert.Fail($"crash writer exited early ({child.ExitCode}): {child.StandardError.ReadToEnd()}");
        }
        child.Kill(); // SIGKILL
        child.WaitForExit();
    }

    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            return self;
        }
        return "dotnet";
    }
}

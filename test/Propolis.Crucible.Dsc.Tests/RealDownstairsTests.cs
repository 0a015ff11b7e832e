using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Propolis.Crucible.Http;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Dsc.Tests;

/// <summary>dsc driving our crucible-downstairs, run from its build output (nothing published).</summary>
public class RealDownstairsTests
{
    /// <summary>The crucible-downstairs apphost built beside these tests (same configuration preferred).</summary>
    internal static string FindDownstairs()
    {
        string here = AppContext.BaseDirectory;
        string? root = here;
        while (root is not null && !File.Exists(Path.Combine(root, "propolis.sln")))
        {
            root = Path.GetDirectoryName(root);
        }
        Assert.NotNull(root);
        string configuration = here.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
        string bin = Path.Combine(root, "Propolis.Crucible.Downstairs", "bin");
        string preferred = Path.Combine(bin, configuration, "net9.0", "linux-x64", "crucible-downstairs");
        if (File.Exists(preferred))
        {
            return preferred;
        }
        string? any = Directory.Exists(bin)
            ? Directory.EnumerateFiles(bin, "crucible-downstairs", SearchOption.AllDirectories).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault()
            : null;
        Assert.True(any is not null, $"crucible-downstairs is not built under {bin}");
        return any!;
    }

    private static async Task<Message> HelloAsync(int port)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                socket.Dispose();
                await Task.Delay(100);
                continue;
            }
            await using var connection = new CrucibleFrameConnection(socket);
            await connection.SendAsync(new Message.HereIAm(CrucibleProtocol.CrucibleMessageVersion, Guid.NewGuid(), Guid.NewGuid(), 1,
                false, false, Array.Empty<uint>()));
            using ReceivedMessage? reply = await connection.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.NotNull(reply);
            return reply.Message;
        }
    }

    [Fact]
    public async Task DscCreatesAndStartsThreeDownstairsThatAnswerAndShutdownStopsThemAll()
    {
        // The build output targets net9.0; run it on whatever newer runtime is installed.
        Environment.SetEnvironmentVariable("DOTNET_ROLL_FORWARD", "Major");
        string ds = FindDownstairs();
        using var dir = new TempDir();
        int b = Ports.FreePortBase(3);
        var o = new StringWriter();
        int created = Cli.Run(["create", "--ds-bin", ds, "--cleanup", "--extent-size", "64", "--extent-count", "4", "--block-size", "512",
            "--output-dir", dir["out"], "--region-dir", dir["regions"], "--port-base", b.ToString()], o, o);
        Assert.True(created == 0, o.ToString());
        Assert.Contains($"\"uuid\": \"12345678-0000-0000-0000-{b + 20:D12}\"", File.ReadAllText(Path.Combine(dir["regions"], (b + 20).ToString(), "region.json")));

        var pids = new List<int>();
        try
        {
            using var dsc = new RunningDsc(dir, ds, b, 3);
            dsc.WaitFor("true", "all-running");
            for (int i = 0; i < 3; i++)
            {
                pids.Add(dsc.Pid(i));
            }
            for (int i = 0; i < 3; i++)
            {
                int port = b + 10 * i;
                var yes = Assert.IsType<Message.YesItsMe>(await HelloAsync(port));
                Assert.Equal(CrucibleProtocol.CrucibleMessageVersion, yes.Version);
                Assert.Equal(port + 4000, yes.RepairAddr.ToEndPoint().Port);
                var (status, body) = await Http1Client.SendAsync(new IPEndPoint(IPAddress.Loopback, port + 4000), "GET", "/region-mode");
                Assert.Equal((200, "false"), (status, System.Text.Encoding.UTF8.GetString(body)));
            }
            Assert.Contains("downstairs listening on", File.ReadAllText(Path.Combine(dir["out"], $"downstairs-{b}.txt")));

            dsc.Cmd("shutdown");
            Assert.Equal(0, await dsc.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.All(pids, p => Assert.False(Alive(p), $"downstairs {p} still running"));
            foreach (int i in Enumerable.Range(0, 3))
            {
                await Assert.ThrowsAsync<SocketException>(async () =>
                {
                    using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, b + 10 * i));
                });
            }
        }
        finally
        {
            foreach (int p in pids.Where(Alive))
            {
                using var proc = Process.GetProcessById(p);
                proc.Kill();
            }
        }
    }

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
}

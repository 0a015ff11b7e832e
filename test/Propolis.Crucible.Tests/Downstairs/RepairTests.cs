using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Downstairs;
using Propolis.Crucible.Http;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Downstairs;

/// <summary>A region on disk served by a <see cref="DownstairsHost"/> on 127.0.0.1 (free ports).</summary>
internal sealed class HostedRegion : IAsyncDisposable
{
    public const int BlockSize = 512;
    public const ulong ExtentSize = 8;
    public const uint ExtentCount = 4;

    private HostedRegion(string dir, DownstairsHost host)
    {
        Dir = dir;
        Host = host;
    }

    public string Dir { get; }

    public DownstairsHost Host { get; }

    /// <summary>Creates a region; <paramref name="fill"/> may write to it before it is served.</summary>
    public static HostedRegion Start(bool readOnly = false, Action<Region>? fill = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "repair-test-" + Guid.NewGuid().ToString("N"));
        using (Region r = Region.Create(dir, RegionDefinition.ForNewRegion(BlockSize, ExtentSize, ExtentCount, Guid.NewGuid(), false)))
        {
            fill?.Invoke(r);
        }
        DownstairsHost host = DownstairsHost.Start(new DownstairsRunOptions
        {
            Address = IPAddress.Loopback,
            Port = 0,
            DataDirectory = dir,
            ReadOnly = readOnly,
        }, NullLoggerFactory.Instance);
        return new HostedRegion(dir, host);
    }

    public async Task<Upstairs> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(Host.Address);
        return new Upstairs(new CrucibleFrameConnection(socket), Guid.NewGuid(), Guid.NewGuid(), 1);
    }

    public Task<(int Status, byte[] Body)> GetAsync(string path, string method = "GET") =>
        Http1Client.SendAsync(Host.RepairAddress, method, path, TimeSpan.FromSeconds(10));

    public string ExtentFile(uint eid) => RegionPaths.ExtentPath(Dir, eid);

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        Directory.Delete(Dir, recursive: true);
    }

    /// <summary>Writes <paramref name="blocks"/> blocks of <paramref name="seed"/>-derived data at <paramref name="block"/> of an extent, and flushes.</summary>
    public static void WritePattern(Region r, uint eid, ulong block, int blocks, byte seed, ulong flush)
    {
        byte[] data = new byte[blocks * BlockSize];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(seed + i * 7);
        }
        var contexts = new BlockContext[blocks];
        for (int i = 0; i < blocks; i++)
        {
            contexts[i] = BlockContext.ForPlainBlock(data.AsSpan(i * BlockSize, BlockSize));
        }
        r.Write(eid, block, data, contexts);
        r.Flush(flush, 1);
    }
}

public class RepairApiTests
{
    [Fact]
    public async Task ServesRegionInfoModeAndTheExtentFiles()
    {
        await using HostedRegion h = HostedRegion.Start(fill: r => HostedRegion.WritePattern(r, 1, 2, 3, 0x40, 7));

        var (status, body) = await h.GetAsync("/region-info");
        Assert.Equal(200, status);
        using (JsonDocument doc = JsonDocument.Parse(body))
        {
            JsonElement e = doc.RootElement;
            Assert.Equal(512UL, e.GetProperty("block_size").GetUInt64());
            Assert.Equal(8UL, e.GetProperty("extent_size").GetProperty("value").GetUInt64());
            Assert.Equal(9u, e.GetProperty("extent_size").GetProperty("shift").GetUInt32());
            Assert.Equal(4u, e.GetProperty("extent_count").GetUInt32());
            Assert.Equal(h.Host.Downstairs.RegionDefinition.Uuid, e.GetProperty("uuid").GetGuid());
            Assert.False(e.GetProperty("encrypted").GetBoolean());
        }

        Assert.Equal((200, "false"), Text(await h.GetAsync("/region-mode")));
        Assert.Equal((200, "[\"001\"]"), Text(await h.GetAsync("/extent/1/files")));
        Assert.Equal((200, "false"), Text(await h.GetAsync("/extent/1/repair-ready")));
        Assert.Equal((200, "true"), Text(await h.GetAsync("/work")));

        (status, body) = await h.GetAsync("/newextent/1/data");
        Assert.Equal(200, status);
        Assert.Equal(await File.ReadAllBytesAsync(h.ExtentFile(1)), body);
    }

    [Theory]
    [InlineData("/newextent/1/db", 400)]        // a raw extent has no SQLite file
    [InlineData("/newextent/1/bogus", 400)]     // not a FileType
    [InlineData("/newextent/x/data", 400)]      // not a u32
    [InlineData("/extent/4096/files", 400)]     // no such extent directory... (extent 4096 lives in 00/001)
    [InlineData("/extent/9/files", 400)]        // directory exists (00/000), data file 009 does not: EBADF
    [InlineData("/extent/9/repair-ready", 500)] // beyond the region
    [InlineData("/no/such/path", 404)]
    public async Task RefusesWhatItCannotServe(string path, int expected)
    {
        await using HostedRegion h = HostedRegion.Start();
        var (status, body) = await h.GetAsync(path);
        Assert.Equal(expected, status);
        using JsonDocument doc = JsonDocument.Parse(body);
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("request_id").GetString()));
    }

    [Fact]
    public async Task OnlyGetIsAllowed()
    {
        await using HostedRegion h = HostedRegion.Start();
        Assert.Equal(405, (await h.GetAsync("/region-mode", "POST")).Status);
    }

    [Fact]
    public async Task AReadOnlyRegionIsAlwaysReadyForRepair()
    {
        await using HostedRegion h = HostedRegion.Start(readOnly: true);
        Assert.Equal((200, "true"), Text(await h.GetAsync("/region-mode")));
        Assert.Equal((200, "true"), Text(await h.GetAsync("/extent/2/repair-ready")));
    }

    [Fact]
    public async Task KeepAliveServesSeveralRequestsOnOneConnection()
    {
        await using HostedRegion h = HostedRegion.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(h.Host.RepairAddress);
        await socket.SendAsync(Encoding.ASCII.GetBytes(
            "GET /region-mode HTTP/1.1\r\nHost: x\r\n\r\nGET /extent/0/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        var all = new MemoryStream();
        byte[] buf = new byte[4096];
        int n;
        while ((n = await socket.ReceiveAsync(buf)) > 0)
        {
            all.Write(buf, 0, n);
        }
        string text = Encoding.ASCII.GetString(all.ToArray());
        Assert.Equal(2, text.Split("HTTP/1.1 200 OK").Length - 1);
        Assert.EndsWith("\r\n\r\n[\"000\"]", text);
    }

    private static (int, string) Text((int Status, byte[] Body) r) => (r.Status, Encoding.UTF8.GetString(r.Body));
}

public class ExtentRepairTests
{
    private static async Task<Upstairs> ReconcileAsync(HostedRegion h)
    {
        Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        return up;
    }

    [Fact]
    public async Task ExtentRepairCopiesTheSourceExtentAndLeavesIdenticalFiles()
    {
        await using HostedRegion source = HostedRegion.Start(fill: r =>
        {
            HostedRegion.WritePattern(r, 1, 0, 8, 0x11, 3);
            HostedRegion.WritePattern(r, 1, 3, 2, 0x99, 4);
        });
        await using HostedRegion dest = HostedRegion.Start(fill: r => HostedRegion.WritePattern(r, 1, 5, 1, 0x55, 1));
        Assert.NotEqual(await File.ReadAllBytesAsync(source.ExtentFile(1)), await File.ReadAllBytesAsync(dest.ExtentFile(1)));

        await using Upstairs src = await ReconcileAsync(source);
        await using Upstairs dst = await ReconcileAsync(dest);
        await src.SendAsync(new Message.ExtentClose(new ReconciliationId(1), new ExtentId(1)));
        Assert.Equal(new Message.RepairAckId(new ReconciliationId(1)), await src.ReceiveAsync());
        await dst.SendAsync(new Message.ExtentClose(new ReconciliationId(1), new ExtentId(1)));
        Assert.Equal(new Message.RepairAckId(new ReconciliationId(1)), await dst.ReceiveAsync());
        var (readyStatus, ready) = await source.GetAsync("/extent/1/repair-ready");
        Assert.Equal((200, "true"), (readyStatus, Encoding.UTF8.GetString(ready)));

        await dst.SendAsync(new Message.ExtentRepair(new ReconciliationId(2), new ExtentId(1), new ClientId(0),
            SocketAddr.FromEndPoint(source.Host.RepairAddress), new[] { new ClientId(1) }));
        Assert.Equal(new Message.RepairAckId(new ReconciliationId(2)), await dst.ReceiveAsync());

        Assert.Equal(await File.ReadAllBytesAsync(source.ExtentFile(1)), await File.ReadAllBytesAsync(dest.ExtentFile(1)));
        string extentDir = RegionPaths.ExtentDir(dest.Dir, 1);
        Assert.Equal(new[] { "000", "001", "002", "003" }, Directory.GetFileSystemEntries(extentDir).Select(p => Path.GetFileName(p)).Order().ToArray());

        // Reopened, the repaired extent reports the source's flush number and reads the source's data.
        await dst.SendAsync(new Message.ExtentReopen(new ReconciliationId(3), new ExtentId(1)));
        Assert.Equal(new Message.RepairAckId(new ReconciliationId(3)), await dst.ReceiveAsync());
        Assert.Equal(4UL, ReadFlushNumber(dest, 1));
    }

    [Fact]
    public async Task LiveRepairReplacesAClosedExtentBetweenIoJobs()
    {
        // A read-only source is always ready to be copied from.
        await using HostedRegion source = HostedRegion.Start(readOnly: true, fill: r => HostedRegion.WritePattern(r, 3, 1, 6, 0x3C, 5));
        await using HostedRegion dest = HostedRegion.Start();
        await using Upstairs up = await ReconcileAsync(dest);
        Guid u = up.UpstairsId, s = up.SessionId;

        await up.SendAsync(new Message.ExtentLiveClose(u, s, new JobId(10), Array.Empty<JobId>(), new ExtentId(3)));
        var closed = await up.ExpectAsync<Message.ExtentLiveCloseAck>();
        Assert.True(closed.Result.IsOk);
        await up.SendAsync(new Message.ExtentLiveRepair(u, s, new JobId(11), new[] { new JobId(10) }, new ExtentId(3), new ClientId(0),
            SocketAddr.FromEndPoint(source.Host.RepairAddress)));
        Assert.Equal(new Message.ExtentLiveRepairAckId(u, s, new JobId(11), null), await up.ReceiveAsync());
        await up.SendAsync(new Message.ExtentLiveReopen(u, s, new JobId(12), new[] { new JobId(11) }, new ExtentId(3)));
        Assert.Equal(new Message.ExtentLiveAckId(u, s, new JobId(12), null), await up.ReceiveAsync());

        Assert.Equal(await File.ReadAllBytesAsync(source.ExtentFile(3)), await File.ReadAllBytesAsync(dest.ExtentFile(3)));
        // The reopened extent serves the repaired data.
        await up.SendAsync(up.Read(13, 3 * HostedRegion.ExtentSize + 1, 1, 12));
        var read = await up.ExpectAsync<Message.ReadResponse>();
        Assert.Equal((byte)0x3C, read.Data.Span[0]);
    }

    private static ulong ReadFlushNumber(HostedRegion h, uint eid)
    {
        using Region r = Region.Open(h.Dir, readOnly: true);
        return r.GetExtent(eid).FlushNumber;
    }

    [Fact]
    public async Task RepairFromASourceWhoseExtentIsOpenIsAbortedWithARepairRequestError()
    {
        await using HostedRegion source = HostedRegion.Start(fill: r => HostedRegion.WritePattern(r, 2, 0, 1, 1, 1));
        await using HostedRegion dest = HostedRegion.Start();
        byte[] before = await File.ReadAllBytesAsync(dest.ExtentFile(2));
        await using Upstairs dst = await ReconcileAsync(dest);
        await dst.SendAsync(new Message.ExtentClose(new ReconciliationId(1), new ExtentId(2)));
        await dst.ExpectAsync<Message.RepairAckId>();

        await dst.SendAsync(new Message.ExtentRepair(new ReconciliationId(2), new ExtentId(2), new ClientId(0),
            SocketAddr.FromEndPoint(source.Host.RepairAddress), new[] { new ClientId(1) }));
        var error = await dst.ExpectAsync<Message.ExtentError>();
        Assert.Equal(CrucibleErrorKind.RepairRequestError, error.Error.Kind);
        Assert.Contains("incorrect state", error.Error.Detail);
        Assert.Equal(before, await File.ReadAllBytesAsync(dest.ExtentFile(2)));
    }

    [Fact]
    public async Task AnOpenExtentIsNotRepaired()
    {
        await using HostedRegion source = HostedRegion.Start(readOnly: true);
        await using HostedRegion dest = HostedRegion.Start();
        await using Upstairs dst = await ReconcileAsync(dest);
        await dst.SendAsync(new Message.ExtentRepair(new ReconciliationId(2), new ExtentId(0), new ClientId(0),
            SocketAddr.FromEndPoint(source.Host.RepairAddress), new[] { new ClientId(1) }));
        var error = await dst.ExpectAsync<Message.ExtentError>();
        Assert.Equal(CrucibleErrorKind.InvalidExtent, error.Error.Kind);
    }

    [Fact]
    public async Task AnUnreachableSourceIsARepairRequestError()
    {
        using var unused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        unused.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var nobody = (IPEndPoint)unused.LocalEndPoint!; // bound, never listening: connections are refused
        await using HostedRegion dest = HostedRegion.Start();
        await using Upstairs dst = await ReconcileAsync(dest);
        await dst.SendAsync(new Message.ExtentClose(new ReconciliationId(1), new ExtentId(3)));
        await dst.ExpectAsync<Message.RepairAckId>();
        await dst.SendAsync(new Message.ExtentRepair(new ReconciliationId(2), new ExtentId(3), new ClientId(0),
            SocketAddr.FromEndPoint(nobody), new[] { new ClientId(1) }));
        var error = await dst.ExpectAsync<Message.ExtentError>();
        Assert.Equal(CrucibleErrorKind.RepairRequestError, error.Error.Kind);
    }

    [Fact]
    public void AnInterruptedRepairIsFinishedWhenTheExtentIsOpened()
    {
        string a = Path.Combine(Path.GetTempPath(), "repair-replace-" + Guid.NewGuid().ToString("N"));
        string b = a + "-src";
        try
        {
            var def = RegionDefinition.ForNewRegion(512, 8, 2, Guid.NewGuid(), false);
            using (Region src = Region.Create(b, def))
            {
                HostedRegion.WritePattern(src, 1, 0, 4, 0x21, 9);
            }
            using (Region dst = Region.Create(a, def with { Uuid = Guid.NewGuid() }))
            {
            }
            // Step 4 of the repair done (files downloaded, NNN.copy renamed to NNN.replace), then a crash.
            Directory.CreateDirectory(RegionPaths.ReplaceDir(a, 1));
            File.Copy(RegionPaths.ExtentPath(b, 1), Path.Combine(RegionPaths.ReplaceDir(a, 1), "001"));
            Directory.CreateDirectory(RegionPaths.CopyDir(a, 0)); // a stale copy dir is simply removed

            using (Region reopened = Region.Open(a, readOnly: false))
            {
                Assert.Equal(9UL, reopened.GetExtent(1).FlushNumber);
            }
            Assert.Equal(File.ReadAllBytes(RegionPaths.ExtentPath(b, 1)), File.ReadAllBytes(RegionPaths.ExtentPath(a, 1)));
            Assert.False(Directory.Exists(RegionPaths.ReplaceDir(a, 1)));
            Assert.False(Directory.Exists(RegionPaths.CompletedDir(a, 1)));
            Assert.False(Directory.Exists(RegionPaths.CopyDir(a, 0)));
        }
        finally
        {
            foreach (string d in new[] { a, b })
            {
                if (Directory.Exists(d))
                {
                    Directory.Delete(d, recursive: true);
                }
            }
        }
    }

    [Theory]
    [InlineData(new[] { "001" }, true, true)]
    [InlineData(new string[0], false, false)]
    [InlineData(new[] { "001", "001.db" }, false, true)]
    [InlineData(new[] { "001", "001.db", "001.db-shm", "001.db-wal" }, false, true)]
    [InlineData(new[] { "001", "001.db-wal" }, false, false)]
    [InlineData(new[] { "002" }, false, false)]
    public void RepairAndCloneFileListsAreValidatedAsTheRealOnesAre(string[] files, bool repair, bool clone)
    {
        Assert.Equal(repair, ExtentRepairClient.ValidateRepairFiles(1, files));
        Assert.Equal(clone, ExtentRepairClient.ValidateCloneFiles(1, files));
    }
}

public class TestErrorOptionTests
{
    /// <summary>A Random whose every draw is the lowest value: every one-in-four chance comes up.</summary>
    private sealed class AlwaysZero : Random
    {
        public override int Next(int maxValue) => 0;
    }

    private static async Task<(Upstairs Up, Func<ValueTask> Dispose)> StartAsync(DownstairsOptions options)
    {
        string dir = Path.Combine(Path.GetTempPath(), "errors-test-" + Guid.NewGuid().ToString("N"));
        Region.Create(dir, RegionDefinition.ForNewRegion(512, 8, 2, Guid.NewGuid(), false)).Dispose();
        Region region = Region.Open(dir, readOnly: false);
        var ds = new Propolis.Crucible.Downstairs.Downstairs(region, options with { RepairAddress = SocketAddr.Parse("127.0.0.1:1") });
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task connect = client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await listener.AcceptAsync();
        await connect;
        var stop = new CancellationTokenSource();
        Task serving = ds.ServeAsync(new CrucibleFrameConnection(server), stop.Token);
        var up = new Upstairs(new CrucibleFrameConnection(client), Guid.NewGuid(), Guid.NewGuid(), 1);
        await up.NegotiateAsync();
        return (up, async () =>
        {
            await up.DisposeAsync();
            stop.Cancel();
            await serving.WaitAsync(TimeSpan.FromSeconds(10));
            region.Dispose();
            Directory.Delete(dir, recursive: true);
        });
    }

    [Fact]
    public async Task ReadErrorsFailReadsWithTheRealTestError()
    {
        var (up, dispose) = await StartAsync(new DownstairsOptions { ReadErrors = true, Random = new AlwaysZero() });
        try
        {
            await up.SendAsync(up.Read(1, 0, 1));
            var report = await up.ExpectAsync<Message.ErrorReport>();
            Assert.Equal(new JobId(1), report.JobId);
            Assert.Equal(CrucibleError.GenericError("test error"), report.Error);
        }
        finally
        {
            await dispose();
        }
    }

    [Fact]
    public async Task WriteAndFlushErrorsFailWritesAndFlushesButNotReads()
    {
        var (up, dispose) = await StartAsync(new DownstairsOptions { WriteErrors = true, FlushErrors = true, Random = new AlwaysZero() });
        try
        {
            await up.SendAsync(up.Write(1, 0, new byte[512]));
            Assert.Equal(CrucibleError.GenericError("test error"), (await up.ExpectAsync<Message.ErrorReport>()).Error);
            // Each new message retries the failed write first (it fails again), then runs the flush.
            await up.SendAsync(up.Flush(2, 1, 1));
            Message.ErrorReport flushReport;
            while ((flushReport = await up.ExpectAsync<Message.ErrorReport>()).JobId == new JobId(1))
            {
            }
            Assert.Equal(new JobId(2), flushReport.JobId);
            Assert.Equal(CrucibleError.GenericError("test error"), flushReport.Error);
            // The failed jobs stay queued and fail again when retried; the read itself succeeds.
            await up.SendAsync(up.Read(3, 1, 1));
            Message? m;
            while ((m = await up.ReceiveAsync()) is Message.ErrorReport retried)
            {
                Assert.Contains(retried.JobId.Value, new ulong[] { 1, 2 });
            }
            var read = Assert.IsType<Message.ReadResponse>(m);
            Assert.True(read.Header.Blocks.IsOk);
        }
        finally
        {
            await dispose();
        }
    }
}

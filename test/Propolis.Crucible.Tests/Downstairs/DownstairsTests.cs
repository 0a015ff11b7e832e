using System.Net;
using System.Net.Sockets;
using Propolis.Crucible.Downstairs;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Protocol.Block;
using BlockContext = Propolis.Crucible.Protocol.BlockContext;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Downstairs;

/// <summary>A downstairs over a temporary region, and upstairs clients connected to it over loopback TCP.</summary>
internal sealed class Harness : IAsyncDisposable
{
    public const int BlockSize = 512;
    public const ulong ExtentSize = 8;
    public const uint ExtentCount = 4;

    private readonly string _dir;
    private readonly Region _region;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _serving = new();

    public Harness(bool readOnly = false, bool encrypted = false)
    {
        _dir = Path.Combine(Path.GetTempPath(), "ds-test-" + Guid.NewGuid().ToString("N"));
        RegionUuid = Guid.NewGuid();
        using (Region.Create(_dir, RegionDefinition.ForNewRegion(BlockSize, ExtentSize, ExtentCount, RegionUuid, encrypted)))
        {
        }
        _region = Region.Open(_dir, readOnly);
        Downstairs = new Propolis.Crucible.Downstairs.Downstairs(_region, new DownstairsOptions
        {
            ReadOnly = readOnly,
            RepairAddress = SocketAddr.Parse("127.0.0.1:7810"),
        });
    }

    public Guid RegionUuid { get; }

    public Propolis.Crucible.Downstairs.Downstairs Downstairs { get; }

    public async Task<Upstairs> ConnectAsync(ulong generation = 1, Guid? upstairsId = null)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task connect = client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await listener.AcceptAsync();
        await connect;
        _serving.Add(Downstairs.ServeAsync(new CrucibleFrameConnection(server), _stop.Token));
        return new Upstairs(new CrucibleFrameConnection(client), upstairsId ?? Guid.NewGuid(), Guid.NewGuid(), generation);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_serving).WaitAsync(TimeSpan.FromSeconds(10));
        _region.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>A scripted upstairs.</summary>
internal sealed class Upstairs(CrucibleFrameConnection connection, Guid upstairsId, Guid sessionId, ulong generation)
    : IAsyncDisposable
{
    public Guid UpstairsId { get; } = upstairsId;
    public Guid SessionId { get; } = sessionId;
    public ulong Generation { get; } = generation;

    public ValueTask SendAsync(Message m) => connection.SendAsync(m);

    /// <summary>The next message, or null if the downstairs closed the connection.</summary>
    public async Task<Message?> ReceiveAsync()
    {
        ReceivedMessage? r = await connection.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return r?.Message;
    }

    public async Task<T> ExpectAsync<T>() where T : Message
    {
        Message? m = await ReceiveAsync();
        return Assert.IsType<T>(m);
    }

    public async Task ExpectClosedAsync()
    {
        try
        {
            Assert.Null(await ReceiveAsync());
        }
        catch (SocketException)
        {
            // A reset is a close too.
        }
    }

    public Message.HereIAm HereIAm(uint version = CrucibleProtocol.CrucibleMessageVersion, bool readOnly = false,
        bool encrypted = false, uint[]? alternates = null) =>
        new(version, UpstairsId, SessionId, Generation, readOnly, encrypted, alternates ?? []);

    /// <summary>HereIAm, PromoteToActive, RegionInfoPlease, ExtentVersionsPlease.</summary>
    public async Task<(Propolis.Crucible.Protocol.RegionDefinition Region, Message.ExtentVersions Versions)> NegotiateAsync(bool readOnly = false)
    {
        await SendAsync(HereIAm(readOnly: readOnly));
        await ExpectAsync<Message.YesItsMe>();
        await SendAsync(new Message.PromoteToActive(UpstairsId, SessionId, Generation));
        await ExpectAsync<Message.YouAreNowActive>();
        await SendAsync(Message.RegionInfoPlease.Instance);
        Propolis.Crucible.Protocol.RegionDefinition def = (await ExpectAsync<Message.RegionInfo>()).RegionDef;
        await SendAsync(Message.ExtentVersionsPlease.Instance);
        return (def, await ExpectAsync<Message.ExtentVersions>());
    }

    public Message.Write Write(ulong job, ulong start, byte[] data, params ulong[] deps)
    {
        var contexts = new BlockContext[data.Length / Harness.BlockSize];
        for (int i = 0; i < contexts.Length; i++)
        {
            contexts[i] = new BlockContext(IntegrityHash.Compute(data.AsSpan(i * Harness.BlockSize, Harness.BlockSize)), null);
        }
        return new Message.Write(new WriteHeader(UpstairsId, SessionId, new JobId(job), deps.Select(d => new JobId(d)).ToArray(),
            new BlockIndex(start), contexts), data);
    }

    public Message.ReadRequest Read(ulong job, ulong start, ulong count, params ulong[] deps) =>
        new(UpstairsId, SessionId, new JobId(job), deps.Select(d => new JobId(d)).ToArray(), new BlockIndex(start), count);

    public Message.Flush Flush(ulong job, ulong flushNumber, ulong gen, params ulong[] deps) =>
        new(UpstairsId, SessionId, new JobId(job), deps.Select(d => new JobId(d)).ToArray(), flushNumber, gen, null, null);

    public ValueTask DisposeAsync() => connection.DisposeAsync();
}

public class DownstairsNegotiationTests
{
    [Fact]
    public async Task FullNegotiationReportsTheRegionAndItsExtents()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.SendAsync(up.HereIAm());
        var yes = await up.ExpectAsync<Message.YesItsMe>();
        Assert.Equal(13u, yes.Version);
        Assert.Equal(SocketAddr.Parse("127.0.0.1:7810"), yes.RepairAddr);

        await up.SendAsync(Message.Ruok.Instance);
        await up.ExpectAsync<Message.Imok>();

        await up.SendAsync(new Message.PromoteToActive(up.UpstairsId, up.SessionId, 5));
        Assert.Equal(new Message.YouAreNowActive(up.UpstairsId, up.SessionId, 5), await up.ReceiveAsync());

        await up.SendAsync(Message.RegionInfoPlease.Instance);
        var info = await up.ExpectAsync<Message.RegionInfo>();
        Assert.Equal(new Propolis.Crucible.Protocol.RegionDefinition
        {
            BlockSize = 512,
            ExtentSize = new Block(Harness.ExtentSize, 9),
            ExtentCount = Harness.ExtentCount,
            Uuid = h.RegionUuid,
            Encrypted = false,
            DatabaseReadVersion = 1,
            DatabaseWriteVersion = 1,
        }, info.RegionDef);

        await up.SendAsync(Message.ExtentVersionsPlease.Instance);
        var versions = await up.ExpectAsync<Message.ExtentVersions>();
        Assert.Equal(new ulong[Harness.ExtentCount], versions.GenNumbers.ToArray());
        Assert.Equal(new ulong[Harness.ExtentCount], versions.FlushNumbers.ToArray());
        Assert.Equal(new bool[Harness.ExtentCount], versions.DirtyBits.ToArray());
        Assert.Equal(new UpstairsConnection(up.UpstairsId, up.SessionId, 5), Assert.Single(h.Downstairs.ActiveUpstairs()));
    }

    [Fact]
    public async Task AnotherVersionIsRefusedUnlessOursIsAnAlternate()
    {
        await using var h = new Harness();
        await using (Upstairs old = await h.ConnectAsync())
        {
            await old.SendAsync(old.HereIAm(version: 12));
            Assert.Equal(new Message.VersionMismatch(13), await old.ReceiveAsync());
            await old.ExpectClosedAsync();
        }
        await using Upstairs newer = await h.ConnectAsync();
        await newer.SendAsync(newer.HereIAm(version: 14, alternates: [13]));
        await newer.ExpectAsync<Message.YesItsMe>();
    }

    [Fact]
    public async Task ReadOnlyAndEncryptionExpectationsMustMatch()
    {
        await using var h = new Harness();
        await using (Upstairs a = await h.ConnectAsync())
        {
            await a.SendAsync(a.HereIAm(readOnly: true));
            Assert.Equal(new Message.ReadOnlyMismatch(false), await a.ReceiveAsync());
            await a.ExpectClosedAsync();
        }
        await using Upstairs b = await h.ConnectAsync();
        await b.SendAsync(b.HereIAm(encrypted: true));
        Assert.Equal(new Message.EncryptedMismatch(false), await b.ReceiveAsync());
        await b.ExpectClosedAsync();
    }

    [Fact]
    public async Task PromoteToActiveWithOtherIdsGetsUuidMismatch()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.SendAsync(up.HereIAm());
        await up.ExpectAsync<Message.YesItsMe>();
        await up.SendAsync(new Message.PromoteToActive(Guid.NewGuid(), up.SessionId, 1));
        Assert.Equal(new Message.UuidMismatch(up.UpstairsId), await up.ReceiveAsync());
        await up.ExpectClosedAsync();
        Assert.Empty(h.Downstairs.ActiveUpstairs());
    }

    [Fact]
    public async Task OutOfOrderNegotiationClosesTheConnection()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.SendAsync(Message.RegionInfoPlease.Instance);
        await up.ExpectClosedAsync();
    }

    [Fact]
    public async Task AHigherGenerationTakesOverAndTheOldUpstairsIsToldSo()
    {
        await using var h = new Harness();
        await using Upstairs first = await h.ConnectAsync(generation: 1);
        await first.NegotiateAsync();

        await using Upstairs second = await h.ConnectAsync(generation: 2);
        await second.NegotiateAsync();
        Assert.Equal(new Message.YouAreNoLongerActive(second.UpstairsId, second.SessionId, 2), await first.ReceiveAsync());
        await first.ExpectClosedAsync();
        Assert.Equal(second.UpstairsId, Assert.Single(h.Downstairs.ActiveUpstairs()).UpstairsId);

        // A lower generation cannot take over: its connection is closed and the active one stays.
        await using Upstairs stale = await h.ConnectAsync(generation: 1);
        await stale.SendAsync(stale.HereIAm());
        await stale.ExpectAsync<Message.YesItsMe>();
        await stale.SendAsync(new Message.PromoteToActive(stale.UpstairsId, stale.SessionId, 1));
        await stale.ExpectClosedAsync();
        Assert.Equal(second.UpstairsId, Assert.Single(h.Downstairs.ActiveUpstairs()).UpstairsId);
        await second.SendAsync(Message.Ruok.Instance);
        await second.ExpectAsync<Message.Imok>();
    }
}

public class DownstairsIoTests
{
    private static byte[] Blocks(int count, byte seed)
    {
        var data = new byte[count * Harness.BlockSize];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(i * 13 + seed);
        }
        return data;
    }

    [Fact]
    public async Task WriteReadFlushAcrossAnExtentBoundary()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        Guid u = up.UpstairsId, s = up.SessionId;

        byte[] data = Blocks(4, 7);
        await up.SendAsync(up.Write(1000, start: Harness.ExtentSize - 2, data)); // blocks 6..9: extents 0 and 1
        Assert.Equal(new Message.WriteAck(u, s, new JobId(1000), null), await up.ReceiveAsync());

        await up.SendAsync(up.Read(1001, start: Harness.ExtentSize - 3, count: 5, 1000));
        var read = await up.ExpectAsync<Message.ReadResponse>();
        Assert.Equal(new JobId(1001), read.Header.JobId);
        ReadBlockContext[] contexts = read.Header.Blocks.Value.ToArray();
        Assert.Equal(ReadBlockContext.Empty, contexts[0]);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(ReadBlockContext.Unencrypted(IntegrityHash.Compute(data.AsSpan(i * 512, 512))), contexts[i + 1]);
        }
        Assert.Equal([.. new byte[512], .. data], read.Data.ToArray());

        await up.SendAsync(up.Flush(1002, flushNumber: 1, gen: 1, 1000, 1001));
        Assert.Equal(new Message.FlushAck(u, s, new JobId(1002), null), await up.ReceiveAsync());

        await up.SendAsync(new Message.Barrier(u, s, new JobId(1003), new[] { new JobId(1002) }));
        Assert.Equal(new Message.BarrierAck(u, s, new JobId(1003), null), await up.ReceiveAsync());
    }

    [Fact]
    public async Task JobsWaitForTheirDependencies()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();

        byte[] data = Blocks(1, 3);
        // The read depends on a write that has not arrived yet: it must wait, then see the data.
        await up.SendAsync(up.Read(2001, start: 0, count: 1, 2000));
        await up.SendAsync(up.Write(2000, start: 0, data));
        var ack = await up.ExpectAsync<Message.WriteAck>();
        Assert.Equal(new JobId(2000), ack.JobId);
        var read = await up.ExpectAsync<Message.ReadResponse>();
        Assert.Equal(new JobId(2001), read.Header.JobId);
        Assert.Equal(data, read.Data.ToArray());
    }

    [Fact]
    public async Task AWriteWithABadHashIsReportedAndNotAcked()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        Message.Write w = up.Write(3000, 0, Blocks(1, 1));
        var bad = w with { Header = w.Header with { Contexts = new[] { new BlockContext(12345, null) } } };
        await up.SendAsync(bad);
        var report = await up.ExpectAsync<Message.ErrorReport>();
        Assert.Equal(new JobId(3000), report.JobId);
        Assert.Equal(CrucibleErrorKind.HashMismatch, report.Error.Kind);
        await up.SendAsync(Message.Ruok.Instance);
        // The failed job is retried on the next message, fails again, and is never acked.
        await up.ExpectAsync<Message.Imok>();
        Assert.Equal(new JobId(3000), (await up.ExpectAsync<Message.ErrorReport>()).JobId);
    }

    [Fact]
    public async Task IoForAnotherSessionGetsUuidMismatch()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        Message.ReadRequest r = up.Read(4000, 0, 1);
        await up.SendAsync(r with { SessionId = Guid.NewGuid() });
        Assert.Equal(new Message.UuidMismatch(up.SessionId), await up.ReceiveAsync());
        await up.SendAsync(r);
        Assert.Equal(new JobId(4000), (await up.ExpectAsync<Message.ReadResponse>()).Header.JobId);
    }

    [Fact]
    public async Task AReadPastTheRegionEndIsReported()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        await up.SendAsync(up.Read(5000, Harness.ExtentSize * Harness.ExtentCount - 1, 2));
        var report = await up.ExpectAsync<Message.ErrorReport>();
        Assert.Equal(CrucibleErrorKind.OffsetInvalid, report.Error.Kind);
    }

    [Fact]
    public async Task AWriteWhoseDataDoesNotMatchItsContextsClosesTheConnection()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        Message.Write w = up.Write(6000, 0, Blocks(2, 1));
        await up.SendAsync(w with { Data = w.Data[..700] });
        await up.ExpectClosedAsync();
    }

    [Fact]
    public async Task ReadOnlyRegionRefusesWritesByClosing()
    {
        await using var h = new Harness(readOnly: true);
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync(readOnly: true);
        await up.SendAsync(up.Read(7000, 0, 1));
        await up.ExpectAsync<Message.ReadResponse>();
        await up.SendAsync(up.Write(7001, 0, Blocks(1, 1)));
        await up.ExpectClosedAsync();
    }

    [Fact]
    public async Task LiveRepairCloseFlushAndReopen()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        Guid u = up.UpstairsId, s = up.SessionId;
        await up.SendAsync(up.Write(8000, 0, Blocks(1, 9)));
        await up.ExpectAsync<Message.WriteAck>();
        await up.SendAsync(new Message.ExtentLiveFlushClose(u, s, new JobId(8001), new[] { new JobId(8000) }, new ExtentId(0), 7, 3));
        var closed = await up.ExpectAsync<Message.ExtentLiveCloseAck>();
        Assert.Equal(((ulong)3, (ulong)7, false), closed.Result.Value);
        await up.SendAsync(new Message.ExtentLiveReopen(u, s, new JobId(8002), new[] { new JobId(8001) }, new ExtentId(0)));
        Assert.Equal(new Message.ExtentLiveAckId(u, s, new JobId(8002), null), await up.ReceiveAsync());
        await up.SendAsync(new Message.ExtentLiveNoOp(u, s, new JobId(8003), new[] { new JobId(8002) }));
        Assert.Equal(new Message.ExtentLiveAckId(u, s, new JobId(8003), null), await up.ReceiveAsync());
    }
}

public class DownstairsServiceTests
{
    [Fact]
    public async Task ListenAcceptsUpstairsUntilCancelled()
    {
        await using var h = new Harness();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        using var stop = new CancellationTokenSource();
        Task listening = h.Downstairs.ListenAsync(listener, stop.Token);

        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        await using (var up = new Upstairs(new CrucibleFrameConnection(client), Guid.NewGuid(), Guid.NewGuid(), 1))
        {
            await up.NegotiateAsync();
            await up.SendAsync(Message.Ruok.Instance);
            await up.ExpectAsync<Message.Imok>();
            stop.Cancel();
            await up.ExpectClosedAsync();
        }
        await listening.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task ReconciliationFlushesExtentsAndRefusesToRepairAnOpenExtent()
    {
        await using var h = new Harness();
        await using Upstairs up = await h.ConnectAsync();
        await up.NegotiateAsync();
        await up.SendAsync(up.Write(1, 0, new byte[Harness.BlockSize]));
        await up.ExpectAsync<Message.WriteAck>();

        await up.SendAsync(new Message.ExtentFlush(new ReconciliationId(5), new ExtentId(0), new ClientId(1), 9, 2));
        Assert.Equal(new Message.RepairAckId(new ReconciliationId(5)), await up.ReceiveAsync());

        await up.SendAsync(new Message.ExtentClose(new ReconciliationId(6), new ExtentId(1)));
        Assert.Equal(new Message.RepairAckId(new ReconciliationId(6)), await up.ReceiveAsync());
        await up.SendAsync(new Message.ExtentReopen(new ReconciliationId(7), new ExtentId(1)));
        Assert.Equal(new Message.RepairAckId(new ReconciliationId(7)), await up.ReceiveAsync());

        await up.SendAsync(new Message.ExtentRepair(new ReconciliationId(8), new ExtentId(2), new ClientId(0),
            SocketAddr.Parse("127.0.0.1:9999"), new[] { new ClientId(1) }));
        var error = await up.ExpectAsync<Message.ExtentError>();
        Assert.Equal(CrucibleErrorKind.InvalidExtent, error.Error.Kind); // extent 2 was never closed

        // The flushed extent now reports generation 2, flush 9, clean.
        await using Upstairs again = await h.ConnectAsync(generation: 2);
        (_, Message.ExtentVersions versions) = await again.NegotiateAsync();
        Assert.Equal(2ul, versions.GenNumbers[0]);
        Assert.Equal(9ul, versions.FlushNumbers[0]);
        Assert.False(versions.DirtyBits[0]);
    }
}

using System.Net;
using System.Threading.Channels;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Upstairs;

/// <summary>What an upstairs does with a downstairs once it has negotiated (crucible <c>ConnectionMode</c>).</summary>
public enum ConnectionMode
{
    /// <summary>First connection: extent versions, then reconciliation with the others.</summary>
    New,
    /// <summary>It left while active and may catch up by replay: LastFlush, then resend its jobs.</summary>
    Offline,
    /// <summary>It fell behind or failed: brought back by live repair.</summary>
    Faulted,
    /// <summary>A new downstairs replacing one of the three: live repair.</summary>
    Replaced,
}

/// <summary>Where a downstairs connection stands (crucible <c>DsState</c> and <c>NegotiationState</c>).</summary>
public enum ClientPhase
{
    Disconnected,
    WaitYesItsMe,
    WaitNowActive,
    WaitRegionInfo,
    WaitExtentVersions,
    WaitQuorum,
    Reconcile,
    LiveRepairReady,
    LiveRepair,
    Active,
    Stopped,
}

/// <summary>One of the three downstairs as the upstairs sees it (crucible <c>DownstairsClient</c>).</summary>
internal sealed class DownstairsClient
{
    public DownstairsClient(int id, IPEndPoint target)
    {
        Id = id;
        Target = target;
    }

    public int Id { get; }

    public IPEndPoint Target { get; set; }

    public ClientPhase Phase { get; set; } = ClientPhase.Disconnected;

    public ConnectionMode Mode { get; set; } = ConnectionMode.New;

    public CrucibleFrameConnection? Connection { get; set; }

    /// <summary>Messages for the writer task of the current connection, in order.</summary>
    public Channel<Message>? Outbox { get; set; }

    public SocketAddr RepairAddress { get; set; }

    public Guid? RegionUuid { get; set; }

    public ExtentMetadata[]? ExtentVersions { get; set; }

    /// <summary>The last flush this downstairs acknowledged (crucible <c>last_flush</c>), sent in LastFlush on replay.</summary>
    public JobId? LastFlush { get; set; }

    /// <summary>Live repair: jobs below this id were never sent on its current connection (crucible <c>repair_min_id</c>); kept after the repair, they are pruned from its dependencies.</summary>
    public ulong RepairMinId { get; set; }

    /// <summary>Live repair: the extent being repaired now; -1 before the first.</summary>
    public long RepairExtent { get; set; } = -1;

    /// <summary>Jobs waiting for it (sent or to be replayed) and their write bytes.</summary>
    public int OutstandingJobs { get; set; }

    public long OutstandingBytes { get; set; }

    public CancellationTokenSource? ConnectionCancel { get; set; }

    /// <summary>Why the last connection attempt or connection failed (a refused TLS handshake, a reset), or null.</summary>
    public string? LastError { get; set; }

    /// <summary>Live repair statistics (crucible <c>DownstairsStats</c>), for the control API.</summary>
    public int ExtentsRepaired { get; set; }

    public int ExtentsConfirmed { get; set; }

    public int LiveRepairCompleted { get; set; }

    public int LiveRepairAborted { get; set; }

    public void Send(Message m) => Outbox?.Writer.TryWrite(m);

    /// <summary>Drops the current connection (the client task then reconnects).</summary>
    public void Disconnect()
    {
        try
        {
            ConnectionCancel?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
        Outbox?.Writer.TryComplete();
        Connection?.Dispose();
    }
}

/// <summary>A snapshot of one downstairs' state, for logs, tests and the control interface.</summary>
public readonly record struct DownstairsStatus(int ClientId, IPEndPoint Target, ClientPhase Phase, ConnectionMode Mode,
    JobId? LastFlush, int OutstandingJobs, string? LastError = null);

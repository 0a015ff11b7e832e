using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Tls;
using Regions = Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>Settings of a downstairs service.</summary>
public sealed record DownstairsOptions
{
    /// <summary>Serve the region read-only (the region must have been opened read-only).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>The address announced in YesItsMe for the repair service (real default: port + 4000).</summary>
    public SocketAddr RepairAddress { get; init; }

    /// <summary>
    /// Test option (<c>--lossy</c>): a quarter of the time a ready job is skipped for now (run
    /// later in the same pass, exercising dependency tracking), and a quarter of jobs pause 100 ms first.
    /// </summary>
    public bool Lossy { get; init; }

    /// <summary>Test option (<c>--read-errors</c>): a quarter of reads fail with GenericError("test error").</summary>
    public bool ReadErrors { get; init; }

    /// <summary>Test option (<c>--write-errors</c>): a quarter of writes fail with GenericError("test error").</summary>
    public bool WriteErrors { get; init; }

    /// <summary>Test option (<c>--flush-errors</c>): a quarter of flushes fail with GenericError("test error").</summary>
    public bool FlushErrors { get; init; }

    /// <summary>The source of the test options' randomness (a seeded one makes a test repeatable).</summary>
    public Random? Random { get; init; }

    /// <summary>How long one repair request to another downstairs may take.</summary>
    public TimeSpan RepairTimeout { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// The downstairs network service (crucible <c>downstairs/src/lib.rs</c>): negotiates with
/// upstairs connections, keeps at most one read-write upstairs active (a higher generation
/// takes over), and runs their IO against a <see cref="Regions.Region"/> in dependency order.
/// </summary>
/// <remarks>
/// <para>Negotiation, as the real <c>on_negotiation_step</c>: HereIAm (version 13, or 13 among
/// the alternates, else VersionMismatch; read-only and encryption must match, else
/// ReadOnlyMismatch / EncryptedMismatch; then YesItsMe), PromoteToActive (ids must be those
/// of HereIAm, else UuidMismatch; a lower generation than the active upstairs is refused;
/// the replaced upstairs gets YouAreNoLongerActive), RegionInfoPlease, then LastFlush or
/// ExtentVersionsPlease. Any refusal closes the connection after the reply.</para>
/// <para>IO, as the real <c>proc_frame</c>/<c>do_work</c>: a message whose upstairs or session
/// id is not the negotiated one gets UuidMismatch and is dropped; writes to a read-only
/// region close the connection; a job runs once all its dependencies are among the jobs
/// completed since the last flush or barrier. A job that fails is answered with ErrorReport
/// and stays queued: the upstairs waits for an Ok. The real downstairs retries such a job at
/// once, in a loop; this one retries it when the next message arrives.</para>
/// <para>ExtentRepair (reconciliation) and ExtentLiveRepair replace a closed extent with the
/// copy another downstairs' <see cref="RepairServer"/> serves (<see cref="ExtentRepairClient"/>);
/// like the real downstairs, nothing else is processed while the files are copied.</para>
/// <para>Not provided: ZFS snapshots (a Flush's snapshot_details is ignored, as in a real
/// build without the zfs_snapshot feature).</para>
/// <para>All region work and session state changes happen under one gate; replies are
/// queued to each connection's writer, so no lock is held while sending.</para>
/// </remarks>
public sealed class Downstairs
{
    private readonly Regions.Region _region;
    private readonly DownstairsOptions _options;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<Guid, UpstairsSession> _active = new();
    private readonly HashSet<uint> _closedExtents = new();

    public Downstairs(Regions.Region region, DownstairsOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(region);
        ArgumentNullException.ThrowIfNull(options);
        if (region.ReadOnly != options.ReadOnly)
        {
            throw new ArgumentException(
                $"the region was opened {(region.ReadOnly ? "read-only" : "read-write")} but the options say {(options.ReadOnly ? "read-only" : "read-write")}",
                nameof(options));
        }
        _region = region;
        _options = options;
        _log = logger ?? NullLogger.Instance;
    }

    public bool ReadOnly => _options.ReadOnly;

    public bool Encrypted => _region.Encrypted;

    /// <summary>The directory of the region served.</summary>
    public string RegionDirectory => _region.Directory;

    /// <summary>The definition of the region served.</summary>
    public Regions.RegionDefinition RegionDefinition => _region.Definition;

    private Random Rng => _options.Random ?? Random.Shared;

    private bool OneInFour() => Rng.Next(4) == 0;

    /// <summary>Whether extent <paramref name="eid"/> is closed (by ExtentClose or a live-repair close).</summary>
    public bool IsExtentClosed(uint eid)
    {
        _gate.Wait();
        try
        {
            return _closedExtents.Contains(eid);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The real <c>show_work</c>: logs every active upstairs' queued jobs.</summary>
    public void ShowWork()
    {
        _gate.Wait();
        try
        {
            foreach (UpstairsSession s in _active.Values)
            {
                PendingJob[] pending = s.Work?.Pending.ToArray() ?? [];
                _log.LogInformation("upstairs {Upstairs}: {Count} jobs waiting: {Jobs}", s.Upstairs, pending.Length,
                    string.Join(", ", pending.Select(j => $"{j.Id} {j.Request.Tag} deps [{string.Join(",", j.Dependencies.AsSpan().ToArray())}]")));
            }
            if (_active.Count == 0)
            {
                _log.LogInformation("no active upstairs, no work");
            }
        }
        finally
        {
            _gate.Release();
        }
    }
    /// <summary>The upstairs currently active (upstairs id, session id, generation).</summary>
    public UpstairsConnection[] ActiveUpstairs()
    {
        _gate.Wait();
        try
        {
            return _active.Values.Select(s => s.Upstairs).ToArray();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>How long an upstairs may take to finish the TLS handshake.</summary>
    public static readonly TimeSpan TlsHandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Accepts upstairs connections on <paramref name="listener"/> until cancelled. With
    /// <paramref name="tls"/>, every connection must complete a TLS handshake with a client
    /// certificate the roots trust (crucible's <c>TlsAcceptor</c> with <c>WebPkiClientVerifier</c>);
    /// one that does not is logged and closed.
    /// </summary>
    public async Task ListenAsync(Socket listener, CancellationToken cancellationToken, CrucibleTlsContext? tls = null)
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                Socket socket = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                socket.NoDelay = true;
                _log.LogInformation("connection from {Peer}", socket.RemoteEndPoint);
                connections.RemoveAll(t => t.IsCompleted);
                connections.Add(tls is null
                    ? ServeAsync(new CrucibleFrameConnection(socket), cancellationToken)
                    : ServeTlsAsync(socket, tls, cancellationToken));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        await Task.WhenAll(connections).ConfigureAwait(false);
    }

    private async Task ServeTlsAsync(Socket socket, CrucibleTlsContext tls, CancellationToken cancellationToken)
    {
        EndPoint? peer = socket.RemoteEndPoint;
        System.Net.Security.SslStream stream;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(TlsHandshakeTimeout);
            try
            {
                stream = await tls.AcceptAsync(socket, timeout.Token).ConfigureAwait(false);
            }
            catch (CrucibleTlsException e)
            {
                Interlocked.Increment(ref _tlsRefused);
                _log.LogWarning("TLS handshake with {Peer} failed, connection closed: {Error}", peer, e.Message);
                socket.Dispose();
                return;
            }
            catch (OperationCanceledException)
            {
                if (!cancellationToken.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _tlsRefused);
                    _log.LogWarning("TLS handshake with {Peer} did not finish within {Timeout}, connection closed", peer, TlsHandshakeTimeout);
                }
                socket.Dispose();
                return;
            }
        }
        _log.LogInformation("TLS session with {Peer}: {Protocol}, client {Subject}", peer, stream.SslProtocol, stream.RemoteCertificate?.Subject);
        await ServeAsync(new CrucibleFrameConnection(stream), cancellationToken).ConfigureAwait(false);
    }

    private long _tlsRefused;

    /// <summary>Connections closed because their TLS handshake failed (untrusted or missing client certificate).</summary>
    public long TlsHandshakesRefused => Interlocked.Read(ref _tlsRefused);

    /// <summary>
    /// Serves one upstairs connection until it closes, misbehaves, is replaced, or
    /// <paramref name="cancellationToken"/> fires. Disposes the connection.
    /// </summary>
    public async Task ServeAsync(CrucibleFrameConnection connection, CancellationToken cancellationToken = default)
    {
        using var session = new UpstairsSession(connection, cancellationToken);
        Task writer = WriterLoopAsync(session);
        try
        {
            while (true)
            {
                ReceivedMessage? received = await connection.ReceiveAsync(session.Cancellation.Token).ConfigureAwait(false);
                if (received is null)
                {
                    _log.LogInformation("upstairs {Upstairs} closed the connection", session.Upstairs);
                    break;
                }
                bool keepGoing;
                await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                try
                {
                    keepGoing = OnMessage(session, received);
                }
                finally
                {
                    _gate.Release();
                }
                if (!keepGoing)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (session.Cancellation.IsCancellationRequested)
        {
        }
        catch (CrucibleProtocolException e)
        {
            _log.LogWarning("upstairs {Upstairs}: {Error}; disconnecting", session.Upstairs, e.Message);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
            _log.LogWarning("upstairs {Upstairs}: connection failed: {Error}", session.Upstairs, e.Message);
        }
        finally
        {
            await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                RemoveSession(session);
            }
            finally
            {
                _gate.Release();
            }
            session.Replies.Writer.TryComplete();
            await writer.ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task WriterLoopAsync(UpstairsSession session)
    {
        bool failed = false;
        await foreach (Outgoing o in session.Replies.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            try
            {
                if (!failed)
                {
                    await session.Connection.SendAsync(o.Message, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
            {
                _log.LogWarning("upstairs {Upstairs}: send failed: {Error}", session.Upstairs, e.Message);
                failed = true;
                session.Cancellation.Cancel();
            }
            finally
            {
                if (o.Pooled is not null)
                {
                    ArrayPool<byte>.Shared.Return(o.Pooled);
                }
            }
        }
    }

    /// <summary>Removes a finished connection, dropping its active status and queued jobs.</summary>
    private void RemoveSession(UpstairsSession session)
    {
        if (session.Phase != SessionPhase.Open
            && _active.TryGetValue(session.Upstairs.UpstairsId, out UpstairsSession? active) && active == session)
        {
            _active.Remove(session.Upstairs.UpstairsId);
            _log.LogInformation("upstairs {Upstairs} was active, clearing", session.Upstairs);
        }
        session.Phase = SessionPhase.Closed;
        session.DropWork();
    }

    /// <summary>Handles one message under the gate; false closes the connection.</summary>
    private bool OnMessage(UpstairsSession session, ReceivedMessage received)
    {
        if (session.Phase == SessionPhase.Closed)
        {
            received.Dispose();
            return false;
        }
        if (session.Phase != SessionPhase.Running)
        {
            using (received)
            {
                return OnNegotiationStep(session, received.Message);
            }
        }
        return OnIoMessage(session, received);
    }

    private bool OnNegotiationStep(UpstairsSession session, Message message)
    {
        switch (message)
        {
            case Message.Ruok:
                session.Reply(Message.Imok.Instance);
                return true;

            case Message.HereIAm h:
                if (session.Phase != SessionPhase.Open)
                {
                    _log.LogWarning("HereIAm received out of order");
                    return false;
                }
                _log.LogInformation("connection request from {UpstairsId} with version {Version}", h.UpstairsId, h.Version);
                if (h.Version != CrucibleProtocol.CrucibleMessageVersion)
                {
                    if (!h.AlternateVersions.AsSpan().Contains(CrucibleProtocol.CrucibleMessageVersion))
                    {
                        session.Reply(new Message.VersionMismatch(CrucibleProtocol.CrucibleMessageVersion));
                        _log.LogWarning("required version {Ours}, or {Alternates} got {Theirs}",
                            CrucibleProtocol.CrucibleMessageVersion, h.AlternateVersions, h.Version);
                        return false;
                    }
                    _log.LogWarning("upstairs is version {Theirs} but supports {Ours}", h.Version, CrucibleProtocol.CrucibleMessageVersion);
                }
                if (h.ReadOnly != ReadOnly)
                {
                    session.Reply(new Message.ReadOnlyMismatch(ReadOnly));
                    _log.LogWarning("closing connection due to read-only mismatch");
                    return false;
                }
                if (h.Encrypted != Encrypted)
                {
                    session.Reply(new Message.EncryptedMismatch(Encrypted));
                    _log.LogWarning("closing connection due to encryption mismatch");
                    return false;
                }
                session.Upstairs = new UpstairsConnection(h.UpstairsId, h.SessionId, h.Generation);
                session.Phase = SessionPhase.ConnectedToUpstairs;
                session.Reply(new Message.YesItsMe(CrucibleProtocol.CrucibleMessageVersion, _options.RepairAddress));
                return true;

            case Message.PromoteToActive p:
                if (session.Phase != SessionPhase.ConnectedToUpstairs)
                {
                    _log.LogWarning("PromoteToActive received out of order ({Phase})", session.Phase);
                    return false;
                }
                if (p.UpstairsId != session.Upstairs.UpstairsId || p.SessionId != session.Upstairs.SessionId)
                {
                    session.Reply(new Message.UuidMismatch(session.Upstairs.UpstairsId));
                    _log.LogWarning("expected upstairs {Expected}, PromoteToActive names {UpstairsId}/{SessionId}",
                        session.Upstairs, p.UpstairsId, p.SessionId);
                    return false;
                }
                session.Upstairs = session.Upstairs with { Generation = p.Generation };
                if (!PromoteToActive(session))
                {
                    return false;
                }
                session.Phase = SessionPhase.PromotedToActive;
                session.Reply(new Message.YouAreNowActive(p.UpstairsId, p.SessionId, p.Generation));
                return true;

            case Message.RegionInfoPlease:
                if (session.Phase != SessionPhase.PromotedToActive)
                {
                    _log.LogWarning("RegionInfoPlease received out of order ({Phase})", session.Phase);
                    return false;
                }
                session.Phase = SessionPhase.SentRegionInfo;
                session.Reply(new Message.RegionInfo(_region.Definition.ToWire()));
                return true;

            case Message.LastFlush lf:
                if (session.Phase != SessionPhase.SentRegionInfo)
                {
                    _log.LogWarning("LastFlush received out of order ({Phase})", session.Phase);
                    return false;
                }
                session.StartRunning(lf.LastFlushNumber);
                _log.LogInformation("upstairs {Upstairs} negotiated; last flush {LastFlush}", session.Upstairs, lf.LastFlushNumber);
                return true;

            case Message.ExtentVersionsPlease:
                if (session.Phase != SessionPhase.SentRegionInfo)
                {
                    _log.LogWarning("ExtentVersionsPlease received out of order ({Phase})", session.Phase);
                    return false;
                }
                session.StartRunning(null);
                Regions.ExtentMeta[] meta;
                try
                {
                    meta = _region.MetaInfo();
                }
                catch (Regions.RegionException e)
                {
                    _log.LogError("cannot read extent metadata: {Error}", e.Message);
                    return false;
                }
                session.Reply(new Message.ExtentVersions(
                    meta.Select(m => m.GenNumber).ToArray(),
                    meta.Select(m => m.FlushNumber).ToArray(),
                    meta.Select(m => m.Dirty).ToArray()));
                _log.LogInformation("upstairs {Upstairs} negotiated (reconciliation)", session.Upstairs);
                return true;

            default:
                _log.LogWarning("ignored {Tag} received during negotiation", message.Tag);
                return true;
        }
    }

    /// <summary>The real <c>promote_to_active</c>; false refuses the new upstairs.</summary>
    private bool PromoteToActive(UpstairsSession session)
    {
        UpstairsConnection upstairs = session.Upstairs;
        if (ReadOnly)
        {
            // Several read-only upstairs may be active, one session per upstairs id.
            if (_active.Remove(upstairs.UpstairsId, out UpstairsSession? previous))
            {
                Replace(previous, upstairs);
            }
            _active.Add(upstairs.UpstairsId, session);
            return true;
        }

        if (_active.Count > 0)
        {
            UpstairsSession current = _active.Values.Single();
            UpstairsConnection active = current.Upstairs;
            _log.LogWarning("attempting read-write takeover from {Active} to {New}", active, upstairs);
            if (upstairs.Generation < active.Generation)
            {
                _log.LogWarning("current generation {Active} is above the requested {Requested}", active.Generation, upstairs.Generation);
                return false;
            }
            if (upstairs.Generation == active.Generation && active != upstairs)
            {
                _log.LogWarning("same generation, but {Active} does not match {New}", active, upstairs);
                return false;
            }
            _active.Remove(active.UpstairsId);
            Replace(current, upstairs);
        }
        _active.Add(upstairs.UpstairsId, session);
        foreach (uint eid in _closedExtents.ToArray())
        {
            _region.ReopenExtent(eid);
            _closedExtents.Remove(eid);
        }
        _log.LogInformation("{Upstairs} is now active (read-write)", upstairs);
        return true;
    }

    /// <summary>The real <c>on_new_connection_replacing</c>: tells the old upstairs and closes it.</summary>
    private void Replace(UpstairsSession old, UpstairsConnection newUpstairs)
    {
        _log.LogWarning("another upstairs {New} promoted to active, shutting down {Old}", newUpstairs, old.Upstairs);
        old.Reply(new Message.YouAreNoLongerActive(newUpstairs.UpstairsId, newUpstairs.SessionId, newUpstairs.Generation));
        old.Phase = SessionPhase.Closed;
        old.DropWork();
        old.Replies.Writer.TryComplete();
        old.Cancellation.Cancel();
    }

    private bool OnIoMessage(UpstairsSession session, ReceivedMessage received)
    {
        Message m = received.Message;
        if (!IsMessageValid(session, m))
        {
            received.Dispose();
            return true;
        }
        if (ReadOnly && m is Message.Write or Message.WriteUnwritten or Message.ExtentClose or Message.ExtentLiveFlushClose
                or Message.ExtentLiveRepair or Message.ExtentLiveReopen or Message.ExtentLiveNoOp)
        {
            _log.LogError("read-only but received {Tag}", m.Tag);
            received.Dispose();
            return false;
        }

        PendingJob? job;
        switch (m)
        {
            case Message.Ruok:
                session.Reply(Message.Imok.Instance);
                received.Dispose();
                return DoReadyWork(session); // retries jobs that failed earlier
            case Message.Write w:
                if (!AcceptWrite(session, m, w.Header, w.Data.Length, received, out job))
                {
                    return false;
                }
                break;
            case Message.WriteUnwritten w:
                if (!AcceptWrite(session, m, w.Header, w.Data.Length, received, out job))
                {
                    return false;
                }
                break;
            case Message.ReadRequest r:
                if (r.Count > (ulong)CrucibleProtocol.MaxIoBlocks((int)_region.Definition.BlockSize))
                {
                    _log.LogWarning("upstairs {Upstairs}: read job {JobId} of {Count} blocks cannot be answered in one frame; disconnecting",
                        session.Upstairs, r.JobId, r.Count);
                    received.Dispose();
                    return false;
                }
                job = new PendingJob(r.JobId, r.Dependencies, m, received);
                break;
            case Message.Flush f:
                job = new PendingJob(f.JobId, f.Dependencies, m, received);
                break;
            case Message.Barrier b:
                job = new PendingJob(b.JobId, b.Dependencies, m, received);
                break;
            case Message.ExtentLiveClose c:
                job = new PendingJob(c.JobId, c.Dependencies, m, received);
                break;
            case Message.ExtentLiveFlushClose c:
                job = new PendingJob(c.JobId, c.Dependencies, m, received);
                break;
            case Message.ExtentLiveRepair c:
                job = new PendingJob(c.JobId, c.Dependencies, m, received);
                break;
            case Message.ExtentLiveReopen c:
                job = new PendingJob(c.JobId, c.Dependencies, m, received);
                break;
            case Message.ExtentLiveNoOp c:
                job = new PendingJob(c.JobId, c.Dependencies, m, received);
                break;
            case Message.ExtentClose or Message.ExtentReopen or Message.ExtentFlush or Message.ExtentRepair:
                using (received)
                {
                    session.Reply(Reconcile(m));
                }
                return true;
            default:
                _log.LogWarning("upstairs {Upstairs}: unexpected {Tag}; disconnecting", session.Upstairs, m.Tag);
                received.Dispose();
                return false;
        }

        session.Work!.Pending.AddLast(job!);
        return DoReadyWork(session);
    }

    /// <summary>The real <c>is_message_valid</c>: IO must name the negotiated upstairs and session.</summary>
    private static bool IsMessageValid(UpstairsSession session, Message m)
    {
        (Guid upstairsId, Guid sessionId) = m switch
        {
            Message.Write w => (w.Header.UpstairsId, w.Header.SessionId),
            Message.WriteUnwritten w => (w.Header.UpstairsId, w.Header.SessionId),
            Message.Flush f => (f.UpstairsId, f.SessionId),
            Message.Barrier b => (b.UpstairsId, b.SessionId),
            Message.ReadRequest r => (r.UpstairsId, r.SessionId),
            Message.ExtentLiveClose c => (c.UpstairsId, c.SessionId),
            Message.ExtentLiveFlushClose c => (c.UpstairsId, c.SessionId),
            Message.ExtentLiveRepair c => (c.UpstairsId, c.SessionId),
            Message.ExtentLiveReopen c => (c.UpstairsId, c.SessionId),
            Message.ExtentLiveNoOp c => (c.UpstairsId, c.SessionId),
            _ => (session.Upstairs.UpstairsId, session.Upstairs.SessionId),
        };
        if (upstairsId != session.Upstairs.UpstairsId)
        {
            session.Reply(new Message.UuidMismatch(session.Upstairs.UpstairsId));
            return false;
        }
        if (sessionId != session.Upstairs.SessionId)
        {
            session.Reply(new Message.UuidMismatch(session.Upstairs.SessionId));
            return false;
        }
        return true;
    }

    /// <summary>
    /// Makes a job of a Write/WriteUnwritten that passes the checks of <c>RegionWrite::new</c>
    /// (whole blocks, one context per block); one that fails them closes the connection, as
    /// in the real downstairs.
    /// </summary>
    private bool AcceptWrite(UpstairsSession session, Message m, WriteHeader header, int dataLength,
        ReceivedMessage received, out PendingJob? job)
    {
        if (!CheckWriteShape(header, dataLength, out string? why))
        {
            _log.LogWarning("upstairs {Upstairs}: {Tag} job {JobId}: {Why}; disconnecting", session.Upstairs, m.Tag, header.JobId, why);
            received.Dispose();
            job = null;
            return false;
        }
        job = new PendingJob(header.JobId, header.Dependencies, m, received);
        return true;
    }

    private bool CheckWriteShape(WriteHeader header, int dataLength, out string? why)
    {
        ulong blockSize = _region.Definition.BlockSize;
        if ((ulong)dataLength % blockSize != 0)
        {
            why = $"{dataLength} bytes is not a whole number of {blockSize}-byte blocks";
            return false;
        }
        if ((ulong)dataLength / blockSize != (ulong)header.Contexts.Count)
        {
            why = $"got {header.Contexts.Count} contexts but {(ulong)dataLength / blockSize} blocks";
            return false;
        }
        why = null;
        return true;
    }

    /// <summary>Runs every job whose dependencies are met, until no more can run; false closes the connection.</summary>
    private bool DoReadyWork(UpstairsSession session)
    {
        Work work = session.Work!;
        bool progress = true;
        while (progress)
        {
            progress = false;
            for (LinkedListNode<PendingJob>? node = work.Pending.First; node is not null;)
            {
                LinkedListNode<PendingJob>? next = node.Next;
                PendingJob job = node.Value;
                if (!job.FailedThisPass && work.IsReady(job))
                {
                    work.Pending.Remove(node);
                    if (_options.Lossy && OneInFour())
                    {
                        // [lossy] skip: to the back of the queue, tried again in this pass.
                        _log.LogInformation("[lossy] skipping {JobId}", job.Id);
                        work.Pending.AddLast(job);
                        progress = true;
                        node = next;
                        continue;
                    }
                    JobOutcome outcome = DoWork(session, job);
                    if (outcome == JobOutcome.Fatal)
                    {
                        return false;
                    }
                    if (outcome == JobOutcome.Failed)
                    {
                        job.FailedThisPass = true;
                        work.Pending.AddLast(job);
                    }
                    else
                    {
                        progress = true;
                    }
                }
                node = next;
            }
        }
        foreach (PendingJob job in work.Pending)
        {
            job.FailedThisPass = false;
        }
        return true;
    }

    private enum JobOutcome
    {
        Done,
        Failed,
        Fatal,
    }

    /// <summary>The real <c>do_work</c>: run, then ack (or ErrorReport and keep the job).</summary>
    private JobOutcome DoWork(UpstairsSession session, PendingJob job)
    {
        UpstairsConnection up = session.Upstairs;
        Message reply = Execute(session, job, out byte[]? pooled);
        if (reply.Err is CrucibleError error)
        {
            if (pooled is not null)
            {
                ArrayPool<byte>.Shared.Return(pooled);
            }
            _log.LogWarning("job {JobId} ({Tag}) failed: {Error}", job.Id, job.Request.Tag, error);
            session.Reply(new Message.ErrorReport(up.UpstairsId, up.SessionId, job.Id, error));
            if (reply is Message.ExtentLiveRepairAckId)
            {
                // As in the real downstairs: a failed live repair taints the connection.
                job.Lease.Dispose();
                return JobOutcome.Fatal;
            }
            return JobOutcome.Failed;
        }
        session.Reply(reply, pooled);
        session.Work!.Complete(job.Id, resets: reply is Message.FlushAck or Message.BarrierAck);
        job.Lease.Dispose();
        return JobOutcome.Done;
    }

    /// <summary>The real <c>do_work_inner</c>: does the IO and builds the reply (errors inside it).</summary>
    private Message Execute(UpstairsSession session, PendingJob job, out byte[]? pooled)
    {
        UpstairsConnection up = session.Upstairs;
        Guid u = up.UpstairsId;
        Guid s = up.SessionId;
        JobId id = job.Id;
        pooled = null;
        if (_options.Lossy && OneInFour())
        {
            _log.LogInformation("lossy pause {JobId}", id);
            Thread.Sleep(100);
        }
        switch (job.Request)
        {
            case Message.Write w:
                return new Message.WriteAck(u, s, id, Try(() =>
                {
                    InjectError(_options.WriteErrors, "write");
                    WriteBlocks(w.Header, w.Data, onlyUnwritten: false);
                }));
            case Message.WriteUnwritten w:
                return new Message.WriteUnwrittenAck(u, s, id, Try(() =>
                {
                    InjectError(_options.WriteErrors, "writeunwritten");
                    WriteBlocks(w.Header, w.Data, onlyUnwritten: true);
                }));
            case Message.ReadRequest r:
                try
                {
                    InjectError(_options.ReadErrors, "read");
                    (ValueArray<ReadBlockContext> blocks, byte[] buffer, int length) = ReadBlocks(r.Start, r.Count);
                    pooled = buffer;
                    return new Message.ReadResponse(
                        new ReadResponseHeader(u, s, id, CrucibleResult<ValueArray<ReadBlockContext>>.Ok(blocks)),
                        buffer.AsMemory(0, length));
                }
                catch (Exception e) when (IsIoFailure(e))
                {
                    return new Message.ReadResponse(
                        new ReadResponseHeader(u, s, id, CrucibleResult<ValueArray<ReadBlockContext>>.Err(e.ToCrucibleError())),
                        ReadOnlyMemory<byte>.Empty);
                }
            case Message.Flush f:
                return new Message.FlushAck(u, s, id, Try(() =>
                {
                    InjectError(_options.FlushErrors, "flush");
                    if (ReadOnly && f.SnapshotDetails is not null)
                    {
                        throw new Regions.RegionException(Regions.RegionError.ModifyingReadOnlyRegion, "snapshot of a read-only region");
                    }
                    _region.Flush(f.FlushNumber, f.GenNumber, f.ExtentLimit?.Value);
                }));
            case Message.Barrier:
                return new Message.BarrierAck(u, s, id, null);
            case Message.ExtentLiveClose c:
                return new Message.ExtentLiveCloseAck(u, s, id, TryClose(c.ExtentId.Value, flush: null));
            case Message.ExtentLiveFlushClose c:
                return new Message.ExtentLiveCloseAck(u, s, id, TryClose(c.ExtentId.Value, flush: (c.FlushNumber, c.GenNumber)));
            case Message.ExtentLiveReopen c:
                return new Message.ExtentLiveAckId(u, s, id, Try(() => Reopen(c.ExtentId.Value)));
            case Message.ExtentLiveNoOp:
                return new Message.ExtentLiveAckId(u, s, id, null);
            case Message.ExtentLiveRepair c:
                _log.LogInformation("ExtentLiveRepair: extent {Eid} sra:{Source}", c.ExtentId, c.SourceRepairAddress);
                return new Message.ExtentLiveRepairAckId(u, s, id, Try(() => RepairExtent(c.ExtentId.Value, c.SourceRepairAddress)));
            default:
                throw new InvalidOperationException($"{job.Request.Tag} is not an IO job");
        }
    }

    private Message Reconcile(Message m)
    {
        switch (m)
        {
            case Message.ExtentFlush f:
            {
                CrucibleError? e = Try(() => _region.FlushExtent(f.ExtentId.Value, f.GenNumber, f.FlushNumber));
                return e is null ? new Message.RepairAckId(f.RepairId) : new Message.ExtentError(f.RepairId, f.ExtentId, e);
            }
            case Message.ExtentClose c:
            {
                CrucibleError? e = Try(() =>
                {
                    _region.CloseExtent(c.ExtentId.Value);
                    _closedExtents.Add(c.ExtentId.Value);
                });
                return e is null ? new Message.RepairAckId(c.RepairId) : new Message.ExtentError(c.RepairId, c.ExtentId, e);
            }
            case Message.ExtentReopen r:
            {
                CrucibleError? e = Try(() => Reopen(r.ExtentId.Value));
                return e is null ? new Message.RepairAckId(r.RepairId) : new Message.ExtentError(r.RepairId, r.ExtentId, e);
            }
            default:
            {
                var repair = (Message.ExtentRepair)m;
                _log.LogInformation("{RepairId} Repair extent {Eid} source:[{Source}] {Address}",
                    repair.RepairId, repair.ExtentId, repair.SourceClientId, repair.SourceRepairAddress);
                CrucibleError? e = Try(() => RepairExtent(repair.ExtentId.Value, repair.SourceRepairAddress));
                return e is null ? new Message.RepairAckId(repair.RepairId) : new Message.ExtentError(repair.RepairId, repair.ExtentId, e);
            }
        }
    }

    /// <summary>The real <c>Region::repair_extent</c>: the extent must be closed; it stays closed until reopened.</summary>
    private void RepairExtent(uint eid, SocketAddr source)
    {
        if (ReadOnly)
        {
            throw new Regions.RegionException(Regions.RegionError.ModifyingReadOnlyRegion, $"repair of extent {eid} in a read-only region");
        }
        if (eid >= _region.ExtentCount)
        {
            throw new Regions.RegionException(Regions.RegionError.InvalidExtent, $"extent {eid} is beyond the region's {_region.ExtentCount} extents");
        }
        if (!_closedExtents.Contains(eid))
        {
            throw new Regions.RegionException(Regions.RegionError.InvalidExtent, $"extent {eid} must be closed before it is repaired");
        }
        ExtentRepairClient.RepairExtent(_region.Directory, eid, source.ToEndPoint(), clone: false, _log, _options.RepairTimeout);
    }

    /// <summary>The test options' random failures (the real downstairs' <c>--*-errors</c>).</summary>
    private void InjectError(bool enabled, string what)
    {
        if (enabled && OneInFour())
        {
            _log.LogWarning("returning error on {What}!", what);
            throw new InjectedErrorException();
        }
    }

    private void Reopen(uint eid)
    {
        _region.ReopenExtent(eid);
        _closedExtents.Remove(eid);
    }

    private CrucibleResult<(ulong, ulong, bool)> TryClose(uint eid, (ulong Flush, ulong Gen)? flush)
    {
        try
        {
            if (flush is { } f)
            {
                _region.FlushExtent(eid, f.Gen, f.Flush);
            }
            (ulong gen, ulong flushNumber, bool dirty) = _region.CloseExtent(eid);
            _closedExtents.Add(eid);
            return CrucibleResult<(ulong, ulong, bool)>.Ok((gen, flushNumber, dirty));
        }
        catch (Exception e) when (IsIoFailure(e))
        {
            return CrucibleResult<(ulong, ulong, bool)>.Err(e.ToCrucibleError());
        }
    }

    private static CrucibleError? Try(Action action)
    {
        try
        {
            action();
            return null;
        }
        catch (Exception e) when (IsIoFailure(e))
        {
            return e.ToCrucibleError();
        }
    }

    private static bool IsIoFailure(Exception e) =>
        e is Regions.RegionException or IOException or UnauthorizedAccessException or ExtentRepairException or InjectedErrorException;

    /// <summary>Splits an absolute block range into per-extent pieces (<c>RegionWrite::new</c> / <c>RegionReadRequest::new</c>).</summary>
    private List<(uint Extent, ulong Offset, int Blocks)> Split(ulong start, ulong count)
    {
        Regions.RegionDefinition def = _region.Definition;
        ulong perExtent = def.ExtentSize.Value;
        ulong total = perExtent * def.ExtentCount;
        if (start > total || count > total - start)
        {
            throw new Regions.RegionException(Regions.RegionError.OffsetInvalid,
                $"blocks {start}..{start + count} are beyond the region's {total} blocks");
        }
        var pieces = new List<(uint, ulong, int)>();
        ulong extent = start / perExtent;
        ulong offset = start % perExtent;
        while (count > 0)
        {
            ulong n = Math.Min(count, perExtent - offset);
            pieces.Add(((uint)extent, offset, (int)n));
            count -= n;
            extent++;
            offset = 0;
        }
        return pieces;
    }

    private void WriteBlocks(WriteHeader header, ReadOnlyMemory<byte> data, bool onlyUnwritten)
    {
        int blockSize = (int)_region.Definition.BlockSize;
        BlockContext[] contexts = header.Contexts.AsSpan().ToArray();
        List<(uint Extent, ulong Offset, int Blocks)> pieces = Split(header.Start.Value, (ulong)contexts.Length);
        var writes = new Regions.ExtentWrite[pieces.Count];
        int block = 0;
        for (int i = 0; i < pieces.Count; i++)
        {
            (uint eid, ulong offset, int n) = pieces[i];
            writes[i] = new Regions.ExtentWrite(eid, offset, data.Slice(block * blockSize, n * blockSize), contexts.AsMemory(block, n));
            block += n;
        }
        _region.Write(writes, onlyUnwritten);
    }

    private (ValueArray<ReadBlockContext> Blocks, byte[] Buffer, int Length) ReadBlocks(BlockIndex start, ulong count)
    {
        int blockSize = (int)_region.Definition.BlockSize;
        List<(uint Extent, ulong Offset, int Blocks)> pieces = Split(start.Value, count);
        int length = checked((int)count * blockSize);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            var contexts = new BlockContext?[count];
            var blocks = new ReadBlockContext[count];
            int block = 0;
            foreach ((uint eid, ulong offset, int n) in pieces)
            {
                _region.Read(eid, offset, buffer.AsSpan(block * blockSize, n * blockSize), contexts.AsSpan(block, n));
                block += n;
            }
            for (int i = 0; i < blocks.Length; i++)
            {
                blocks[i] = contexts[i].ToReadBlockContext();
            }
            return (blocks, buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}

/// <summary>The real <c>UpstairsConnection</c>: who an upstairs session is.</summary>
public readonly record struct UpstairsConnection(Guid UpstairsId, Guid SessionId, ulong Generation);

internal enum SessionPhase
{
    /// <summary>Waiting for HereIAm.</summary>
    Open,
    /// <summary>NegotiationState::ConnectedToUpstairs: YesItsMe sent.</summary>
    ConnectedToUpstairs,
    /// <summary>NegotiationState::PromotedToActive.</summary>
    PromotedToActive,
    /// <summary>NegotiationState::SentRegionInfo.</summary>
    SentRegionInfo,
    /// <summary>ConnectionState::Running: IO accepted.</summary>
    Running,
    /// <summary>Replaced or finished; nothing more is processed.</summary>
    Closed,
}

/// <summary>A reply queued for a connection's writer, with the pooled buffer to return after sending.</summary>
internal readonly record struct Outgoing(Message Message, byte[]? Pooled);

/// <summary>One upstairs connection's state (the real <c>ConnectionState</c>).</summary>
internal sealed class UpstairsSession : IDisposable
{
    public UpstairsSession(CrucibleFrameConnection connection, CancellationToken outer)
    {
        Connection = connection;
        Cancellation = CancellationTokenSource.CreateLinkedTokenSource(outer);
    }

    public CrucibleFrameConnection Connection { get; }

    public CancellationTokenSource Cancellation { get; }

    /// <summary>Unbounded, like the real reply channel: replies are never dropped or blocked on.</summary>
    public Channel<Outgoing> Replies { get; } = Channel.CreateUnbounded<Outgoing>(
        new UnboundedChannelOptions { SingleReader = true });

    public SessionPhase Phase { get; set; }

    public UpstairsConnection Upstairs { get; set; }

    public Work? Work { get; private set; }

    public void StartRunning(JobId? lastFlush)
    {
        Work = new Work(lastFlush);
        Phase = SessionPhase.Running;
    }

    public void Reply(Message message, byte[]? pooled = null)
    {
        if (!Replies.Writer.TryWrite(new Outgoing(message, pooled)) && pooled is not null)
        {
            ArrayPool<byte>.Shared.Return(pooled);
        }
    }

    /// <summary>Discards queued jobs (the upstairs resends whatever was not acked).</summary>
    public void DropWork()
    {
        if (Work is null)
        {
            return;
        }
        foreach (PendingJob job in Work.Pending)
        {
            job.Lease.Dispose();
        }
        Work.Pending.Clear();
    }

    public void Dispose() => Cancellation.Dispose();
}

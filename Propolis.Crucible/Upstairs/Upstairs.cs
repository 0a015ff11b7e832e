using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Tls;

namespace Propolis.Crucible.Upstairs;

/// <summary>The upstairs as a whole (crucible <c>UpstairsState</c>).</summary>
public enum UpstairsState
{
    Initializing,
    Active,
    /// <summary>A newer upstairs took over, or <see cref="Upstairs.DeactivateAsync"/> was called.</summary>
    Deactivated,
    /// <summary>Activation failed for a reason retrying cannot fix (see <see cref="Upstairs.FailureReason"/>).</summary>
    Failed,
}

/// <summary>
/// The Crucible upstairs: the client side of a region set of three downstairs, as crucible's
/// <c>upstairs/src</c> (<c>upstairs.rs</c>, <c>downstairs.rs</c>, <c>client.rs</c>, <c>mend.rs</c>,
/// <c>live_repair.rs</c>) behaves, message version 13.
/// </summary>
/// <remarks>
/// <para><b>Negotiation</b> (per downstairs): connect (<see cref="UpstairsOptions.ConnectTimeout"/>,
/// retried with doubling delays), HereIAm → YesItsMe, PromoteToActive(generation) → YouAreNowActive,
/// RegionInfoPlease → RegionInfo (checked against the configured block size, blocks per extent and
/// extent count, and against the other downstairs: a mismatch fails activation with a message),
/// then ExtentVersionsPlease (first connection, or a faulted/replaced downstairs) or LastFlush
/// (a downstairs that was briefly offline).</para>
/// <para><b>Activation</b> waits for all three ExtentVersions. It is refused (GenerationNumberTooLow)
/// when the generation is not above every extent generation the downstairs hold, as
/// <c>check_region_metadata</c>. The next flush number is one above the highest extent flush
/// number. Extents that differ or are dirty are reconciled: the source is the downstairs with the
/// highest (generation, flush, dirty), lowest client id among equals; each extent gets ExtentFlush
/// (source only), ExtentClose (all), ExtentRepair (destinations), ExtentReopen (all), one step at
/// a time.</para>
/// <para><b>I/O</b>: job ids count from 1000. A job depends on the last flush or barrier and on every
/// later job whose block range overlaps it (reads do not depend on reads); a flush or barrier
/// depends on every job since the previous one. Every job goes to every downstairs that can take
/// it. A write (or write-unwritten) is acknowledged to the guest once two downstairs have done it
/// (an acknowledged write is never lost to a single failure; one done by a single downstairs, the
/// others faulted, waits for live repair to copy it to a second), a flush likewise, a read with
/// the first response that validates (its hash, or its AES-GCM-SIV tag); a response that fails
/// validation is logged and counted (<see cref="ReadValidationFailures"/>) and the read is served
/// by another downstairs. Flushes carry the generation and a flush number
/// that increases by one each; one is issued automatically every
/// <see cref="UpstairsOptions.FlushTimeout"/> when anything was written since the last.</para>
/// <para><b>Failures</b>: a downstairs that disconnects while active is Offline; its jobs are kept and
/// replayed after LastFlush when it returns. One that has more than
/// <see cref="UpstairsOptions.MaxOutstandingJobs"/> jobs (or bytes) waiting, or fails a write or
/// flush, is Faulted: its jobs are skipped and, when it reconnects, it is brought back by live
/// repair, extent by extent (ExtentLiveFlushClose/Close, ExtentLiveRepair, NoOp, Reopen), while
/// guest I/O continues (I/O beyond the extent under repair skips it; flushes reach it with the
/// repair extent as their extent limit). YouAreNoLongerActive deactivates the upstairs: every
/// pending and later request fails, and the log names the newer generation. Ruok is sent every
/// <see cref="UpstairsOptions.PingInterval"/>; a connection silent for
/// <see cref="UpstairsOptions.InactivityTimeout"/> is dropped.</para>
/// <para>One lock guards all state; no I/O is done under it (each connection has a writer task fed
/// by a channel); guest callbacks run after it is released.</para>
/// </remarks>
public sealed class Upstairs : IAsyncDisposable
{
    public const ulong FirstJobId = 1000;

    private readonly UpstairsOptions _options;
    private readonly ILogger _log;
    private readonly object _gate = new();
    private readonly DownstairsClient[] _clients = new DownstairsClient[3];
    private readonly Task[] _clientTasks = new Task[3];
    private readonly CancellationTokenSource _stop = new();
    private readonly BlockCipher _cipher;
    private readonly Guid _sessionId = Guid.NewGuid();

    /// <summary>Every job not yet retired, by id.</summary>
    private readonly JobTable _jobs = new();

    /// <summary>The last flush or barrier and every job after it: the dependency window.</summary>
    private readonly List<IoJob> _window = new();

    /// <summary>Writes done on one downstairs only (the others faulted), waiting for live repair.</summary>
    private readonly List<IoJob> _awaitingRepair = new();

    private readonly TaskCompletionSource _activated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _stateChanged;

    private ulong _nextJobId = FirstJobId;
    private ulong _nextFlush;
    private bool _writtenSinceFlush;
    private RegionDefinition? _region;
    private List<Message>? _reconcile;
    private int _reconcileStep;
    private readonly HashSet<int> _reconcileWaiting = new();
    private Task? _liveRepair;
    private Timer? _flushTimer;
    private long _readValidationFailures;
    private long _reconciledExtents;
    private long _liveRepairs;
    private UpstairsControlServer? _control;
    private int _reconcileDone;
    private readonly RetiredJobs _retired = new();

    public Upstairs(UpstairsOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _log = logger ?? NullLogger.Instance;
        _cipher = new BlockCipher(options.EncryptionKey);
        for (int i = 0; i < 3; i++)
        {
            _clients[i] = new DownstairsClient(i, options.Targets[i]);
        }
    }

    public UpstairsOptions Options => _options;

    public Guid UpstairsId => _options.UpstairsId;

    public Guid SessionId => _sessionId;

    public ulong Generation => _options.Generation;

    public UpstairsState State { get; private set; } = UpstairsState.Initializing;

    /// <summary>Why activation failed or the upstairs was deactivated.</summary>
    public string? FailureReason { get; private set; }

    /// <summary>The region definition agreed by the downstairs (set once activation starts).</summary>
    public RegionDefinition? Region
    {
        get
        {
            lock (_gate)
            {
                return _region;
            }
        }
    }

    public ulong BlockSize => _region?.BlockSize ?? 0;

    public ulong TotalBlocks => _region is { } r ? r.ExtentSize.Value * r.ExtentCount : 0;

    /// <summary>Read responses that failed their hash or tag check and were served by another downstairs.</summary>
    public long ReadValidationFailures => Interlocked.Read(ref _readValidationFailures);

    /// <summary>Extents repaired by reconciliation at activation.</summary>
    public long ReconciledExtents => Interlocked.Read(ref _reconciledExtents);

    /// <summary>Live repairs that ran to the end.</summary>
    public long LiveRepairsCompleted => Interlocked.Read(ref _liveRepairs);

    public DownstairsStatus[] Status()
    {
        lock (_gate)
        {
            return _clients.Select(c => new DownstairsStatus(c.Id, c.Target, c.Phase, c.Mode, c.LastFlush, c.OutstandingJobs, c.LastError)).ToArray();
        }
    }

    /// <summary>Where the control server listens (<see cref="UpstairsOptions.ControlAddress"/> with its port resolved), once activation started.</summary>
    public IPEndPoint? ControlServerAddress => _control?.Address;

    /// <summary>What the control API's <c>GET /info</c> reports (crucible <c>UpstairsStats</c>).</summary>
    public UpstairsStats GetStats()
    {
        lock (_gate)
        {
            int upJobs = 0;
            foreach (IoJob j in _jobs.Values)
            {
                upJobs += j.Io is not null ? 1 : 0;
            }
            return new UpstairsStats(
                State,
                _clients.Select(c => new DownstairsControlState(c.Phase, c.Mode)).ToArray(),
                upJobs,
                _jobs.Count,
                _reconcileDone,
                _reconcile is null ? 0 : _reconcile.Count - Math.Max(_reconcileStep, 0),
                _clients.Select(c => c.ExtentsRepaired).ToArray(),
                _clients.Select(c => c.ExtentsConfirmed).ToArray(),
                _clients.Select(c => c.Phase == ClientPhase.LiveRepair && c.RepairExtent >= 0 ? (long?)c.RepairExtent : null).ToArray(),
                _clients.Select(c => c.LiveRepairCompleted).ToArray(),
                _clients.Select(c => c.LiveRepairAborted).ToArray());
        }
    }

    /// <summary>What the control API's <c>GET /work</c> reports (crucible <c>DownstairsWork</c>): every job
    /// not yet retired, by id, and the last few retired.</summary>
    public DownstairsWork GetWorkSummary()
    {
        lock (_gate)
        {
            return new DownstairsWork(_jobs.Values.Select(WorkSummary.Of).ToArray(), _retired.ToArray());
        }
    }

    /// <summary>Jobs not yet retired (for tests and logs).</summary>
    public int ActiveJobCount
    {
        get
        {
            lock (_gate)
            {
                return _jobs.Count;
            }
        }
    }

    /// <summary>Starts connecting to the three downstairs and completes once the upstairs is active;
    /// throws <see cref="UpstairsException"/> if activation fails for good.</summary>
    public async Task ActivateAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_clientTasks[0] is null)
            {
                _log.LogInformation("upstairs {UpstairsId} session {SessionId} generation {Gen} activating on {Targets}{Encrypted}{ReadOnly}{Tls}",
                    UpstairsId, _sessionId, Generation, string.Join(", ", _options.Targets),
                    _cipher.Encrypted ? " (encrypted)" : "", _options.ReadOnly ? " (read-only)" : "",
                    _options.Tls is { } tls ? $" (TLS, root {tls.RootCertPemPath})" : "");
                if (_options.Lossy)
                {
                    // crucible upstairs.rs since #1460: the option survives in VCRs and does nothing else.
                    _log.LogWarning("lossy flag no longer changes upstairs behavior");
                }
                if (_options.ControlAddress is { } control)
                {
                    _control = UpstairsControlServer.Start(this, control, _log);
                }
                for (int i = 0; i < 3; i++)
                {
                    DownstairsClient c = _clients[i];
                    _clientTasks[i] = Task.Run(() => RunClientAsync(c));
                }
            }
        }
        await _activated.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Completes when <paramref name="predicate"/> holds for the downstairs states (checked at
    /// every state change and job completion). For tests and for callers that wait for a repair to finish.</summary>
    public async Task WaitForAsync(Func<DownstairsStatus[], bool> predicate, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                _stateChanged ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                changed = _stateChanged.Task;
            }
            if (predicate(Status()))
            {
                return;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void NotifyStateChanged()
    {
        // Allocation-free unless someone waits.
        TaskCompletionSource? old = _stateChanged;
        _stateChanged = null;
        old?.TrySetResult();
    }

    // ---------------------------------------------------------------- guest I/O

    /// <summary>Reads <paramref name="blocks"/> blocks from <paramref name="startBlock"/>.</summary>
    public void SubmitRead(ulong startBlock, ulong blocks, UpstairsIo io)
    {
        try
        {
            SubmitReadCore(startBlock, blocks, io);
        }
        finally
        {
            RunCompletions();
        }
    }

    private void SubmitReadCore(ulong startBlock, ulong blocks, UpstairsIo io)
    {
        CrucibleError? error;
        lock (_gate)
        {
            error = CheckIo(startBlock, blocks, write: false);
            if (error is null)
            {
                IoJob job = NewJob(JobKind.Read, startBlock, blocks);
                job.Io = io;
                Enqueue(job);
                return;
            }
        }
        io.Completed(error);
    }

    /// <summary>Writes <paramref name="blocks"/> blocks at <paramref name="startBlock"/>; the data is
    /// taken from <see cref="UpstairsIo.FillWrite"/> before this returns.</summary>
    public void SubmitWrite(ulong startBlock, ulong blocks, UpstairsIo io, bool onlyUnwritten = false)
    {
        try
        {
            SubmitWriteCore(startBlock, blocks, io, onlyUnwritten);
        }
        finally
        {
            RunCompletions();
        }
    }

    private void SubmitWriteCore(ulong startBlock, ulong blocks, UpstairsIo io, bool onlyUnwritten)
    {
        CrucibleError? error;
        lock (_gate)
        {
            error = CheckIo(startBlock, blocks, write: true);
        }
        if (error is not null)
        {
            io.Completed(error);
            return;
        }
        int blockSize = (int)BlockSize;
        int length = checked((int)blocks * blockSize);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        var contexts = new BlockContext[blocks];
        io.FillWrite(buffer.AsSpan(0, length));
        for (int i = 0; i < contexts.Length; i++)
        {
            contexts[i] = _cipher.Seal(buffer.AsSpan(i * blockSize, blockSize));
        }
        lock (_gate)
        {
            error = CheckIo(startBlock, blocks, write: true);
            if (error is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            else
            {
                IoJob job = NewJob(onlyUnwritten ? JobKind.WriteUnwritten : JobKind.Write, startBlock, blocks);
                job.Buffer = buffer;
                job.Length = length;
                job.Contexts = contexts;
                _writtenSinceFlush = true;
                // No fast ack: the guest is told when two downstairs have the data (CheckJob).
                job.Io = io;
                Enqueue(job);
            }
        }
        if (error is not null)
        {
            io.Completed(error);
        }
    }

    /// <summary>Flushes: completes once two downstairs have made every earlier write durable.</summary>
    public void SubmitFlush(UpstairsIo io)
    {
        try
        {
            SubmitFlushCore(io);
        }
        finally
        {
            RunCompletions();
        }
    }

    private void SubmitFlushCore(UpstairsIo io)
    {
        CrucibleError? error;
        lock (_gate)
        {
            error = CheckActive();
            if (error is null)
            {
                if (_options.ReadOnly)
                {
                    error = null;
                }
                else
                {
                    EnqueueFlush(io);
                    return;
                }
            }
        }
        io.Completed(error);
    }

    /// <summary>A barrier: later jobs run after every earlier one, without a flush.</summary>
    public void SubmitBarrier(UpstairsIo io)
    {
        try
        {
            SubmitBarrierCore(io);
        }
        finally
        {
            RunCompletions();
        }
    }

    private void SubmitBarrierCore(UpstairsIo io)
    {
        CrucibleError? error;
        lock (_gate)
        {
            error = CheckActive();
            if (error is null)
            {
                IoJob job = NewJob(JobKind.Barrier, 0, ulong.MaxValue);
                job.Io = io;
                Enqueue(job);
                return;
            }
        }
        io.Completed(error);
    }

    public Task ReadAsync(ulong startBlock, Memory<byte> destination)
    {
        var io = new TaskIo(destination);
        SubmitRead(startBlock, (ulong)destination.Length / Math.Max(BlockSize, 1), io);
        return io.Task;
    }

    public Task WriteAsync(ulong startBlock, ReadOnlyMemory<byte> data, bool onlyUnwritten = false)
    {
        var io = new TaskIo(data);
        SubmitWrite(startBlock, (ulong)data.Length / Math.Max(BlockSize, 1), io, onlyUnwritten);
        return io.Task;
    }

    public Task FlushAsync()
    {
        var io = new TaskIo(default(Memory<byte>));
        SubmitFlush(io);
        return io.Task;
    }

    public Task BarrierAsync()
    {
        var io = new TaskIo(default(Memory<byte>));
        SubmitBarrier(io);
        return io.Task;
    }

    private CrucibleError? CheckActive() => State switch
    {
        UpstairsState.Active => null,
        UpstairsState.Initializing => CrucibleError.Of(CrucibleErrorKind.UpstairsActivateInProgress),
        _ => CrucibleError.Of(CrucibleErrorKind.UpstairsInactive),
    };

    private CrucibleError? CheckIo(ulong start, ulong blocks, bool write)
    {
        if (CheckActive() is { } e)
        {
            return e;
        }
        if (write && _options.ReadOnly)
        {
            return CrucibleError.Of(CrucibleErrorKind.ModifyingReadOnlyRegion);
        }
        if (blocks == 0 || start + blocks < start || start + blocks > TotalBlocks)
        {
            return CrucibleError.Of(CrucibleErrorKind.OffsetInvalid);
        }
        return null;
    }

    private void EnqueueFlush(UpstairsIo? io)
    {
        IoJob job = NewJob(JobKind.Flush, 0, ulong.MaxValue);
        job.FlushNumber = _nextFlush++;
        job.Io = io;
        _writtenSinceFlush = false;
        Enqueue(job);
    }

    private void AutoFlush(object? _)
    {
        lock (_gate)
        {
            if (State == UpstairsState.Active && _writtenSinceFlush && !_options.ReadOnly)
            {
                EnqueueFlush(null);
            }
        }
        RunCompletions();
    }

    /// <summary>A job with the next id and its dependencies (crucible <c>ActiveJobs::deps_for_*</c>).</summary>
    private IoJob NewJob(JobKind kind, ulong start, ulong count)
    {
        var id = new JobId(_nextJobId++);
        bool all = kind is JobKind.Flush or JobKind.Barrier;
        // Counted first, then copied into an array of the right size (no list per job).
        int n = 0;
        foreach (IoJob w in _window)
        {
            n += DependsOn(w) ? 1 : 0;
        }
        JobId[] deps;
        if (n == 0)
        {
            deps = [];
        }
        else if (n == 1 && _window[0].IsFlushOrBarrier && !all)
        {
            // Only the last flush or barrier (the usual case between flushes): one array shared by
            // every such job (dependency arrays are never changed once made).
            deps = _window[0].AsDependency ??= [_window[0].Id];
        }
        else
        {
            deps = new JobId[n];
            n = 0;
            foreach (IoJob w in _window)
            {
                if (DependsOn(w))
                {
                    deps[n++] = w.Id;
                }
            }
        }
        var job = new IoJob(id, kind, start, count, deps);
        if (all)
        {
            _window.Clear();
        }
        _window.Add(job);
        return job;

        bool DependsOn(IoJob w) => all || w.IsFlushOrBarrier
            || (w.Overlaps(start, count) && !(kind == JobKind.Read && w.Kind == JobKind.Read));
    }

    /// <summary>Adds the job and sends it to every downstairs that takes it (crucible <c>enqueue</c>).</summary>
    private void Enqueue(IoJob job)
    {
        _jobs.Add(job);
        int skipped = 0;
        foreach (DownstairsClient c in _clients)
        {
            JobClientState s = InitialState(c, job);
            job.State[c.Id] = s;
            if (s == JobClientState.Skipped)
            {
                skipped++;
                continue;
            }
            c.OutstandingJobs++;
            c.OutstandingBytes += job.Length;
            if (s == JobClientState.InProgress)
            {
                c.Send(BuildMessage(job, c));
            }
        }
        foreach (DownstairsClient c in _clients)
        {
            if (c.Mode == ConnectionMode.Offline && c.Phase != ClientPhase.Active
                && (c.OutstandingJobs > _options.MaxOutstandingJobs || c.OutstandingBytes > _options.MaxOutstandingBytes))
            {
                _log.LogWarning("downstairs {Client} ({Target}) is offline with {Jobs} jobs ({Bytes} bytes) waiting: faulted, it will be live-repaired when it returns",
                    c.Id, c.Target, c.OutstandingJobs, c.OutstandingBytes);
                Fault(c, "too far behind");
            }
        }
        if (skipped == 3)
        {
            job.FirstError ??= CrucibleError.Of(CrucibleErrorKind.UpstairsInactive);
            CheckJob(job);
        }
    }

    private JobClientState InitialState(DownstairsClient c, IoJob job)
    {
        switch (c.Phase)
        {
            case ClientPhase.Active:
                return JobClientState.InProgress;
            case ClientPhase.LiveRepair:
                if (job.IsLiveRepair || job.Kind == JobKind.Barrier)
                {
                    return JobClientState.InProgress;
                }
                if (job.Kind == JobKind.Flush)
                {
                    return c.RepairExtent >= 0 ? JobClientState.InProgress : JobClientState.Skipped;
                }
                ulong perExtent = _region!.Value.ExtentSize.Value;
                return c.RepairExtent >= 0 && job.Start / perExtent <= (ulong)c.RepairExtent
                    ? JobClientState.InProgress
                    : JobClientState.Skipped;
            default:
                return c.Mode == ConnectionMode.Offline ? JobClientState.New : JobClientState.Skipped;
        }
    }

    /// <summary>The job as sent to one downstairs (crucible <c>prune_deps</c> and <c>send</c>).</summary>
    private Message BuildMessage(IoJob job, DownstairsClient c)
    {
        JobId[] deps = PruneDependencies(job.Dependencies, c);
        // Guest I/O: one message serves every downstairs that gets the job's own dependencies and
        // no extent limit (the usual case), instead of one per downstairs.
        bool shared = !job.IsLiveRepair && ReferenceEquals(deps, job.Dependencies)
            && !(job.Kind == JobKind.Flush && c.Phase == ClientPhase.LiveRepair);
        if (shared && job.Message is { } cached)
        {
            return cached;
        }
        Message m = NewMessage(job, c, deps);
        if (shared)
        {
            job.Message = m;
        }
        return m;
    }

    private Message NewMessage(IoJob job, DownstairsClient c, JobId[] deps)
    {
        Guid u = UpstairsId;
        Guid s = _sessionId;
        bool underRepair = job.RepairTarget == c.Id;
        return job.Kind switch
        {
            JobKind.Read => new Message.ReadRequest(u, s, job.Id, deps, new BlockIndex(job.Start), job.Count),
            JobKind.Write => new Message.Write(new WriteHeader(u, s, job.Id, deps, new BlockIndex(job.Start), job.Contexts!),
                job.Buffer.AsMemory(0, job.Length)),
            JobKind.WriteUnwritten => new Message.WriteUnwritten(new WriteHeader(u, s, job.Id, deps, new BlockIndex(job.Start), job.Contexts!),
                job.Buffer.AsMemory(0, job.Length)),
            JobKind.Flush => new Message.Flush(u, s, job.Id, deps, job.FlushNumber, Generation, null,
                c.Phase == ClientPhase.LiveRepair ? new ExtentId((uint)c.RepairExtent) : null),
            JobKind.Barrier => new Message.Barrier(u, s, job.Id, deps),
            JobKind.LiveClose => underRepair
                ? new Message.ExtentLiveClose(u, s, job.Id, deps, new ExtentId(job.Extent))
                : new Message.ExtentLiveFlushClose(u, s, job.Id, deps, new ExtentId(job.Extent), job.FlushNumber, Generation),
            JobKind.LiveRepair => underRepair
                ? new Message.ExtentLiveRepair(u, s, job.Id, deps, new ExtentId(job.Extent), new ClientId((byte)job.RepairSource), job.RepairAddress)
                : new Message.ExtentLiveNoOp(u, s, job.Id, deps),
            JobKind.LiveNoOp => new Message.ExtentLiveNoOp(u, s, job.Id, deps),
            _ => new Message.ExtentLiveReopen(u, s, job.Id, deps, new ExtentId(job.Extent)),
        };
    }

    /// <summary>
    /// The dependencies <paramref name="c"/> can know of (crucible <c>prune_deps</c>): not jobs it
    /// skipped, and not jobs before its live repair began (<see cref="DownstairsClient.RepairMinId"/>:
    /// never sent on its current connection, during the repair or after it). The job's own array
    /// when nothing is pruned.
    /// </summary>
    private JobId[] PruneDependencies(JobId[] deps, DownstairsClient c)
    {
        int keep = 0;
        foreach (JobId d in deps)
        {
            keep += Known(d) ? 1 : 0;
        }
        if (keep == deps.Length)
        {
            return deps;
        }
        var pruned = new JobId[keep];
        keep = 0;
        foreach (JobId d in deps)
        {
            if (Known(d))
            {
                pruned[keep++] = d;
            }
        }
        return pruned;

        bool Known(JobId d) => d.Value >= c.RepairMinId
            && !(_jobs.TryGetValue(d.Value, out IoJob? j) && j.State[c.Id] == JobClientState.Skipped);
    }

    // ---------------------------------------------------------------- completions

    private readonly record struct Completion(UpstairsIo Io, CrucibleError? Error);

    [ThreadStatic]
    private static List<Completion>? t_completions;

    /// <summary>An empty list kept for the next swap, so that running completions allocates nothing.</summary>
    [ThreadStatic]
    private static List<Completion>? t_spareCompletions;

    private static List<Completion> Completions => t_completions ??= new List<Completion>();

    private static void RunCompletions()
    {
        List<Completion> list = Completions;
        if (list.Count == 0)
        {
            return;
        }
        // The list is swapped for an empty one first: a callback that submits again (and runs
        // completions of its own) adds to that one, never to the list being walked.
        t_completions = t_spareCompletions ?? new List<Completion>();
        t_spareCompletions = null;
        foreach (Completion c in list)
        {
            c.Io.Completed(c.Error);
        }
        list.Clear();
        t_spareCompletions = list;
    }

    /// <summary>A downstairs finished job <paramref name="id"/> (crucible <c>process_io_completion</c>).</summary>
    private void OnJobDone(DownstairsClient c, JobId id, CrucibleError? error, ExtentMetadata? closed = null)
    {
        if (!_jobs.TryGetValue(id.Value, out IoJob? job) || job.State[c.Id] != JobClientState.InProgress)
        {
            return;
        }
        SetState(job, c, error is null ? JobClientState.Done : JobClientState.Error);
        if (error is not null)
        {
            job.FirstError ??= error;
            _log.LogWarning("downstairs {Client} failed job {Job} ({Kind}): {Error}", c.Id, id, job.Kind, error);
            if (job.Kind != JobKind.Read && State == UpstairsState.Active)
            {
                Fault(c, $"{job.Kind} job {id} failed: {error}");
            }
        }
        else if (job.Kind == JobKind.Flush)
        {
            c.LastFlush = id;
        }
        _ = closed;
        CheckJob(job);
    }

    private void SetState(IoJob job, DownstairsClient c, JobClientState s)
    {
        JobClientState old = job.State[c.Id];
        job.State[c.Id] = s;
        if (old is JobClientState.New or JobClientState.InProgress && s is not (JobClientState.New or JobClientState.InProgress))
        {
            c.OutstandingJobs--;
            c.OutstandingBytes -= job.Length;
        }
    }

    /// <summary>Acks and retires (crucible <c>ack_check</c> and <c>retire_check</c>).</summary>
    private void CheckJob(IoJob job)
    {
        int done = job.CountIn(JobClientState.Done);
        bool complete = job.AllTerminal;
        if (!job.Acked)
        {
            bool ready = job.Kind switch
            {
                JobKind.Read => false, // acked by the response that validates
                JobKind.Write or JobKind.WriteUnwritten or JobKind.Flush => done >= 2,
                _ => done == 3,
            };
            if (!ready && complete && job.IsWrite && done == 1 && State == UpstairsState.Active)
            {
                // Only one downstairs has it, the others are faulted: the write waits until live
                // repair has copied its extents to a second one (AckRepairedWrites).
                if (!job.AwaitingRepair)
                {
                    job.AwaitingRepair = true;
                    _awaitingRepair.Add(job);
                    _log.LogWarning("write job {Job} is on one downstairs only; it is acknowledged when live repair copies it to another", job.Id);
                }
            }
            else if (ready || complete)
            {
                job.Acked = true;
                if (job.Io is { } io)
                {
                    job.Io = null;
                    CrucibleError? e = ready ? null : job.FirstError ?? CrucibleError.Of(CrucibleErrorKind.IoError);
                    Completions.Add(new Completion(io, e));
                }
            }
        }
        if (complete)
        {
            job.Finished?.TrySetResult();
            NotifyStateChanged();
            if (job.IsFlushOrBarrier)
            {
                Retire(job.Id);
            }
        }
    }

    /// <summary>
    /// Live repair copied extents up to <paramref name="extent"/> from <paramref name="source"/> to
    /// another downstairs: writes done on the source alone whose blocks all lie in those extents are
    /// now on two downstairs and are acknowledged.
    /// </summary>
    private void AckRepairedWrites(int source, uint extent)
    {
        ulong perExtent = _region!.Value.ExtentSize.Value;
        for (int i = _awaitingRepair.Count - 1; i >= 0; i--)
        {
            IoJob job = _awaitingRepair[i];
            if (job.State[source] == JobClientState.Done && (job.Start + job.Count - 1) / perExtent <= extent)
            {
                _awaitingRepair.RemoveAt(i);
                job.AwaitingRepair = false;
                job.Acked = true;
                if (job.Io is { } io)
                {
                    job.Io = null;
                    Completions.Add(new Completion(io, null));
                }
            }
        }
    }

    /// <summary>Fails every request not yet acknowledged (the upstairs stopped).</summary>
    private void FailPending(CrucibleErrorKind kind)
    {
        foreach (IoJob j in _jobs.Values)
        {
            if (!j.Acked && j.Io is { } io)
            {
                j.Acked = true;
                j.Io = null;
                Completions.Add(new Completion(io, CrucibleError.Of(kind)));
            }
            j.Finished?.TrySetResult();
        }
        foreach (IoJob j in _awaitingRepair)
        {
            if (j.Io is { } io)
            {
                j.Acked = true;
                j.Io = null;
                Completions.Add(new Completion(io, CrucibleError.Of(kind)));
            }
        }
        _awaitingRepair.Clear();
    }

    /// <summary>Forgets every finished job up to a finished flush or barrier.</summary>
    private void Retire(JobId upTo)
    {
        List<IoJob> jobs = _jobs.Values;
        int gone = 0;
        while (gone < jobs.Count && jobs[gone].Id.Value <= upTo.Value)
        {
            if (!jobs[gone].AllTerminal)
            {
                return;
            }
            gone++;
        }
        for (int i = 0; i < gone; i++)
        {
            IoJob j = jobs[i];
            _retired.Add(j);
            if (j.Buffer is { } b)
            {
                j.Buffer = null;
                ArrayPool<byte>.Shared.Return(b);
            }
        }
        _jobs.RemoveFirst(gone);
    }

    private void OnReadResponse(DownstairsClient c, ReceivedMessage received)
    {
        var rr = (Message.ReadResponse)received.Message;
        IoJob? job;
        lock (_gate)
        {
            if (!_jobs.TryGetValue(rr.Header.JobId.Value, out job) || job.State[c.Id] != JobClientState.InProgress)
            {
                return;
            }
            if (job.Acked || rr.Header.Blocks.Error is not null)
            {
                OnJobDone(c, job.Id, rr.Header.Blocks.Error);
                return;
            }
        }
        // Validate (and decrypt, in this connection's receive buffer) outside the lock.
        CrucibleError? error = Validate(job, rr);
        UpstairsIo? winner = null;
        lock (_gate)
        {
            if (job.State[c.Id] != JobClientState.InProgress)
            {
                return;
            }
            if (error is not null)
            {
                Interlocked.Increment(ref _readValidationFailures);
                _log.LogError("read job {Job} from downstairs {Client} ({Target}) failed validation: {Error}; serving it from another downstairs",
                    job.Id, c.Id, c.Target, error);
                SetState(job, c, JobClientState.Error);
                job.FirstError ??= error;
                CheckJob(job);
            }
            else
            {
                SetState(job, c, JobClientState.Done);
                if (!job.Acked)
                {
                    job.Acked = true;
                    winner = job.Io;
                    job.Io = null;
                }
                CheckJob(job);
            }
        }
        if (winner is not null)
        {
            winner.ReadData(rr.Data.Span);
            winner.Completed(null);
        }
    }

    private CrucibleError? Validate(IoJob job, Message.ReadResponse rr)
    {
        ValueArray<ReadBlockContext> blocks = rr.Header.Blocks.Value;
        int blockSize = (int)BlockSize;
        if ((ulong)blocks.Count != job.Count || rr.Data.Length != blocks.Count * blockSize)
        {
            return CrucibleError.GenericError($"read response has {blocks.Count} blocks and {rr.Data.Length} bytes for a read of {job.Count} blocks");
        }
        Span<byte> data = MemoryMarshal.AsMemory(rr.Data).Span;
        for (int i = 0; i < blocks.Count; i++)
        {
            if (_cipher.Open(blocks[i], data.Slice(i * blockSize, blockSize)) is { } kind)
            {
                return CrucibleError.Of(kind);
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- faults and live repair

    private void Fault(DownstairsClient c, string reason)
    {
        if (c.Mode == ConnectionMode.Faulted && c.Phase is not (ClientPhase.Active or ClientPhase.LiveRepair))
        {
            return;
        }
        _log.LogWarning("downstairs {Client} ({Target}) faulted: {Reason}", c.Id, c.Target, reason);
        c.Mode = c.Mode == ConnectionMode.Replaced ? ConnectionMode.Replaced : ConnectionMode.Faulted;
        c.Phase = ClientPhase.Disconnected;
        SkipAll(c);
        c.Disconnect();
        NotifyStateChanged();
    }

    private void SkipAll(DownstairsClient c)
    {
        foreach (IoJob j in _jobs.Values.ToArray())
        {
            if (j.State[c.Id] is JobClientState.New or JobClientState.InProgress)
            {
                SetState(j, c, JobClientState.Skipped);
                CheckJob(j);
            }
        }
        c.OutstandingJobs = 0;
        c.OutstandingBytes = 0;
    }

    private void StartLiveRepair(DownstairsClient c)
    {
        if (_liveRepair is { IsCompleted: false })
        {
            return; // one at a time; this one waits in LiveRepairReady
        }
        int source = Array.FindIndex(_clients, x => x.Phase == ClientPhase.Active);
        if (source < 0)
        {
            _log.LogError("downstairs {Client} needs live repair but no downstairs is active to repair it from", c.Id);
            return;
        }
        c.Phase = ClientPhase.LiveRepair;
        c.RepairMinId = _nextJobId;
        _log.LogInformation("live repair of downstairs {Client} ({Target}) from downstairs {Source} starts at job {Job}",
            c.Id, c.Target, source, _nextJobId);
        // Extent 0's steps are reserved here, under the lock that put the client in LiveRepair, not
        // when the repair task gets to run (crucible start_live_repair: min_id is the upcoming close
        // id). Otherwise guest I/O in between was skipped for the client (no extent under repair
        // yet), and a flush among it, retired once the others had done it, was no longer known to
        // be skipped: it stayed in the steps' dependencies on this client, which never got it, and
        // the repair (and guest I/O to extent 0 behind its reopen) waited forever.
        IoJob[] first = ReserveRepairSteps(c, source, 0);
        NotifyStateChanged();
        _liveRepair = Task.Run(() => LiveRepairAsync(c, source, first));
    }

    /// <summary>
    /// Makes <paramref name="extent"/> the one under repair and reserves its four steps at once
    /// (crucible live_repair.rs): guest I/O to the extent that arrives meanwhile depends on the
    /// reopen and waits for it. Each step is sent only when the one before it has finished on every
    /// downstairs, so the source has closed the extent before the target asks its repair server for it.
    /// </summary>
    private IoJob[] ReserveRepairSteps(DownstairsClient c, int source, uint extent)
    {
        ulong perExtent = _region!.Value.ExtentSize.Value;
        c.RepairExtent = extent;
        var steps = new IoJob[4];
        int k = 0;
        foreach (JobKind kind in (ReadOnlySpan<JobKind>)[JobKind.LiveClose, JobKind.LiveRepair, JobKind.LiveNoOp, JobKind.LiveReopen])
        {
            IoJob job = NewJob(kind, extent * perExtent, perExtent);
            job.Extent = extent;
            job.RepairTarget = c.Id;
            job.RepairSource = source;
            job.RepairAddress = _clients[source].RepairAddress;
            if (kind == JobKind.LiveClose)
            {
                job.FlushNumber = _nextFlush++;
            }
            job.Finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            steps[k++] = job;
        }
        return steps;
    }

    /// <summary>Tests: awaited by the live repair task before it sends its first step (a busy thread pool, made deterministic).</summary>
    internal Func<Task>? LiveRepairTaskStarting { get; set; }

    /// <summary>Runs the repair, extent by extent; <paramref name="steps"/> are extent 0's, reserved by <see cref="StartLiveRepair"/>.</summary>
    private async Task LiveRepairAsync(DownstairsClient c, int source, IoJob[] steps)
    {
        if (LiveRepairTaskStarting is { } starting)
        {
            await starting().ConfigureAwait(false);
        }
        uint extents = _region!.Value.ExtentCount;
        for (uint e = 0; e < extents; e++)
        {
            // Extent 0's steps were reserved when the repair started and guest I/O may depend on
            // them already: they are sent even if the client left meanwhile (skipped there, no-ops
            // for the others); the check below then stops the repair at extent 1.
            if (e > 0)
            {
                lock (_gate)
                {
                    if (c.Phase != ClientPhase.LiveRepair || State != UpstairsState.Active)
                    {
                        _log.LogWarning("live repair of downstairs {Client} stopped at extent {Extent}", c.Id, e);
                        c.LiveRepairAborted++;
                        TryNextRepair();
                        return;
                    }
                    if (_clients[source].Phase != ClientPhase.Active)
                    {
                        source = Array.FindIndex(_clients, x => x.Phase == ClientPhase.Active);
                        if (source < 0)
                        {
                            c.LiveRepairAborted++;
                            Fault(c, "no source left for live repair");
                            return;
                        }
                    }
                    steps = ReserveRepairSteps(c, source, e);
                }
            }
            foreach (IoJob step in steps)
            {
                lock (_gate)
                {
                    if (State != UpstairsState.Active)
                    {
                        return;
                    }
                    Enqueue(step);
                }
                RunCompletions();
                await step.Finished!.Task.ConfigureAwait(false);
            }
            lock (_gate)
            {
                if (c.Phase == ClientPhase.LiveRepair && steps[1].State[c.Id] == JobClientState.Done
                    && steps[3].State[c.Id] == JobClientState.Done && steps[1].State[source] == JobClientState.Done)
                {
                    c.ExtentsRepaired++;
                    AckRepairedWrites(source, e);
                }
            }
            RunCompletions();
        }
        lock (_gate)
        {
            if (c.Phase == ClientPhase.LiveRepair)
            {
                c.Phase = ClientPhase.Active;
                c.Mode = ConnectionMode.New;
                c.RepairExtent = -1;
                c.LiveRepairCompleted++;
                Interlocked.Increment(ref _liveRepairs);
                _log.LogInformation("live repair of downstairs {Client} ({Target}) finished: {Extents} extents", c.Id, c.Target, extents);
                NotifyStateChanged();
            }
            TryNextRepair();
        }
        RunCompletions();
    }

    private void TryNextRepair()
    {
        foreach (DownstairsClient other in _clients)
        {
            if (other.Phase == ClientPhase.LiveRepairReady)
            {
                _liveRepair = null;
                StartLiveRepair(other);
                return;
            }
        }
    }

    /// <summary>
    /// Replaces the downstairs at <paramref name="old"/> with a new one at <paramref name="replacement"/>
    /// (crucible <c>Upstairs::replace_downstairs</c>): the old connection is dropped and the new
    /// downstairs is brought in by live repair.
    /// </summary>
    public ReplaceResult ReplaceDownstairs(IPEndPoint old, IPEndPoint replacement)
    {
        lock (_gate)
        {
            if (_clients.Any(c => c.Target.Equals(replacement)))
            {
                if (_clients.Any(c => c.Target.Equals(old)))
                {
                    throw new UpstairsException($"both {old} and {replacement} are targets of this volume");
                }
                DownstairsClient n = _clients.First(c => c.Target.Equals(replacement));
                return n.Phase == ClientPhase.Active ? ReplaceResult.CompletedAlready : ReplaceResult.StartedAlready;
            }
            DownstairsClient? c = _clients.FirstOrDefault(x => x.Target.Equals(old));
            if (c is null)
            {
                return ReplaceResult.Missing;
            }
            if (State != UpstairsState.Active)
            {
                throw new UpstairsException($"cannot replace {old}: the upstairs is {State}");
            }
            if (_clients.Any(x => x != c && x.Phase != ClientPhase.Active))
            {
                throw new UpstairsException($"cannot replace {old}: another downstairs is not active (one replacement or repair at a time)");
            }
            _log.LogInformation("replacing downstairs {Client}: {Old} -> {New}", c.Id, old, replacement);
            c.Target = replacement;
            c.Mode = ConnectionMode.Replaced;
            c.RegionUuid = null;
            c.Phase = ClientPhase.Disconnected;
            SkipAll(c);
            c.Disconnect();
            NotifyStateChanged();
        }
        RunCompletions();
        return ReplaceResult.Started;
    }

    // ---------------------------------------------------------------- connections

    private async Task RunClientAsync(DownstairsClient c)
    {
        TimeSpan delay = _options.ReconnectDelay;
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            IPEndPoint target;
            lock (_gate)
            {
                if (State is UpstairsState.Deactivated or UpstairsState.Failed)
                {
                    c.Phase = ClientPhase.Stopped;
                    return;
                }
                target = c.Target;
            }
            Socket? socket = await ConnectAsync(target, stop).ConfigureAwait(false);
            if (socket is null)
            {
                try
                {
                    await Task.Delay(delay, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));
                continue;
            }
            CrucibleFrameConnection? connection = await OpenAsync(c, socket, target, stop).ConfigureAwait(false);
            bool negotiated = connection is not null
                && await RunConnectionAsync(c, connection, target, stop).ConfigureAwait(false);
            if (negotiated)
            {
                delay = _options.ReconnectDelay;
            }
            else
            {
                try
                {
                    await Task.Delay(delay, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));
            }
        }
    }

    private async Task<Socket?> ConnectAsync(IPEndPoint target, CancellationToken stop)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(target, timeout.Token).ConfigureAwait(false);
            return socket;
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            _log.LogWarning("connect to {Target} timed out after {Timeout}", target, _options.ConnectTimeout);
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException e)
        {
            _log.LogDebug("connect to {Target} failed: {Error}", target, e.Message);
        }
        socket.Dispose();
        return null;
    }

    /// <summary>
    /// Frames over the connected socket: directly, or over TLS when <see cref="UpstairsOptions.Tls"/> is
    /// set (crucible client.rs: server name <c>downstairs{id}</c>). A failed handshake is logged with its
    /// reason, kept as the client's <see cref="DownstairsClient.LastError"/>, and retried like a failed connect.
    /// </summary>
    private async Task<CrucibleFrameConnection?> OpenAsync(DownstairsClient c, Socket socket, IPEndPoint target, CancellationToken stop)
    {
        if (_options.Tls is not { } tls)
        {
            return new CrucibleFrameConnection(socket);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            System.Net.Security.SslStream stream = await tls.ConnectAsync(socket, c.Id, timeout.Token).ConfigureAwait(false);
            return new CrucibleFrameConnection(stream);
        }
        catch (CrucibleTlsException e)
        {
            NoteConnectionError(c, $"TLS to {target} ({CrucibleTlsContext.ServerName(c.Id)}): {e.Message}");
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            NoteConnectionError(c, $"TLS to {target} ({CrucibleTlsContext.ServerName(c.Id)}): no handshake within {_options.ConnectTimeout.TotalSeconds} s (is the downstairs serving TLS, with --cert-pem, --key-pem and --root-cert-pem?)");
        }
        catch (OperationCanceledException)
        {
        }
        socket.Dispose();
        return null;
    }

    /// <summary>
    /// With TLS 1.3 the server checks the client certificate after the client has finished its
    /// handshake, so a refusal shows here as a reset before YesItsMe: say what it likely means.
    /// </summary>
    private string? TlsRefusalHint(DownstairsClient c)
    {
        lock (_gate)
        {
            if (c.Phase != ClientPhase.WaitYesItsMe)
            {
                return null;
            }
            return _options.Tls is { } tls
                ? $" before answering HereIAm over TLS: the downstairs probably refused this upstairs' certificate (cert_pem '{tls.CertPemPath}' must chain to the downstairs' --root-cert-pem)"
                : " before answering HereIAm: if that downstairs runs with --cert-pem, give this upstairs cert_pem, key_pem and root_cert_pem";
        }
    }

    private void NoteConnectionError(DownstairsClient c, string error)
    {
        _log.LogWarning("[{Client}] {Error}", c.Id, error);
        lock (_gate)
        {
            c.LastError = error;
            NotifyStateChanged();
        }
    }

    /// <summary>Runs one connection to the end; true if it got as far as being used.</summary>
    private async Task<bool> RunConnectionAsync(DownstairsClient c, CrucibleFrameConnection connection, IPEndPoint target, CancellationToken stop)
    {
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var outbox = Channel.CreateUnbounded<Message>(new UnboundedChannelOptions { SingleReader = true });
        bool negotiated = false;
        lock (_gate)
        {
            if (!c.Target.Equals(target) || State is UpstairsState.Deactivated or UpstairsState.Failed)
            {
                connection.Dispose();
                cancel.Dispose();
                return false;
            }
            c.Connection = connection;
            c.Outbox = outbox;
            c.ConnectionCancel = cancel;
            c.Phase = ClientPhase.WaitYesItsMe;
            _log.LogInformation("[{Client}] connected to {Target}, mode {Mode}", c.Id, target, c.Mode);
            c.Send(new Message.HereIAm(CrucibleProtocol.CrucibleMessageVersion, UpstairsId, _sessionId, Generation,
                _options.ReadOnly, _cipher.Encrypted, new uint[] { CrucibleProtocol.CrucibleMessageVersion }));
        }
        Task writer = WriteLoopAsync(connection, outbox, cancel.Token);
        long lastHeard = Environment.TickCount64;
        Task pinger = PingLoopAsync(c, outbox, () => Interlocked.Read(ref lastHeard), cancel);
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                ReceivedMessage? received = await connection.ReceiveAsync(cancel.Token).ConfigureAwait(false);
                if (received is null)
                {
                    if (TlsRefusalHint(c) is { } hint)
                    {
                        NoteConnectionError(c, $"{target} closed the connection{hint}");
                    }
                    else
                    {
                        _log.LogWarning("[{Client}] {Target} closed the connection", c.Id, target);
                    }
                    break;
                }
                Interlocked.Exchange(ref lastHeard, Environment.TickCount64);
                bool keep;
                using (received)
                {
                    if (received.Message is Message.ReadResponse)
                    {
                        OnReadResponse(c, received);
                        keep = true;
                    }
                    else
                    {
                        lock (_gate)
                        {
                            keep = OnMessage(c, received.Message);
                            negotiated |= c.Phase is ClientPhase.Active or ClientPhase.LiveRepair or ClientPhase.WaitQuorum or ClientPhase.Reconcile;
                        }
                    }
                }
                RunCompletions();
                if (!keep)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is CrucibleProtocolException or SocketException or IOException or ObjectDisposedException
            or System.Security.Authentication.AuthenticationException)
        {
            NoteConnectionError(c, $"connection to {target} failed: {e.Message}{TlsRefusalHint(c)}");
        }
        lock (_gate)
        {
            if (c.Connection == connection)
            {
                OnDisconnected(c);
                c.Connection = null;
                c.Outbox = null;
                c.ConnectionCancel = null;
            }
        }
        RunCompletions();
        cancel.Cancel();
        outbox.Writer.TryComplete();
        try
        {
            await Task.WhenAll(writer, pinger).ConfigureAwait(false);
        }
        catch (Exception)
        {
        }
        await connection.DisposeAsync().ConfigureAwait(false);
        cancel.Dispose();
        return negotiated;
    }

    private async Task WriteLoopAsync(CrucibleFrameConnection connection, Channel<Message> outbox, CancellationToken token)
    {
        try
        {
            // Waits without a token: the channel's reusable waiter serves only uncancellable waits,
            // and a disconnect completes the outbox, which ends this loop.
            ChannelReader<Message> reader = outbox.Reader;
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out Message? m))
                {
                    await connection.SendAsync(m, token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException or CrucibleProtocolException
            or System.Security.Authentication.AuthenticationException)
        {
            connection.Dispose();
        }
    }

    private async Task PingLoopAsync(DownstairsClient c, Channel<Message> outbox, Func<long> lastHeard, CancellationTokenSource cancel)
    {
        using var timer = new PeriodicTimer(_options.PingInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancel.Token).ConfigureAwait(false))
            {
                if (Environment.TickCount64 - lastHeard() > (long)_options.InactivityTimeout.TotalMilliseconds)
                {
                    _log.LogWarning("[{Client}] {Target} silent for {Timeout}: disconnecting", c.Id, c.Target, _options.InactivityTimeout);
                    cancel.Cancel();
                    return;
                }
                outbox.Writer.TryWrite(Message.Ruok.Instance);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One message from a downstairs, under the lock; false closes the connection.</summary>
    private bool OnMessage(DownstairsClient c, Message m)
    {
        switch (m)
        {
            case Message.Imok:
                return true;
            case Message.Ruok:
                c.Send(Message.Imok.Instance);
                return true;
            case Message.YesItsMe y when c.Phase == ClientPhase.WaitYesItsMe:
                c.RepairAddress = y.RepairAddr;
                c.Phase = ClientPhase.WaitNowActive;
                c.Send(new Message.PromoteToActive(UpstairsId, _sessionId, Generation));
                return true;
            case Message.VersionMismatch v:
                return Refused(c, $"downstairs {c.Target} speaks message version {v.Version}, this upstairs {CrucibleProtocol.CrucibleMessageVersion}");
            case Message.ReadOnlyMismatch r:
                return Refused(c, $"downstairs {c.Target} is {(r.Expected ? "read-only" : "read-write")} but this volume is {(_options.ReadOnly ? "read-only" : "read-write")}");
            case Message.EncryptedMismatch e:
                return Refused(c, $"downstairs {c.Target} region is {(e.Expected ? "encrypted" : "not encrypted")} but this volume {(_cipher.Encrypted ? "has" : "has no")} encryption key");
            case Message.YouAreNowActive a when c.Phase == ClientPhase.WaitNowActive:
                if (a.UpstairsId != UpstairsId || a.SessionId != _sessionId || a.Generation != Generation)
                {
                    _log.LogWarning("[{Client}] YouAreNowActive for {Id}/{Session} gen {Gen} is not ours", c.Id, a.UpstairsId, a.SessionId, a.Generation);
                    return false;
                }
                c.Phase = ClientPhase.WaitRegionInfo;
                c.Send(Message.RegionInfoPlease.Instance);
                return true;
            case Message.YouAreNoLongerActive n:
                Deactivate($"downstairs {c.Id} ({c.Target}) reports that upstairs {n.NewUpstairsId} generation {n.NewGen} is now active; this upstairs (generation {Generation}) is no longer active");
                return false;
            case Message.UuidMismatch u:
                _log.LogWarning("[{Client}] {Target} expected upstairs {Expected}", c.Id, c.Target, u.ExpectedId);
                return false;
            case Message.RegionInfo ri when c.Phase == ClientPhase.WaitRegionInfo:
                return OnRegionInfo(c, ri.RegionDef);
            case Message.ExtentVersions ev when c.Phase == ClientPhase.WaitExtentVersions:
                return OnExtentVersions(c, ev);
            case Message.RepairAckId ack when c.Phase == ClientPhase.Reconcile:
                return OnReconcileAck(c, ack.RepairId, null);
            case Message.ExtentError err when c.Phase == ClientPhase.Reconcile:
                return OnReconcileAck(c, err.RepairId, err.Error);
            case Message.WriteAck a:
                return Ack(c, a.UpstairsId, a.SessionId, a.JobId, a.Result);
            case Message.WriteUnwrittenAck a:
                return Ack(c, a.UpstairsId, a.SessionId, a.JobId, a.Result);
            case Message.FlushAck a:
                return Ack(c, a.UpstairsId, a.SessionId, a.JobId, a.Result);
            case Message.BarrierAck a:
                return Ack(c, a.UpstairsId, a.SessionId, a.JobId, a.Result);
            case Message.ExtentLiveCloseAck a:
                return Ack(c, a.UpstairsId, a.SessionId, a.JobId, a.Result.Error);
            case Message.ExtentLiveRepairAckId a:
                return Ack(c, a.UpstairsId, a.SessionId, a.JobId, a.Result);
            case Message.ExtentLiveAckId a:
                return Ack(c, a.UpstairsId, a.SessionId, a.JobId, a.Result);
            case Message.ErrorReport r:
                _log.LogWarning("[{Client}] downstairs reports job {Job} failed: {Error} (it retries)", c.Id, r.JobId, r.Error);
                return true;
            default:
                _log.LogWarning("[{Client}] unexpected {Tag} in phase {Phase}: disconnecting", c.Id, m.Tag, c.Phase);
                return false;
        }
    }

    private bool Ack(DownstairsClient c, Guid upstairs, Guid session, JobId id, CrucibleError? error)
    {
        if (upstairs != UpstairsId || session != _sessionId)
        {
            _log.LogWarning("[{Client}] ack for another upstairs {Id}/{Session}", c.Id, upstairs, session);
            return true;
        }
        if (c.Phase is ClientPhase.Active or ClientPhase.LiveRepair)
        {
            OnJobDone(c, id, error);
        }
        return true;
    }

    private bool Refused(DownstairsClient c, string why)
    {
        if (State == UpstairsState.Initializing)
        {
            Fail(why);
        }
        else
        {
            _log.LogError("[{Client}] {Why}", c.Id, why);
        }
        return false;
    }

    private void Fail(string why)
    {
        if (State != UpstairsState.Initializing)
        {
            return;
        }
        _log.LogError("activation of upstairs {UpstairsId} generation {Gen} failed: {Why}", UpstairsId, Generation, why);
        FailureReason = why;
        State = UpstairsState.Failed;
        _activated.TrySetException(new UpstairsException(why));
        foreach (DownstairsClient c in _clients)
        {
            c.Disconnect();
        }
        NotifyStateChanged();
    }

    private void Deactivate(string why)
    {
        if (State is UpstairsState.Deactivated or UpstairsState.Failed)
        {
            return;
        }
        if (State == UpstairsState.Initializing)
        {
            Fail(why);
            return;
        }
        _log.LogWarning("{Why}: deactivating", why);
        FailureReason = why;
        State = UpstairsState.Deactivated;
        _flushTimer?.Dispose();
        FailPending(CrucibleErrorKind.NoLongerActive);
        foreach (DownstairsClient c in _clients)
        {
            c.Phase = ClientPhase.Stopped;
            c.Disconnect();
        }
        NotifyStateChanged();
    }

    private bool OnRegionInfo(DownstairsClient c, RegionDefinition def)
    {
        string? mismatch = null;
        if (_options.BlockSize != 0 && def.BlockSize != _options.BlockSize)
        {
            mismatch = $"block_size {def.BlockSize}, expected {_options.BlockSize}";
        }
        else if (_options.BlocksPerExtent != 0 && def.ExtentSize.Value != _options.BlocksPerExtent)
        {
            mismatch = $"blocks_per_extent {def.ExtentSize.Value}, expected {_options.BlocksPerExtent}";
        }
        else if (_options.ExtentCount != 0 && def.ExtentCount != _options.ExtentCount)
        {
            mismatch = $"extent_count {def.ExtentCount}, expected {_options.ExtentCount}";
        }
        else if (_region is { } r && (r.BlockSize != def.BlockSize || r.ExtentSize.Value != def.ExtentSize.Value || r.ExtentCount != def.ExtentCount))
        {
            mismatch = $"block_size {def.BlockSize}, blocks_per_extent {def.ExtentSize.Value}, extent_count {def.ExtentCount}; the other downstairs have {r.BlockSize}, {r.ExtentSize.Value}, {r.ExtentCount}";
        }
        else if (def.Encrypted != _cipher.Encrypted)
        {
            mismatch = $"region {(def.Encrypted ? "encrypted" : "not encrypted")} but this volume {(_cipher.Encrypted ? "has" : "has no")} key";
        }
        if (mismatch is not null)
        {
            string why = $"downstairs {c.Id} ({c.Target}) region does not match: {mismatch}; the volume's block_size, blocks_per_extent and extent_count must be those the region was created with";
            if (State == UpstairsState.Initializing)
            {
                Fail(why);
            }
            else
            {
                _log.LogError("{Why}", why);
                c.Mode = ConnectionMode.Faulted;
            }
            return false;
        }
        if (c.RegionUuid is { } uuid && uuid != def.Uuid && c.Mode != ConnectionMode.Replaced)
        {
            _log.LogWarning("[{Client}] region uuid changed from {Old} to {New}: treated as a replacement", c.Id, uuid, def.Uuid);
            if (c.Mode == ConnectionMode.Offline)
            {
                c.Mode = ConnectionMode.Faulted;
                SkipAll(c);
            }
        }
        c.RegionUuid = def.Uuid;
        _region ??= def;
        if (c.Mode == ConnectionMode.Offline && State == UpstairsState.Active)
        {
            // Back in time for replay (crucible ConnectionMode::Offline): LastFlush, then every job it has not finished.
            _log.LogInformation("[{Client}] back online; last flush {LastFlush}, replaying", c.Id, c.LastFlush);
            c.Send(new Message.LastFlush(c.LastFlush));
            c.Phase = ClientPhase.Active;
            int replayed = 0;
            foreach (IoJob j in _jobs.Values)
            {
                if (c.LastFlush is { } lf && j.Id.Value <= lf.Value)
                {
                    continue;
                }
                JobClientState s = j.State[c.Id];
                if (s is JobClientState.New or JobClientState.InProgress or JobClientState.Done)
                {
                    if (s == JobClientState.Done)
                    {
                        c.OutstandingJobs++;
                        c.OutstandingBytes += j.Length;
                    }
                    j.State[c.Id] = JobClientState.InProgress;
                    j.Replay = true;
                    c.Send(BuildMessage(j, c));
                    replayed++;
                }
            }
            _log.LogInformation("[{Client}] replayed {Count} jobs", c.Id, replayed);
            NotifyStateChanged();
            return true;
        }
        c.Phase = ClientPhase.WaitExtentVersions;
        c.Send(Message.ExtentVersionsPlease.Instance);
        return true;
    }

    private bool OnExtentVersions(DownstairsClient c, Message.ExtentVersions ev)
    {
        int n = ev.GenNumbers.Count;
        if (ev.FlushNumbers.Count != n || ev.DirtyBits.Count != n || n != _region!.Value.ExtentCount)
        {
            _log.LogError("[{Client}] ExtentVersions has {Gens}/{Flushes}/{Dirty} entries for {Extents} extents", c.Id, n,
                ev.FlushNumbers.Count, ev.DirtyBits.Count, _region!.Value.ExtentCount);
            return false;
        }
        var meta = new ExtentMetadata[n];
        for (int i = 0; i < n; i++)
        {
            meta[i] = new ExtentMetadata(ev.GenNumbers[i], ev.FlushNumbers[i], ev.DirtyBits[i]);
        }
        c.ExtentVersions = meta;
        if (State == UpstairsState.Active)
        {
            c.Phase = ClientPhase.LiveRepairReady;
            NotifyStateChanged();
            StartLiveRepair(c);
            return true;
        }
        c.Phase = ClientPhase.WaitQuorum;
        NotifyStateChanged();
        if (_clients.All(x => x.Phase == ClientPhase.WaitQuorum))
        {
            BeginActivation();
        }
        return true;
    }

    /// <summary>crucible <c>check_region_metadata</c> and <c>start_reconciliation</c>.</summary>
    private void BeginActivation()
    {
        ulong maxFlush = 0, maxGen = 0;
        foreach (DownstairsClient c in _clients)
        {
            foreach (ExtentMetadata m in c.ExtentVersions!)
            {
                maxFlush = Math.Max(maxFlush, m.Flush + 1);
                maxGen = Math.Max(maxGen, m.Generation + 1);
            }
        }
        if (!_options.ReadOnly && Generation < maxGen)
        {
            Fail($"generation {Generation} is too low: the downstairs hold extents of generation {maxGen - 1}; use generation {maxGen} or higher (GenerationNumberTooLow {{ requested: {Generation}, actual: {maxGen} }})");
            return;
        }
        _nextFlush = maxFlush;
        List<ExtentFix> fixes = _options.ReadOnly ? new() : Reconciliation.Plan(_clients.Select(c => c.ExtentVersions!).ToArray());
        if (fixes.Count == 0)
        {
            _log.LogInformation("all extents match; next flush {Flush}", _nextFlush);
            GoActive();
            return;
        }
        foreach (ExtentFix f in fixes)
        {
            _log.LogInformation("extent {Extent} needs reconciliation: {Meta} => source {Source}, destinations [{Dest}]", f.Extent,
                string.Join(" ", _clients.Select(c => c.ExtentVersions![f.Extent])), f.Source, string.Join(",", f.Destinations));
        }
        _reconcile = Reconciliation.Messages(fixes, maxFlush, maxGen, _clients.Select(c => c.RepairAddress).ToArray());
        _reconcileStep = -1;
        Interlocked.Add(ref _reconciledExtents, fixes.Count);
        foreach (DownstairsClient c in _clients)
        {
            c.Phase = ClientPhase.Reconcile;
        }
        _log.LogInformation("starting reconciliation: {Count} extents need repair", fixes.Count);
        NextReconcileStep();
    }

    private void NextReconcileStep()
    {
        while (++_reconcileStep < _reconcile!.Count)
        {
            Message m = _reconcile[_reconcileStep];
            _reconcileWaiting.Clear();
            foreach (DownstairsClient c in _clients)
            {
                if (Reconciliation.Concerns(m, c.Id))
                {
                    _reconcileWaiting.Add(c.Id);
                    c.Send(m);
                }
            }
            if (_reconcileWaiting.Count > 0)
            {
                return;
            }
        }
        _reconcile = null;
        _log.LogInformation("reconciliation done");
        GoActive();
    }

    private bool OnReconcileAck(DownstairsClient c, ReconciliationId id, CrucibleError? error)
    {
        if (_reconcile is null || id.Value != (ulong)_reconcileStep || !_reconcileWaiting.Contains(c.Id))
        {
            _log.LogWarning("[{Client}] unexpected reconciliation ack {Id}", c.Id, id);
            return true;
        }
        if (error is not null)
        {
            _log.LogError("[{Client}] reconciliation step {Id} ({Tag}) failed: {Error}; starting over", c.Id, id, _reconcile[_reconcileStep].Tag, error);
            AbortReconciliation();
            return false;
        }
        _reconcileWaiting.Remove(c.Id);
        if (_reconcileWaiting.Count == 0)
        {
            _reconcileDone++;
            NextReconcileStep();
        }
        return true;
    }

    private void AbortReconciliation()
    {
        _reconcile = null;
        foreach (DownstairsClient c in _clients)
        {
            c.Phase = ClientPhase.Disconnected;
            c.Disconnect();
        }
    }

    private void GoActive()
    {
        foreach (DownstairsClient c in _clients)
        {
            c.Phase = ClientPhase.Active;
            c.Mode = ConnectionMode.New;
        }
        State = UpstairsState.Active;
        var r = _region!.Value;
        _log.LogInformation("upstairs {UpstairsId} generation {Gen} is active: {Blocks} blocks of {BlockSize} bytes ({Extents} extents of {PerExtent})",
            UpstairsId, Generation, r.ExtentSize.Value * r.ExtentCount, r.BlockSize, r.ExtentCount, r.ExtentSize.Value);
        if (_options.FlushTimeout > TimeSpan.Zero && !_options.ReadOnly)
        {
            _flushTimer = new Timer(AutoFlush, null, _options.FlushTimeout, _options.FlushTimeout);
        }
        _activated.TrySetResult();
        NotifyStateChanged();
    }

    private void OnDisconnected(DownstairsClient c)
    {
        ClientPhase was = c.Phase;
        if (was == ClientPhase.Stopped)
        {
            return;
        }
        c.Phase = ClientPhase.Disconnected;
        switch (was)
        {
            case ClientPhase.Active when State == UpstairsState.Active:
                if (c.Mode != ConnectionMode.Faulted && c.Mode != ConnectionMode.Replaced)
                {
                    _log.LogWarning("[{Client}] {Target} went offline; {Jobs} jobs kept for replay", c.Id, c.Target, c.OutstandingJobs);
                    c.Mode = ConnectionMode.Offline;
                    foreach (IoJob j in _jobs.Values)
                    {
                        if (j.State[c.Id] == JobClientState.InProgress)
                        {
                            j.State[c.Id] = JobClientState.New;
                        }
                    }
                }
                break;
            case ClientPhase.LiveRepair or ClientPhase.LiveRepairReady:
                _log.LogWarning("[{Client}] {Target} left during live repair", c.Id, c.Target);
                if (c.Mode != ConnectionMode.Replaced)
                {
                    c.Mode = ConnectionMode.Faulted;
                }
                SkipAll(c);
                break;
            case ClientPhase.Reconcile:
                _log.LogWarning("[{Client}] {Target} left during reconciliation; starting over", c.Id, c.Target);
                AbortReconciliation();
                break;
            case ClientPhase.WaitQuorum:
                break;
            case ClientPhase.WaitNowActive when State == UpstairsState.Initializing:
                // The downstairs closes the connection when it refuses PromoteToActive.
                Fail($"downstairs {c.Id} ({c.Target}) refused to promote this upstairs to generation {Generation}: an upstairs with a higher generation is active there");
                break;
            default:
                if (State == UpstairsState.Active && c.Mode == ConnectionMode.Offline)
                {
                    break; // still offline
                }
                break;
        }
        NotifyStateChanged();
    }

    // ---------------------------------------------------------------- shutdown

    /// <summary>Flushes, then disconnects; later requests fail with UpstairsInactive.</summary>
    public async Task DeactivateAsync()
    {
        if (State == UpstairsState.Active && !_options.ReadOnly)
        {
            try
            {
                await FlushAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or UpstairsException)
            {
                _log.LogWarning("final flush did not complete: {Error}", e.Message);
            }
        }
        lock (_gate)
        {
            if (State == UpstairsState.Active)
            {
                State = UpstairsState.Deactivated;
                FailureReason = "deactivated";
                _log.LogInformation("upstairs {UpstairsId} generation {Gen} deactivated", UpstairsId, Generation);
            }
            else if (State == UpstairsState.Initializing)
            {
                State = UpstairsState.Deactivated;
                _activated.TrySetException(new UpstairsException("deactivated before it became active"));
            }
            _flushTimer?.Dispose();
            FailPending(CrucibleErrorKind.UpstairsInactive);
            foreach (DownstairsClient c in _clients)
            {
                c.Phase = ClientPhase.Stopped;
                c.Disconnect();
            }
            NotifyStateChanged();
        }
        RunCompletions();
    }

    public async ValueTask DisposeAsync()
    {
        await DeactivateAsync().ConfigureAwait(false);
        _stop.Cancel();
        if (_control is { } control)
        {
            await control.DisposeAsync().ConfigureAwait(false);
        }
        foreach (Task t in _clientTasks)
        {
            if (t is not null)
            {
                try
                {
                    await t.ConfigureAwait(false);
                }
                catch (Exception)
                {
                }
            }
        }
        if (_liveRepair is { } lr)
        {
            try
            {
                await lr.ConfigureAwait(false);
            }
            catch (Exception)
            {
            }
        }
        lock (_gate)
        {
            foreach (IoJob j in _jobs.Values)
            {
                if (j.Buffer is { } b)
                {
                    j.Buffer = null;
                    ArrayPool<byte>.Shared.Return(b);
                }
            }
            _jobs.Clear();
        }
        _cipher.Dispose();
        _stop.Dispose();
    }

    /// <summary>An <see cref="UpstairsIo"/> over a buffer, completing a task (for tests and tools).</summary>
    private sealed class TaskIo : UpstairsIo
    {
        private readonly TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Memory<byte> _read;
        private readonly ReadOnlyMemory<byte> _write;

        public TaskIo(Memory<byte> read) => _read = read;

        public TaskIo(ReadOnlyMemory<byte> write) => _write = write;

        public Task Task => _tcs.Task;

        protected internal override void FillWrite(Span<byte> destination) => _write.Span.CopyTo(destination);

        protected internal override void ReadData(ReadOnlySpan<byte> data) => data.CopyTo(_read.Span);

        protected internal override void Completed(CrucibleError? error)
        {
            if (error is null)
            {
                _tcs.TrySetResult();
            }
            else
            {
                _tcs.TrySetException(new UpstairsIoException(error));
            }
        }
    }
}

/// <summary>A guest request failed with <see cref="Error"/>.</summary>
public sealed class UpstairsIoException(CrucibleError error) : Exception(error.ToString())
{
    public CrucibleError Error { get; } = error;
}

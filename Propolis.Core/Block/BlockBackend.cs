using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Propolis.Core.Block;

/// <summary>The request path every backend shares: a bounded queue of submitted requests, a pool
/// of worker threads taking requests from it, the checks common to all backends (range,
/// read-only, supported operations, skip_flush), pause/drain and stop. A backend supplies
/// <see cref="Execute"/> and <see cref="FlushStore"/>.</summary>
/// <remarks>The queue lock is held only to move a reference in or out of the ring, never across
/// I/O. A request holds no lock while it runs.</remarks>
public abstract partial class BlockBackend : IBlockBackend
{
    private readonly object _queueLock = new();
    private readonly object _idleLock = new();
    private BlockRequest[] _ring = [];
    private int _head;
    private int _count;
    private int _inFlight;
    private bool _started;
    private bool _paused;
    private bool _stopped;
    private bool _exiting;
    private Thread[] _threads = [];
    private BlockAttachment? _attachment;
    private readonly ulong[] _loggedErrnos = new ulong[2];
    private int _loggedException;
    private int _disposed;

    protected BlockBackend(string kind, BlockDeviceInfo info, BlockBackendOptions options, ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        Kind = kind;
        Info = info;
        SkipFlush = options.SkipFlush;
        Logger = logger ?? NullLogger.Instance;
    }

    public string Kind { get; }

    public BlockDeviceInfo Info { get; }

    /// <summary>Flush completes at once without touching the store.</summary>
    public bool SkipFlush { get; }

    protected ILogger Logger { get; }

    /// <summary>Requests submitted and not yet completed (queued, held by a pause, or running).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Carries out a request that has passed the common checks: its byte range lies inside
    /// the disk, a write-type operation is allowed, the operation is supported, and a Flush is not
    /// skipped. Runs on worker thread <paramref name="worker"/> (0..Workers-1); must not throw.</summary>
    protected abstract BlockResult Execute(BlockRequest request, int worker);

    /// <summary>Makes completed writes durable.</summary>
    protected abstract BlockResult FlushStore();

    /// <summary>Releases the store (file descriptor, mapping) once the workers have exited.</summary>
    protected virtual void DisposeStore()
    {
    }

    public void Attach(BlockAttachment attachment)
    {
        ArgumentNullException.ThrowIfNull(attachment);
        lock (_queueLock)
        {
            if (_attachment is not null)
            {
                throw new InvalidOperationException($"the {Kind} backend is already attached to a device");
            }
            _attachment = attachment;
            _ring = new BlockRequest[attachment.QueueDepth];
        }
    }

    public void Submit(BlockRequest request)
    {
        var accepted = false;
        lock (_queueLock)
        {
            // The ring holds QueueDepth entries and the attachment never has more rented.
            if (!_stopped && ReferenceEquals(request.Owner, _attachment) && _count < _ring.Length)
            {
                var tail = _head + _count;
                _ring[tail >= _ring.Length ? tail - _ring.Length : tail] = request;
                _count++;
                Interlocked.Increment(ref _inFlight);
                accepted = true;
                if (_started && !_paused)
                {
                    Monitor.Pulse(_queueLock);
                }
            }
        }
        if (!accepted)
        {
            request.Complete(BlockResult.IoError);
        }
    }

    public void Start()
    {
        lock (_queueLock)
        {
            if (_started || _stopped)
            {
                return;
            }
            _started = true;
            _threads = new Thread[Info.Workers];
            for (var i = 0; i < _threads.Length; i++)
            {
                var worker = i;
                _threads[i] = new Thread(() => WorkerLoop(worker))
                {
                    IsBackground = true,
                    Name = $"block {Kind} worker {i}",
                };
                _threads[i].Start();
            }
            Monitor.PulseAll(_queueLock);
        }
    }

    /// <summary>Returns when every request submitted before the call has completed; later
    /// submissions are held until <see cref="Resume"/>.</summary>
    public void Pause()
    {
        while (true)
        {
            lock (_queueLock)
            {
                if (!_started || _paused || _stopped || Volatile.Read(ref _inFlight) == 0)
                {
                    // Nothing runs before Start, while already paused, or after Stop.
                    _paused = true;
                    return;
                }
            }
            WaitForIdle();
        }
    }

    public void Resume()
    {
        lock (_queueLock)
        {
            _paused = false;
            Monitor.PulseAll(_queueLock);
        }
    }

    public BlockResult Flush() => SkipFlush ? BlockResult.Success : FlushStore();

    /// <summary>Completes everything submitted (running held and queued requests if started, or
    /// failing them with IoError if never started), flushes unless skip_flush, and joins the workers.</summary>
    public void Stop()
    {
        bool started;
        lock (_queueLock)
        {
            if (_stopped)
            {
                return;
            }
            _stopped = true;
            _paused = false;
            started = _started;
            Monitor.PulseAll(_queueLock);
        }
        if (started)
        {
            WaitForIdle();
        }
        else
        {
            while (TryDequeue(out var request))
            {
                request.Complete(BlockResult.IoError);
                Retire();
            }
        }
        _ = Flush();
        lock (_queueLock)
        {
            _exiting = true;
            Monitor.PulseAll(_queueLock);
        }
        foreach (var thread in _threads)
        {
            thread.Join();
        }
    }

    public void Dispose()
    {
        Stop();
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            DisposeStore();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Logs a failed system call the first time that errno is seen on this backend and
    /// returns <see cref="BlockResult.IoError"/>.</summary>
    protected BlockResult IoFailed(string operation, int errno)
    {
        var bit = errno is > 0 and < 128 ? errno : 0;
        var mask = 1UL << (bit & 63);
        if ((Interlocked.Or(ref _loggedErrnos[bit >> 6], mask) & mask) == 0)
        {
            LogIoFailed(Logger, Kind, operation, System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno), errno);
        }
        return BlockResult.IoError;
    }

    private BlockResult Check(BlockRequest request)
    {
        var info = Info;
        var op = request.Operation;
        if (op == BlockOperation.Flush)
        {
            return BlockResult.Success;
        }
        if (op != BlockOperation.Read && info.ReadOnly)
        {
            return BlockResult.ReadOnly;
        }
        if ((op == BlockOperation.Discard && !info.SupportsDiscard) || (op == BlockOperation.WriteZeroes && !info.SupportsWriteZeroes))
        {
            return BlockResult.Unsupported;
        }
        var size = info.SizeInBytes;
        return request.Offset <= size && request.Length <= size - request.Offset ? BlockResult.Success : BlockResult.OutOfRange;
    }

    private void WorkerLoop(int worker)
    {
        while (true)
        {
            BlockRequest request;
            lock (_queueLock)
            {
                while (!_exiting && (_paused || _count == 0))
                {
                    Monitor.Wait(_queueLock);
                }
                if (_count == 0 || _paused)
                {
                    return;
                }
                request = DequeueLocked();
            }
            request.Complete(Run(request, worker));
            Retire();
        }
    }

    private BlockResult Run(BlockRequest request, int worker)
    {
        var result = Check(request);
        if (result != BlockResult.Success || (request.Operation == BlockOperation.Flush && SkipFlush))
        {
            return result;
        }
        try
        {
            return Execute(request, worker);
        }
        catch (Exception e)
        {
            if (Interlocked.Exchange(ref _loggedException, 1) == 0)
            {
                LogExecuteThrew(Logger, Kind, e);
            }
            return BlockResult.IoError;
        }
    }

    private bool TryDequeue(out BlockRequest request)
    {
        lock (_queueLock)
        {
            if (_count == 0)
            {
                request = null!;
                return false;
            }
            request = DequeueLocked();
            return true;
        }
    }

    private BlockRequest DequeueLocked()
    {
        var request = _ring[_head];
        _ring[_head] = null!;
        _head = _head + 1 == _ring.Length ? 0 : _head + 1;
        _count--;
        return request;
    }

    private void Retire()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0)
        {
            lock (_idleLock)
            {
                Monitor.PulseAll(_idleLock);
            }
        }
    }

    private void WaitForIdle()
    {
        lock (_idleLock)
        {
            while (Volatile.Read(ref _inFlight) != 0)
            {
                Monitor.Wait(_idleLock);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Block backend {Kind}: {Operation} failed: {Error} (errno {Errno}); the request completes with an I/O error (this errno is logged once)")]
    private static partial void LogIoFailed(ILogger logger, string kind, string operation, string error, int errno);

    [LoggerMessage(Level = LogLevel.Error, Message = "Block backend {Kind}: a request threw; it completes with an I/O error (logged once)")]
    private static partial void LogExecuteThrew(ILogger logger, string kind, Exception e);
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Memory;

namespace Propolis.Core.Block;

/// <summary>Joins one device front end (virtio-blk, NVMe) to one <see cref="IBlockBackend"/>:
/// owns a pool of <see cref="QueueDepth"/> reusable <see cref="BlockRequest"/>s and routes each
/// completion to the front end's <see cref="IBlockCompletionHandler"/>.</summary>
/// <example>
/// A front end's notification path, allocation-free:
/// <code>
/// while (queue.TryPopAvail(out var head))
/// {
///     if (!attachment.TryRent(out var req)) { /* all QueueDepth requests in flight: retry after a completion */ break; }
///     req.Tag = head;
///     req.PrepareRead(sector * 512);
///     foreach (var d in dataDescriptors) { if (!req.TryAddSegment(d.Address, d.Length)) { /* too many: fail it */ } }
///     attachment.Submit(req);
/// }
/// // IBlockCompletionHandler.Complete(req, result), on a backend worker thread:
/// //   write the status byte, push req.Tag to the used ring, signal the irqfd.
/// </code>
/// </example>
public sealed partial class BlockAttachment
{
    /// <summary>A front end that advertises seg_max or an MDTS must not exceed this.</summary>
    public const int DefaultMaxSegments = 256;

    private readonly BlockRequest[] _free;
    private int _freeCount;
    private readonly object _poolLock = new();
    private readonly IBlockCompletionHandler _handler;
    private readonly ILogger _logger;
    private int _handlerFaulted;

    /// <param name="backend">The backend; it may be attached once.</param>
    /// <param name="memory">Guest memory the requests' segments address.</param>
    /// <param name="handler">Receives every completion on a backend worker thread.</param>
    /// <param name="queueDepth">Requests that may be in flight at once (the sum of the front
    /// end's queue sizes is a good value); 1..65536.</param>
    /// <param name="maxSegments">Segments per request, 1..4096.</param>
    public BlockAttachment(IBlockBackend backend, GuestMemory memory, IBlockCompletionHandler handler,
        int queueDepth, int maxSegments = DefaultMaxSegments, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentOutOfRangeException.ThrowIfLessThan(queueDepth, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(queueDepth, 65536);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSegments, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxSegments, 4096);
        Backend = backend;
        Memory = memory;
        _handler = handler;
        _logger = logger ?? NullLogger.Instance;
        QueueDepth = queueDepth;
        MaxSegments = maxSegments;
        _free = new BlockRequest[queueDepth];
        for (var i = 0; i < queueDepth; i++)
        {
            _free[i] = new BlockRequest(this, maxSegments);
        }
        _freeCount = queueDepth;
        backend.Attach(this);
    }

    public IBlockBackend Backend { get; }

    public GuestMemory Memory { get; }

    public BlockDeviceInfo Info => Backend.Info;

    public int QueueDepth { get; }

    public int MaxSegments { get; }

    /// <summary>Requests rented and not yet completed or released.</summary>
    public int Outstanding => QueueDepth - Volatile.Read(ref _freeCount);

    /// <summary>A cleared request, or false if all <see cref="QueueDepth"/> are in flight.</summary>
    public bool TryRent(out BlockRequest request)
    {
        lock (_poolLock)
        {
            if (_freeCount == 0)
            {
                request = null!;
                return false;
            }
            request = _free[--_freeCount];
            _free[_freeCount] = null!;
        }
        request.Rented = true;
        return true;
    }

    /// <summary>Returns a rented request that will not be submitted (the front end found the
    /// guest's request malformed after renting).</summary>
    public void Release(BlockRequest request)
    {
        CheckOwned(request);
        if (request.Submitted)
        {
            throw new InvalidOperationException("a submitted request is returned by its completion, not by Release");
        }
        Return(request);
    }

    /// <summary>Hands a prepared request to the backend. It completes exactly once, through the handler.</summary>
    public void Submit(BlockRequest request)
    {
        CheckOwned(request);
        if (request.Submitted)
        {
            throw new InvalidOperationException("the request is already submitted");
        }
        request.Submitted = true;
        Backend.Submit(request);
    }

    internal void Complete(BlockRequest request, BlockResult result)
    {
        if (!ReferenceEquals(request.Owner, this) || !request.Submitted)
        {
            // A backend bug: completing twice would hand one pool slot to two front-end requests.
            throw new InvalidOperationException("the request completed twice or was never submitted");
        }
        try
        {
            _handler.Complete(request, result);
        }
        catch (Exception e)
        {
            // The handler runs on a backend worker thread: an exception must not end it.
            if (Interlocked.Exchange(ref _handlerFaulted, 1) == 0)
            {
                LogHandlerFailed(_logger, e);
            }
        }
        request.Submitted = false;
        Return(request);
    }

    private void Return(BlockRequest request)
    {
        request.Clear();
        request.Rented = false;
        lock (_poolLock)
        {
            _free[_freeCount++] = request;
        }
    }

    private void CheckOwned(BlockRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!ReferenceEquals(request.Owner, this) || !request.Rented)
        {
            throw new InvalidOperationException("the request was not rented from this attachment");
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Block completion handler threw; the request was returned to the pool (further failures are not logged)")]
    private static partial void LogHandlerFailed(ILogger logger, Exception e);
}

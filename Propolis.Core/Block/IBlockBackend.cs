namespace Propolis.Core.Block;

/// <summary>A block backend: a disk image, host block device or memory that serves
/// <see cref="BlockRequest"/>s on its own worker threads.</summary>
/// <remarks>Lifecycle (propolis Lifecycle, with the block-specific parts spelt out):
/// <list type="bullet">
/// <item><see cref="Start"/> starts the workers; requests submitted before it wait in the queue.</item>
/// <item><see cref="Pause"/> returns once every request submitted so far has completed (its
/// completion handler has returned); requests submitted while paused wait until <see cref="Resume"/>.</item>
/// <item><see cref="Flush"/> makes completed writes durable (a no-op with skip_flush or for memory).</item>
/// <item><see cref="Stop"/> drains, flushes (unless skip_flush) and joins the workers; requests
/// submitted afterwards complete at once with <see cref="BlockResult.IoError"/>. Idempotent.</item>
/// </list>
/// Nothing here throws on a worker thread: every failure is a <see cref="BlockResult"/>.</remarks>
public interface IBlockBackend : IDisposable
{
    /// <summary>The backend's kind as named in the configuration ("file", "mem-async", ...).</summary>
    string Kind { get; }

    BlockDeviceInfo Info { get; }

    /// <summary>Called once, by the <see cref="BlockAttachment"/> constructor: a backend serves one
    /// device. <paramref name="attachment"/>.QueueDepth bounds the requests it will ever hold.</summary>
    /// <exception cref="InvalidOperationException">Already attached.</exception>
    void Attach(BlockAttachment attachment);

    /// <summary>Queues a request; allocation-free, never blocks on I/O. The request completes
    /// exactly once through <see cref="BlockRequest.Complete"/>.</summary>
    void Submit(BlockRequest request);

    void Start();

    void Pause();

    void Resume();

    /// <summary>Syncs the backing store now; the result says whether that worked.</summary>
    BlockResult Flush();

    void Stop();
}

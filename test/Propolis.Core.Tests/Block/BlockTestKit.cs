using Propolis.Core.Block;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Block;

/// <summary>A front end for tests: records each completion by tag and lets a test wait for a count.</summary>
internal sealed class RecordingHandler : IBlockCompletionHandler
{
    private readonly object _lock = new();
    private readonly BlockResult[] _results;
    private readonly int[] _threadIds;
    private int _completed;

    public RecordingHandler(int capacity = 4096)
    {
        _results = new BlockResult[capacity];
        _threadIds = new int[capacity];
    }

    public int Completed => Volatile.Read(ref _completed);

    public BlockResult ResultOf(ulong tag) => _results[tag];

    public int ThreadOf(ulong tag) => _threadIds[tag];

    public void Complete(BlockRequest request, BlockResult result)
    {
        _results[request.Tag] = result;
        _threadIds[request.Tag] = Environment.CurrentManagedThreadId;
        lock (_lock)
        {
            _completed++;
            Monitor.PulseAll(_lock);
        }
    }

    public void WaitFor(int count)
    {
        lock (_lock)
        {
            while (_completed < count)
            {
                Assert.True(Monitor.Wait(_lock, TimeSpan.FromSeconds(30)), $"only {_completed} of {count} requests completed");
            }
        }
    }
}

/// <summary>Guest RAM with a hole (64 KiB at 0, nothing at 64..128 KiB, 64 KiB at 128 KiB), a
/// backend, an attachment and a recording handler.</summary>
internal sealed class BlockRig : IDisposable
{
    public const ulong Hole = 0x1_0000;
    public const ulong HighRam = 0x2_0000;

    public BlockRig(IBlockBackend backend, int queueDepth = 64, int maxSegments = 16)
    {
        Memory = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x1_0000), (HighRam, 0x1_0000)]));
        Backend = backend;
        Handler = new RecordingHandler();
        Attachment = new BlockAttachment(backend, Memory, Handler, queueDepth, maxSegments);
    }

    public GuestMemory Memory { get; }
    public IBlockBackend Backend { get; }
    public RecordingHandler Handler { get; }
    public BlockAttachment Attachment { get; }
    private ulong _nextTag;

    /// <summary>Submits a request built by <paramref name="prepare"/>, waits for it, returns its result.</summary>
    public BlockResult Run(Action<BlockRequest> prepare)
    {
        var target = Handler.Completed + 1;
        var tag = SubmitOne(prepare);
        Handler.WaitFor(target);
        return Handler.ResultOf(tag);
    }

    public ulong SubmitOne(Action<BlockRequest> prepare)
    {
        Assert.True(Attachment.TryRent(out var request));
        var tag = _nextTag++;
        request.Tag = tag;
        prepare(request);
        Attachment.Submit(request);
        return tag;
    }

    public void Dispose()
    {
        Backend.Dispose();
        Memory.Dispose();
    }
}

internal static class Patterns
{
    public static byte[] Make(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

using Propolis.Core.Block;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Block;

/// <summary>The shared request path: lifecycle, checks, the request pool and allocation.</summary>
public sealed class RequestPathTests
{
    /// <summary>A backend that counts what reaches it.</summary>
    private sealed class CountingBackend(BlockBackendOptions options, bool discard = false)
        : BlockBackend("counting", new BlockDeviceInfo(options.BlockSize, 64, options.ReadOnly, discard, true, false, options.Workers), options, null)
    {
        public int Executed;
        public int Flushes;

        protected override BlockResult Execute(BlockRequest request, int worker)
        {
            Interlocked.Increment(ref Executed);
            return request.Operation == BlockOperation.Flush ? FlushStore() : BlockResult.Success;
        }

        protected override BlockResult FlushStore()
        {
            Interlocked.Increment(ref Flushes);
            return BlockResult.Success;
        }
    }

    [Fact]
    public void Stop_drains_then_flushes_once()
    {
        var backend = new CountingBackend(new BlockBackendOptions { Workers = 3 });
        using var rig = new BlockRig(backend);
        backend.Start();
        for (var i = 0; i < 40; i++)
        {
            rig.SubmitOne(r => { r.PrepareWrite(0); r.TryAddSegment(0, 512); });
        }
        backend.Stop();
        Assert.Equal(40, rig.Handler.Completed);
        Assert.Equal(40, backend.Executed);
        Assert.Equal(1, backend.Flushes);
        backend.Stop();
        Assert.Equal(1, backend.Flushes);
    }

    [Fact]
    public void Skip_flush_turns_flushes_into_no_ops()
    {
        var backend = new CountingBackend(new BlockBackendOptions { SkipFlush = true });
        using var rig = new BlockRig(backend);
        backend.Start();
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareFlush()));
        Assert.Equal(BlockResult.Success, backend.Flush());
        backend.Stop();
        Assert.Equal(0, backend.Flushes);
        Assert.Equal(0, backend.Executed);
    }

    [Fact]
    public void Requests_wait_for_Start_and_a_never_started_backend_fails_them_on_Stop()
    {
        var backend = new CountingBackend(new BlockBackendOptions());
        using var rig = new BlockRig(backend);
        var tag = rig.SubmitOne(r => r.PrepareFlush());
        backend.Pause(); // nothing is running: returns at once
        Assert.Equal(0, rig.Handler.Completed);
        backend.Stop();
        Assert.Equal(1, rig.Handler.Completed);
        Assert.Equal(BlockResult.IoError, rig.Handler.ResultOf(tag));
        Assert.Equal(0, backend.Executed);
    }

    [Fact]
    public void Unsupported_operations_are_refused_before_the_backend_sees_them()
    {
        var backend = new CountingBackend(new BlockBackendOptions(), discard: false);
        using var rig = new BlockRig(backend);
        backend.Start();
        Assert.Equal(BlockResult.Unsupported, rig.Run(r => r.PrepareDiscard(0, 512)));
        Assert.Equal(BlockResult.Unsupported, rig.Run(r => r.PrepareWriteZeroes(0, 512)));
        Assert.Equal(0, backend.Executed);
    }

    [Fact]
    public void The_pool_bounds_requests_in_flight_and_segments_per_request()
    {
        var backend = new CountingBackend(new BlockBackendOptions());
        using var rig = new BlockRig(backend, queueDepth: 2, maxSegments: 2);
        Assert.True(rig.Attachment.TryRent(out var a));
        Assert.True(rig.Attachment.TryRent(out var b));
        Assert.False(rig.Attachment.TryRent(out _));
        Assert.Equal(2, rig.Attachment.Outstanding);

        a.PrepareRead(0);
        Assert.True(a.TryAddSegment(0, 512));
        Assert.True(a.TryAddSegment(0x1000, 512));
        Assert.False(a.TryAddSegment(0x2000, 512));
        Assert.Equal(1024ul, a.Length);
        b.PrepareFlush();
        Assert.False(b.TryAddSegment(0, 512));
        b.PrepareWrite(0);
        Assert.True(b.TryAddSegment(0, uint.MaxValue));
        Assert.Equal((ulong)uint.MaxValue, b.Length);

        rig.Attachment.Release(a);
        Assert.Throws<InvalidOperationException>(() => rig.Attachment.Release(a));
        Assert.Throws<InvalidOperationException>(() => rig.Attachment.Submit(a));
        Assert.True(rig.Attachment.TryRent(out var c));
        Assert.Same(a, c);
        Assert.Equal(0, c.Segments.Length);
        Assert.Equal(0ul, c.Tag);
        rig.Attachment.Release(b);
        rig.Attachment.Release(c);
        Assert.Equal(0, rig.Attachment.Outstanding);

        using var other = GuestMemory.Allocate(MemoryLayout.ForRamSize(2 << 20));
        Assert.Throws<InvalidOperationException>(() => new BlockAttachment(backend, other, new RecordingHandler(), 4));
    }

    [Fact]
    public void A_throwing_completion_handler_does_not_lose_the_request_or_the_worker()
    {
        var backend = new CountingBackend(new BlockBackendOptions());
        using var memory = GuestMemory.Allocate(MemoryLayout.ForRamSize(2 << 20));
        var handler = new ThrowingHandler();
        var attachment = new BlockAttachment(backend, memory, handler, 1);
        backend.Start();
        for (var i = 0; i < 3; i++)
        {
            Assert.True(attachment.TryRent(out var r));
            r.PrepareFlush();
            attachment.Submit(r);
            backend.Pause();
            backend.Resume();
        }
        Assert.Equal(3, handler.Calls);
        backend.Dispose();
    }

    private sealed class ThrowingHandler : IBlockCompletionHandler
    {
        public int Calls;

        public void Complete(BlockRequest request, BlockResult result)
        {
            Interlocked.Increment(ref Calls);
            throw new InvalidOperationException("front-end bug");
        }
    }

    [Theory]
    [InlineData("file")]
    [InlineData(MemoryBackend.MemAsyncKind)]
    public void Renting_preparing_and_submitting_allocates_nothing_after_warm_up(string kind)
    {
        var dir = Directory.CreateTempSubdirectory("propolis-block-alloc-");
        try
        {
            var path = Path.Combine(dir.FullName, "disk.img");
            File.WriteAllBytes(path, new byte[1 << 20]);
            IBlockBackend backend = kind == "file"
                ? FileBackend.Open(path, new BlockBackendOptions { Workers = 2 })
                : MemoryBackend.Create(kind, 1 << 20, new BlockBackendOptions { Workers = 2 });
            using var rig = new BlockRig(backend, queueDepth: 512, maxSegments: 4);
            backend.Start();
            var attachment = rig.Attachment;

            SubmitBatch(attachment, 0, 256);
            rig.Handler.WaitFor(256);

            // The quietest of three rounds: a background thread (tiered JIT, the test runner) can allocate on this thread's behalf only rarely.
            var least = long.MaxValue;
            for (var round = 1; round <= 3; round++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                SubmitBatch(attachment, (ulong)round * 256, 256);
                var after = GC.GetAllocatedBytesForCurrentThread();
                least = Math.Min(least, after - before);
                rig.Handler.WaitFor(256 * (round + 1));
            }
            Assert.Equal(0, least);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void SubmitBatch(BlockAttachment attachment, ulong firstTag, int count)
    {
        for (var i = 0; i < count; i++)
        {
            Assert.True(attachment.TryRent(out var request));
            request.Tag = (firstTag + (ulong)i) % 4096;
            switch (i % 4)
            {
                case 0:
                    request.PrepareWrite((ulong)i * 512);
                    request.TryAddSegment(0x1000, 256);
                    request.TryAddSegment(BlockRig.HighRam, 256);
                    break;
                case 1:
                    request.PrepareRead((ulong)i * 512);
                    request.TryAddSegment(0x2000, 512);
                    break;
                case 2:
                    request.PrepareWriteZeroes((ulong)i * 512, 512);
                    break;
                default:
                    request.PrepareFlush();
                    break;
            }
            attachment.Submit(request);
        }
    }
}

using System.Collections.Concurrent;
using Propolis.Core.Block;
using Propolis.Core.Memory;
using Propolis.Crucible.Upstairs;

namespace Propolis.Crucible.Tests.Upstairs;

public class CrucibleBlockBackendTests
{
    private sealed class Handler : IBlockCompletionHandler
    {
        public readonly BlockingCollection<(ulong Tag, BlockResult Result)> Done = new();

        public void Complete(BlockRequest request, BlockResult result) => Done.Add((request.Tag, result));
    }

    private static BlockResult Run(BlockAttachment a, Handler h, Action<BlockRequest> prepare)
    {
        Assert.True(a.TryRent(out BlockRequest r));
        prepare(r);
        r.Tag = 7;
        a.Submit(r);
        Assert.True(h.Done.TryTake(out var done, TimeSpan.FromSeconds(60)));
        return done.Result;
    }

    [Fact]
    public async Task GuestSegmentsGoThroughAnEncryptedVolumeAndBack()
    {
        await using RegionSet set = RegionSet.Start(encrypted: true);
        CrucibleBlockBackend backend = await CrucibleBlockBackend.ActivateAsync(set.Options(1), workers: 4);
        using var memory = GuestMemory.Allocate(MemoryLayout.ForRamSize(2 << 20));
        var handler = new Handler();
        var attachment = new BlockAttachment(backend, memory, handler, 8);
        Assert.Equal(512u, backend.Info.BlockSize);
        Assert.Equal(RegionSet.TotalBlocks, backend.Info.SizeInBlocks);
        Assert.True(backend.Info.SupportsFlush);
        backend.Start();
        try
        {
            byte[] data = RegionSet.Pattern(3, 0x2c);
            memory.Write(0x1000, data.AsSpan(0, 1024));
            memory.Write(0x8000, data.AsSpan(1024));
            Assert.Equal(BlockResult.Success, Run(attachment, handler, r =>
            {
                r.PrepareWrite(5 * 512);
                Assert.True(r.TryAddSegment(0x1000, 1024));
                Assert.True(r.TryAddSegment(0x8000, 512));
            }));
            Assert.Equal(BlockResult.Success, Run(attachment, handler, r => r.PrepareFlush()));
            Assert.Equal(BlockResult.Success, Run(attachment, handler, r =>
            {
                r.PrepareRead(5 * 512);
                Assert.True(r.TryAddSegment(0x20000, 512));
                Assert.True(r.TryAddSegment(0x30000, 1024));
            }));
            var back = new byte[1536];
            Assert.True(memory.TryRead(0x20000, back.AsSpan(0, 512)));
            Assert.True(memory.TryRead(0x30000, back.AsSpan(512)));
            Assert.Equal(data, back);

            Assert.Equal(BlockResult.IoError, Run(attachment, handler, r =>
            {
                r.PrepareRead(100); // not a whole block
                Assert.True(r.TryAddSegment(0x20000, 512));
            }));
            Assert.Equal(BlockResult.Unsupported, Run(attachment, handler, r => r.PrepareDiscard(0, 512)));
        }
        finally
        {
            backend.Stop();
            backend.Dispose();
        }
        Assert.Equal(UpstairsState.Deactivated, backend.Upstairs.State);
    }
}

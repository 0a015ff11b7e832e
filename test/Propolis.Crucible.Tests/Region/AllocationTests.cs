using Propolis.Crucible.Hashing;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Regions.Block;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Regions;

/// <summary>
/// The block path allocates nothing once warm: hashing, and an extent's read, write and
/// write-unwritten (buffers come from the shared pools).
/// </summary>
public class AllocationTests
{
    private static long Allocated(Action action)
    {
        action(); // warm up: JIT, pools, lazily created statics
        action();
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void HashingAllocatesNothing()
    {
        byte[] block = new byte[4096];
        new Random(3).NextBytes(block);
        var ec = new EncryptionContext(new byte[12], new byte[16]);
        ulong sink = 0;
        Assert.Equal(0, Allocated(() => sink ^= XxHash64.Hash(block)));
        Assert.Equal(0, Allocated(() =>
        {
            var h = new XxHash64();
            h.Append(block.AsSpan(0, 100));
            h.Append(block.AsSpan(100));
            sink ^= h.GetCurrentHash();
        }));
        Assert.Equal(0, Allocated(() => sink ^= IntegrityHash.Compute(ec, block)));
        Assert.NotEqual(0UL, sink);
    }

    [Fact]
    public void ExtentReadAndWriteAllocateNothingOnceWarm()
    {
        using var tmp = new TempDir();
        using Region region = Region.Create(tmp.Sub("r"), RegionDefinition.ForNewRegion(512, 64, 1, Guid.NewGuid(), false));
        Extent extent = region.GetExtent(0);
        byte[] data = new byte[8 * 512];
        new Random(4).NextBytes(data);
        var contexts = new BlockContext[8];
        for (int i = 0; i < 8; i++)
        {
            contexts[i] = BlockContext.ForPlainBlock(data.AsSpan(i * 512, 512));
        }
        var readData = new byte[8 * 512];
        var readContexts = new BlockContext?[8];

        Assert.Equal(0, Allocated(() => extent.Write(4, data, contexts, onlyWriteUnwritten: false)));
        Assert.Equal(0, Allocated(() => extent.Write(2, data, contexts, onlyWriteUnwritten: true)));
        Assert.Equal(0, Allocated(() => extent.Read(4, readData, readContexts)));
        Assert.Equal(data, readData);
    }
}

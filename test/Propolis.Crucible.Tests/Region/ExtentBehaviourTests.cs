using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Regions.Block;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Regions;

public class ExtentBehaviourTests : IDisposable
{
    private const int Bs = 512;
    private readonly TempDir _tmp = new();
    private readonly string _dir;

    public ExtentBehaviourTests()
    {
        _dir = _tmp.Sub("region");
    }

    public void Dispose() => _tmp.Dispose();

    private Region Create(ulong blocksPerExtent = 8, uint extents = 2) =>
        Region.Create(_dir, RegionDefinition.ForNewRegion(Bs, blocksPerExtent, extents, Guid.NewGuid(), false));

    private static byte[] Blocks(params byte[] fills) =>
        fills.SelectMany(f => Enumerable.Repeat(f, Bs)).ToArray();

    private static BlockContext[] Contexts(byte[] data) =>
        Enumerable.Range(0, data.Length / Bs).Select(i => BlockContext.ForPlainBlock(data.AsSpan(i * Bs, Bs))).ToArray();

    private static void Write(Region r, uint eid, ulong offset, byte[] data, bool onlyUnwritten = false) =>
        r.Write(eid, offset, data, Contexts(data), onlyUnwritten);

    private static (byte[] Data, BlockContext?[] Contexts) Read(Region r, uint eid, ulong offset, int count)
    {
        var data = new byte[count * Bs];
        var ctx = new BlockContext?[count];
        r.Read(eid, offset, data, ctx);
        return (data, ctx);
    }

    private string ExtentFile(uint eid) => RegionPaths.ExtentPath(_dir, eid);

    [Fact]
    public void ReadsReturnWrittenDataAndContextsAndZerosForUnwrittenBlocks()
    {
        using Region r = Create();
        byte[] data = Blocks(1, 2, 3);
        Write(r, 1, 4, data);
        var (got, ctx) = Read(r, 1, 3, 5);
        Assert.Equal(Blocks(0, 1, 2, 3, 0), got);
        Assert.Null(ctx[0]);
        Assert.Equal(Contexts(data), ctx[1..4].Select(c => c!.Value));
        Assert.Null(ctx[4]);
    }

    [Fact]
    public void WriteUnwrittenSkipsBlocksThatHaveContexts()
    {
        using Region r = Create();
        Write(r, 0, 1, Blocks(7));
        Write(r, 0, 0, Blocks(8, 8, 8), onlyUnwritten: true);
        Assert.Equal(Blocks(8, 7, 8), Read(r, 0, 0, 3).Data);

        // All written already: nothing happens, not even the dirty flag.
        r.Flush(1, 1);
        Write(r, 0, 0, Blocks(9, 9, 9), onlyUnwritten: true);
        Assert.False(r.GetExtent(0).Dirty);
        Assert.Equal(Blocks(8, 7, 8), Read(r, 0, 0, 3).Data);
    }

    [Fact]
    public void AHashMismatchWritesNothing()
    {
        using Region r = Create();
        byte[] good = Blocks(1);
        byte[] bad = Blocks(2);
        var writes = new[]
        {
            new ExtentWrite(0, 0, good, Contexts(good)),
            new ExtentWrite(1, 0, bad, new[] { new BlockContext(12345, null) }),
        };
        var e = Assert.Throws<RegionException>(() => r.Write(writes, false));
        Assert.Equal(RegionError.HashMismatch, e.Error);
        Assert.Equal(Blocks(0), Read(r, 0, 0, 1).Data);
        Assert.False(r.GetExtent(0).Dirty);
    }

    [Fact]
    public void EncryptedContextsAreCheckedWithNonceAndTag()
    {
        using Region r = Create();
        byte[] data = Blocks(5);
        var ec = new EncryptionContext(OnDiskFormatTests.TestNonce, OnDiskFormatTests.TestTag);
        Assert.Equal(RegionError.HashMismatch, Assert.Throws<RegionException>(() =>
            r.Write(0, 0, data, new[] { new BlockContext(IntegrityHash.Compute(data), ec) })).Error);
        r.Write(0, 0, data, new[] { new BlockContext(IntegrityHash.Compute(ec, data), ec) });
        Assert.Equal(ec, Read(r, 0, 0, 1).Contexts[0]!.Value.EncryptionContext);
    }

    [Theory]
    [InlineData(0u, 7ul, 2, RegionError.OffsetInvalid)]
    [InlineData(0u, 9ul, 1, RegionError.OffsetInvalid)]
    [InlineData(0u, ulong.MaxValue, 1, RegionError.OffsetInvalid)]
    [InlineData(2u, 0ul, 1, RegionError.InvalidExtent)]
    public void OutOfRangeIoIsRejected(uint eid, ulong offset, int blocks, RegionError expected)
    {
        using Region r = Create();
        byte[] data = Blocks(Enumerable.Repeat((byte)1, blocks).ToArray());
        Assert.Equal(expected, Assert.Throws<RegionException>(() => Write(r, eid, offset, data)).Error);
        Assert.Equal(expected, Assert.Throws<RegionException>(() => r.Read(eid, offset, new byte[data.Length], new BlockContext?[blocks])).Error);
    }

    [Fact]
    public void UnalignedOrMiscountedIoIsRejected()
    {
        using Region r = Create();
        Assert.Equal(RegionError.DataLenUnaligned, Assert.Throws<RegionException>(() =>
            r.Write(0, 0, new byte[100], Array.Empty<BlockContext>())).Error);
        Assert.Equal(RegionError.InvalidNumberOfBlocks, Assert.Throws<RegionException>(() =>
            r.Write(0, 0, Blocks(1, 1), Contexts(Blocks(1)))).Error);
        Assert.Equal(RegionError.DataLenUnaligned, Assert.Throws<RegionException>(() =>
            r.Read(0, 0, new byte[100], new BlockContext?[1])).Error);
    }

    [Fact]
    public void FlushStampsOnlyDirtyExtentsAndSurvivesReopen()
    {
        using (Region r = Create())
        {
            Write(r, 1, 0, Blocks(1));
            Assert.Equal([false, true], r.MetaInfo().Select(m => m.Dirty));
            r.Flush(flushNumber: 5, genNumber: 2);
            Assert.Equal([new ExtentMeta(2, 0, 0, false), new ExtentMeta(2, 2, 5, false)], r.MetaInfo());
            Write(r, 1, 1, Blocks(2));
            Write(r, 1, 0, Blocks(3)); // block 0 again: its active slot flips back to A
        }
        using (Region r = Region.Open(_dir, readOnly: false))
        {
            // Closed dirty: recovered from the data.
            Assert.Equal(new ExtentMeta(2, 2, 5, true), r.MetaInfo()[1]);
            Assert.Equal(Blocks(3, 2), Read(r, 1, 0, 2).Data);
            r.Flush(6, 2);
        }
        using (Region r = Region.Open(_dir, readOnly: true))
        {
            // Clean: slots from the bitmap.
            Assert.Equal(new ExtentMeta(2, 2, 6, false), r.MetaInfo()[1]);
            var (data, ctx) = Read(r, 1, 0, 2);
            Assert.Equal(Blocks(3, 2), data);
            Assert.Equal(Contexts(Blocks(3, 2)), ctx.Select(c => c!.Value));
            Assert.Equal(ContextSlot.A, r.GetExtent(1).ActiveSlot(0));
            Assert.Equal(ContextSlot.B, r.GetExtent(1).ActiveSlot(1));
            Assert.Equal(RegionError.ModifyingReadOnlyRegion,
                Assert.Throws<RegionException>(() => Write(r, 0, 0, Blocks(1))).Error);
        }
    }

    [Fact]
    public void FlushWithAnExtentLimitLeavesLaterExtentsDirty()
    {
        using Region r = Create(extents: 3);
        Write(r, 0, 0, Blocks(1));
        Write(r, 2, 0, Blocks(1));
        r.Flush(1, 1, extentLimit: 1);
        Assert.Equal([false, false, true], r.MetaInfo().Select(m => m.Dirty));
        r.Flush(2, 1);
        Assert.Equal([1UL, 0UL, 2UL], r.MetaInfo().Select(m => m.FlushNumber));
        Assert.Equal(RegionError.InvalidExtent, Assert.Throws<RegionException>(() => r.Flush(3, 1, extentLimit: 4)).Error);
    }

    [Fact]
    public void RecoveryKeepsTheOldBlockWhenTheNewDataNeverLanded()
    {
        using (Region r = Create())
        {
            Write(r, 0, 0, Blocks(1, 1));
            r.Flush(1, 1);
            Write(r, 0, 0, Blocks(2, 2));
        }
        // A crash after the contexts were written but before the data: put the old data back.
        using (var f = File.OpenWrite(ExtentFile(0)))
        {
            f.Write(Blocks(1, 1));
        }
        using (Region r = Region.Open(_dir, readOnly: false))
        {
            var (data, ctx) = Read(r, 0, 0, 2);
            Assert.Equal(Blocks(1, 1), data);
            Assert.Equal(Contexts(Blocks(1, 1)), ctx.Select(c => c!.Value));
            Assert.Null(r.GetExtent(0).Validate());
        }
    }

    [Fact]
    public void RecoveryOfANeverWrittenBlockWhoseDataNeverLandedFindsTheEmptySlot()
    {
        using (Region r = Create())
        {
            Write(r, 0, 3, Blocks(4));
        }
        using (var f = File.OpenWrite(ExtentFile(0)))
        {
            f.Position = 3 * Bs;
            f.Write(new byte[Bs]);
        }
        using Region reopened = Region.Open(_dir, readOnly: false);
        var (data, ctx) = Read(reopened, 0, 3, 1);
        Assert.Equal(new byte[Bs], data);
        Assert.Null(ctx[0]);
    }

    [Fact]
    public void ADirtyExtentWhoseDataMatchesNoSlotFailsToOpen()
    {
        using (Region r = Create())
        {
            Write(r, 0, 0, Blocks(1));
            r.Flush(1, 1);
            Write(r, 0, 0, Blocks(2));
        }
        using (var f = File.OpenWrite(ExtentFile(0)))
        {
            f.Write(Blocks(3));
        }
        var e = Assert.Throws<RegionException>(() => Region.Open(_dir, readOnly: false));
        Assert.Equal(RegionError.MissingContextSlot, e.Error);
        Assert.Contains("block 0 in extent 0", e.Message);
    }

    [Fact]
    public void AWrongSizedExtentFileFailsToOpen()
    {
        using (Create())
        {
        }
        using (var f = File.OpenWrite(ExtentFile(1)))
        {
            f.SetLength(f.Length - 1);
        }
        var e = Assert.Throws<RegionException>(() => Region.Open(_dir, readOnly: true));
        Assert.Equal(RegionError.IoError, e.Error);
        Assert.Contains("does not match expected", e.Message);
    }

    [Fact]
    public void AnUnknownExtentVersionFailsToOpen()
    {
        using (Create())
        {
        }
        using (var f = File.OpenWrite(ExtentFile(0)))
        {
            f.Seek(-32 + OnDiskMeta.ExtVersionOffset, SeekOrigin.End);
            f.WriteByte(3);
        }
        var e = Assert.Throws<RegionException>(() => Region.Open(_dir, readOnly: true));
        Assert.Contains("unknown tag 3", e.Message);
    }

    [Fact]
    public void RewritingABlockBeforeAFlushCountsABonusSync()
    {
        using (Region r = Create())
        {
            Write(r, 0, 0, Blocks(1));
            Write(r, 0, 1, Blocks(1));
            Assert.Equal(0UL, r.GetExtent(0).BonusSyncCount);
            Write(r, 0, 0, Blocks(2));
            Assert.Equal(1UL, r.GetExtent(0).BonusSyncCount);
            r.Flush(1, 1);
        }
        byte[] file = File.ReadAllBytes(ExtentFile(0));
        OnDiskMeta meta = OnDiskMeta.Decode(file.AsSpan(file.Length - OnDiskMeta.Size));
        Assert.Equal(1u, meta.BonusSyncCount);
    }

    [Fact]
    public void FragmentedSlotsAreDefragmentedAfterAFlush()
    {
        using (Region r = Create(blocksPerExtent: 32, extents: 1))
        {
            // Every other block moves to slot B.
            for (ulong b = 0; b < 32; b += 2)
            {
                Write(r, 0, b, Blocks((byte)(b + 1)));
            }
            r.Flush(1, 1);
            // Whole-extent reads now need 32 context reads each: > 3 extra syscalls per I/O.
            Read(r, 0, 0, 32);
            Write(r, 0, 1, Blocks(0xEE));
            r.Flush(2, 1);
            Extent e = r.GetExtent(0);
            Assert.Equal(1UL, e.DefragCount);
            ContextSlot first = e.ActiveSlot(0);
            Assert.All(Enumerable.Range(0, 32), b => Assert.Equal(first, e.ActiveSlot((ulong)b)));
            Assert.Null(e.Validate());
            // The count reaches the metadata with the next flush (defragmenting happens after one).
            Write(r, 0, 2, Blocks(0xDD));
            r.Flush(3, 1);
        }
        using (Region r = Region.Open(_dir, readOnly: true))
        {
            var (data, ctx) = Read(r, 0, 0, 32);
            for (int b = 0; b < 32; b++)
            {
                byte expected = b switch
                {
                    1 => 0xEE,
                    2 => 0xDD,
                    _ => b % 2 == 0 ? (byte)(b + 1) : (byte)0,
                };
                Assert.Equal(Blocks(expected), data[(b * Bs)..((b + 1) * Bs)]);
                Assert.Equal(expected == 0 ? null : BlockContext.ForPlainBlock(Blocks(expected)), ctx[b]);
            }
            Assert.Null(r.GetExtent(0).Validate());
            Assert.Equal(1UL, r.GetExtent(0).DefragCount);
        }
    }

    [Fact]
    public void CloseAndReopenAnExtent()
    {
        using Region r = Create();
        Write(r, 0, 0, Blocks(4));
        Assert.Equal((0UL, 0UL, true), r.CloseExtent(0));
        Assert.Equal(RegionError.InvalidExtent, Assert.Throws<RegionException>(() => Read(r, 0, 0, 1)).Error);
        r.ReopenExtent(0);
        Assert.Equal(Blocks(4), Read(r, 0, 0, 1).Data);
        r.Flush(1, 1);
        Assert.False(r.GetExtent(0).Dirty);
    }

    [Fact]
    public void CreateRefusesAnExistingRegionAndExtendGrowsIt()
    {
        using (Region r = Create(extents: 1))
        {
            r.Extend(3);
            Assert.Equal(3u, r.ExtentCount);
            Assert.True(File.Exists(ExtentFile(2)));
        }
        Assert.Equal(RegionError.IoError, Assert.Throws<RegionException>(() => Create()).Error);
        using Region reopened = Region.Open(_dir, readOnly: false);
        Assert.Equal(3u, reopened.ExtentCount);
        Assert.Equal(RegionError.InvalidExtent, Assert.Throws<RegionException>(() => reopened.Extend(2)).Error);
    }

    [Fact]
    public void OpenChecksTheDatabaseVersions()
    {
        using (Create())
        {
        }
        string config = RegionPaths.ConfigPath(_dir);
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"database_read_version\": 1", "\"database_read_version\": 2"));
        var e = Assert.Throws<RegionException>(() => Region.Open(_dir, readOnly: true));
        Assert.Equal(RegionError.RegionIncompatible, e.Error);
        Assert.Contains("Database read version mismatch, expected 1, got 2", e.Message);
    }

    [Fact]
    public void ImportWritesTheFileFromBlockZeroAndExtendsTheRegion()
    {
        string image = _tmp.Sub("image");
        byte[] content = new byte[Bs * 8 * 2 + 700]; // 16 blocks and 700 bytes: 18 blocks, 3 extents
        new Random(5).NextBytes(content);
        File.WriteAllBytes(image, content);
        using Region r = Create(blocksPerExtent: 8, extents: 1);
        Assert.Equal(18UL, r.Import(image));
        Assert.Equal(3u, r.ExtentCount);
        r.Flush(1, 0);
        var all = new List<byte>();
        var contexts = new List<BlockContext?>();
        for (uint eid = 0; eid < 3; eid++)
        {
            var (data, ctx) = Read(r, eid, 0, 8);
            all.AddRange(data);
            contexts.AddRange(ctx);
        }
        Assert.Equal(content, all.Take(content.Length));
        Assert.All(all.Skip(content.Length), b => Assert.Equal(0, b));
        Assert.All(contexts.Take(18), c => Assert.NotNull(c));
        Assert.All(contexts.Skip(18), c => Assert.Null(c));
        Assert.All(r.MetaInfo(), m => Assert.Equal(1UL, m.FlushNumber));
    }
}

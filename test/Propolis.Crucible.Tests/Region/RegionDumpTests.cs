using System.Text;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Regions.Block;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Regions;

public class RegionDumpTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static byte[] Block(byte fill) => Enumerable.Repeat(fill, 512).ToArray();

    /// <summary>Two regions of 2 extents × 4 blocks; both get block 1 = 0x11 and a flush (3, 2).</summary>
    private (Region A, Region B) TwoRegions()
    {
        var regions = new Region[2];
        for (int i = 0; i < 2; i++)
        {
            regions[i] = Region.Create(_tmp.Sub("r" + i), RegionDefinition.ForNewRegion(512, 4, 2, Guid.NewGuid(), false));
            regions[i].Write(0, 1, Block(0x11), new[] { BlockContext.ForPlainBlock(Block(0x11)) });
            regions[i].Flush(3, 2);
        }
        return (regions[0], regions[1]);
    }

    [Fact]
    public void IdenticalRegionsShowNoDifference()
    {
        var (a, b) = TwoRegions();
        using (a)
        using (b)
        {
            var o = new StringBuilder();
            Assert.False(RegionDump.DumpRegions([a, b], false, o));
            Assert.Equal(
                "EXT  BLOCKS GEN0 GEN1  FL0 FL1  D0 D1\n" +
                "  0 000-003    2    2    3   3   F  F\n" +
                "  1 004-007    0    0    0   0   F  F\n" +
                "Max gen: 2,  Max flush: 3\n", o.ToString());

            o.Clear();
            Assert.False(RegionDump.DumpRegions([a, b], true, o));
            Assert.Equal("EXT  BLOCKS GEN0 GEN1  FL0 FL1  D0 D1\nMax gen: 2,  Max flush: 3\n", o.ToString());
        }
    }

    [Fact]
    public void AnUnflushedWriteShowsAsADirtyDifferentExtent()
    {
        var (a, b) = TwoRegions();
        using (a)
        using (b)
        {
            b.Write(1, 2, Block(0x22), new[] { BlockContext.ForPlainBlock(Block(0x22)) });
            var o = new StringBuilder();
            Assert.True(RegionDump.DumpRegions([a, b], true, o));
            Assert.Equal(
                "EXT  BLOCKS GEN0 GEN1  FL0 FL1  D0 D1\n" +
                "  1 004-007    0    0    0   0   F  T <---\n" +
                "Max gen: 2,  Max flush: 3\n", o.ToString());
        }
    }

    [Fact]
    public void ExtentViewLettersDataAndContexts()
    {
        var (a, b) = TwoRegions();
        using (a)
        using (b)
        {
            b.Write(0, 2, Block(0x22), new[] { BlockContext.ForPlainBlock(Block(0x22)) });
            b.Flush(3, 2);
            var o = new StringBuilder();
            Assert.True(RegionDump.DumpExtent([a, b], 0, false, o));
            Assert.Equal(
                "Extent 0\n" +
                "GEN              2        2\n" +
                "FLUSH_ID         3        3\n" +
                "DIRTY            -        -\n" +
                "\n" +
                "BLOCK  D0  D1   C0  C1   S0  S1\n" +
                "00000   -   -    -   -    A   A\n" +
                "00001   A   A    A   A    B   B\n" +
                "00002   -   A    -   A    A   B <---\n" +
                "00003   -   -    -   -    A   A\n", o.ToString());
        }
    }

    [Fact]
    public void BlockViewFlagsDataThatDoesNotMatchItsContext()
    {
        var (a, b) = TwoRegions();
        a.Dispose();
        b.Dispose();
        // Corrupt block 1 of the second region behind the region's back.
        using (var f = File.OpenWrite(RegionPaths.ExtentPath(_tmp.Sub("r1"), 0)))
        {
            f.Position = 512 + 100;
            f.WriteByte(0);
        }
        using Region ra = Region.Open(_tmp.Sub("r0"), readOnly: true);
        using Region rb = Region.Open(_tmp.Sub("r1"), readOnly: true);
        var o = new StringBuilder();
        Assert.True(RegionDump.DumpBlock([ra, rb], 1, true, o));
        string[] lines = o.ToString().Split('\n');
        Assert.Equal("Extent 0 Block in extent 1  Actual block 1", lines[0]);
        Assert.EndsWith("A", lines[3]);
        Assert.EndsWith("B", lines[4]);
        // Same context in both (letters A, A); the second's data no longer matches it.
        Assert.Contains("plain", lines[7]);
        Assert.EndsWith("A    ok", lines[7]);
        Assert.EndsWith("A    MISMATCH", lines[8]);
    }

    [Fact]
    public void RegionsOfDifferentShapesCannotBeCompared()
    {
        using Region a = Region.Create(_tmp.Sub("x"), RegionDefinition.ForNewRegion(512, 4, 2, Guid.NewGuid(), false));
        using Region b = Region.Create(_tmp.Sub("y"), RegionDefinition.ForNewRegion(512, 8, 2, Guid.NewGuid(), false));
        Assert.Equal(RegionError.RegionIncompatible, Assert.Throws<RegionException>(() => RegionDump.CheckComparable([a, b])).Error);
        Assert.Equal(RegionError.InvalidExtent, Assert.Throws<RegionException>(() => RegionDump.DumpExtent([a], 2, false, new StringBuilder())).Error);
        Assert.Equal(RegionError.OffsetInvalid, Assert.Throws<RegionException>(() => RegionDump.DumpBlock([a], 8, false, new StringBuilder())).Error);
    }
}

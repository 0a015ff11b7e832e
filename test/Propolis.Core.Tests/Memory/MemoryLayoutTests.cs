using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Memory;

public class MemoryLayoutTests
{
    [Fact]
    public void RamBelowThreeGiBIsOneRegionAtZero()
    {
        var layout = MemoryLayout.ForRamSize(1UL << 30);
        var r = Assert.Single(layout.RamRegions.ToArray());
        Assert.Equal(new RamRegion(0, 1UL << 30, 0), r);
        Assert.Equal(1UL << 32, layout.Pci64MmioBase);
    }

    [Fact]
    public void RamAboveThreeGiBContinuesAtFourGiB()
    {
        var layout = MemoryLayout.ForRamSize(6UL << 30);
        Assert.Equal(
            [new RamRegion(0, 0xC000_0000, 0), new RamRegion(0x1_0000_0000, 0xC000_0000, 0xC000_0000)],
            layout.RamRegions.ToArray());
        Assert.Equal(0x1_0000_0000UL + 0xC000_0000, layout.RamRegions[1].End);
        // 64-bit BARs start at the first GiB boundary at or above the end of RAM (7 GiB).
        Assert.Equal(0x1_C000_0000UL, layout.Pci64MmioBase);
        Assert.Equal(0x2_0000_0000UL, MemoryLayout.ForRamSize((6UL << 30) + (2 << 20)).Pci64MmioBase);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL << 20)]
    [InlineData((2UL << 20) + 4096)]
    public void RejectsSizesThatAreNotWholeTwoMiBPages(ulong size) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => MemoryLayout.ForRamSize(size));

    [Fact]
    public void HoleBelowFourGiBFollowsPropolis()
    {
        Assert.Equal(0xC000_0000UL, MemoryLayout.Pci32MmioBase);
        Assert.Equal(0xE000_0000UL, MemoryLayout.Pci32MmioBase + MemoryLayout.Pci32MmioSize);
        Assert.Equal(0xE000_0000UL, MemoryLayout.PcieEcamBase);
        Assert.Equal(256UL << 20, MemoryLayout.PcieEcamSize);
        Assert.False(MemoryLayout.ForRamSize(6UL << 30).IsRam(MemoryLayout.PcieEcamBase, 4));
    }

    [Fact]
    public void E820ForFourGiBIsPinnedByteForByte()
    {
        var map = MemoryLayout.ForRamSize(4UL << 30).BuildE820();
        Assert.Equal(
            [
                new E820Entry(0, 0x9_FC00, E820Type.Ram),
                new E820Entry(0x9_FC00, 0x400, E820Type.Reserved),
                new E820Entry(0xF_0000, 0x1_0000, E820Type.Reserved),
                new E820Entry(0x10_0000, 0xC000_0000 - 0x10_0000, E820Type.Ram),
                new E820Entry(0xE000_0000, 0x1000_0000, E820Type.Reserved),
                new E820Entry(0xFEFF_C000, 0x100_4000, E820Type.Reserved),
                new E820Entry(0x1_0000_0000, 0x4000_0000, E820Type.Ram),
            ],
            map);

        var bytes = new byte[E820Entry.EncodedSize];
        map[3].Encode(bytes);
        Assert.Equal("0000100000000000" + "0000F0BF00000000" + "01000000", Convert.ToHexString(bytes));
    }

    [Fact]
    public void E820RamAddsUpToRamSize()
    {
        foreach (var size in new[] { 2UL << 20, 512UL << 20, 3UL << 30, 5UL << 30 })
        {
            var layout = MemoryLayout.ForRamSize(size);
            var map = layout.BuildE820();
            var ram = map.Where(e => e.Type == E820Type.Ram).Aggregate(0UL, (sum, e) => sum + e.Size);
            var reservedLow = size > MemoryLayout.HighMemoryBase ? MemoryLayout.HighMemoryBase - MemoryLayout.EbdaBase : 0;
            Assert.Equal(size - reservedLow, ram);
            for (var i = 1; i < map.Count; i++)
            {
                Assert.True(map[i - 1].End <= map[i].Address, $"entries {i - 1} and {i} overlap or are unsorted");
            }
        }
    }
}

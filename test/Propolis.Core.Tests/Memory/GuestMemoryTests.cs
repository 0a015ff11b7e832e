using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Memory;

public sealed class GuestMemoryTests : IDisposable
{
    // 64 KiB at 0, a 64 KiB hole, 64 KiB at 128 KiB: the shape of low/high RAM around the PCI hole.
    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x1_0000), (0x2_0000, 0x1_0000)]));

    public void Dispose() => _mem.Dispose();

    [Fact]
    public void SpansWithinARegionAreGranted()
    {
        Assert.True(_mem.TryGetSpan(0, 0x1_0000, out var all));
        Assert.Equal(0x1_0000, all.Length);
        Assert.True(_mem.TryGetSpan(0xFFFC, 4, out _));
        Assert.True(_mem.TryGetSpan(0x2_FFFF, 1, out _));
        Assert.True(_mem.TryGetSpan(0x1_0000, 0, out _)); // empty span at the end of a region
    }

    [Theory]
    [InlineData(0xFFFDUL, 4)]             // runs past the end of low RAM
    [InlineData(0x1_0000UL, 1)]           // in the hole
    [InlineData(0x1_FFFFUL, 2)]           // straddles hole and high RAM
    [InlineData(0xFFFCUL, 0x1_0008)]      // straddles low RAM, hole and high RAM
    [InlineData(0x3_0000UL, 1)]           // past the end of RAM
    [InlineData(ulong.MaxValue, 1)]       // gpa + length overflows
    [InlineData(ulong.MaxValue - 3, 8)]
    [InlineData(0x10UL, int.MaxValue)]
    [InlineData(0UL, -1)]
    public void RangesOutsideRamAreRefusedWithoutThrowing(ulong gpa, int length)
    {
        Assert.False(_mem.TryGetSpan(gpa, length, out var span));
        Assert.True(span.IsEmpty);
        Assert.False(_mem.TryTranslate(gpa, length < 0 ? ulong.MaxValue : (ulong)length, out _));
    }

    [Fact]
    public void TheHostMappingStartsOnAHugePageBoundary()
    {
        // 2 MiB guest frames on host huge pages: the hypervisor can map them 2 MiB at a time.
        using var big = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 6UL << 20)]));
        Assert.Equal(0UL, (ulong)big.HostBase % GuestMemory.HugePageBytes);
        Assert.True(big.TryGetSpan(0, 6 << 20, out var all));
        all[^1] = 0x5A; // the whole range is writable
    }

    [Fact]
    public void ScalarsAreLittleEndian()
    {
        Assert.True(_mem.TryWriteUInt64(0x2_0010, 0x0807_0605_0403_0201));
        Assert.True(_mem.TryGetSpan(0x2_0010, 8, out var raw));
        Assert.Equal("0102030405060708", Convert.ToHexString(raw));
        Assert.True(_mem.TryReadUInt32(0x2_0012, out var u32));
        Assert.Equal(0x0605_0403u, u32);
        Assert.True(_mem.TryReadUInt16(0x2_0016, out var u16));
        Assert.Equal((ushort)0x0807, u16);
        Assert.True(_mem.TryWriteUInt16(0x10, 0xBEEF) && _mem.TryReadByte(0x10, out var lo) && lo == 0xEF);
        Assert.True(_mem.TryWriteUInt32(0x20, 0xCAFEF00D) && _mem.TryReadUInt64(0x20, out var widened) && widened == 0xCAFEF00D);
    }

    [Fact]
    public void ScalarAccessAtTheEdgeFailsCleanly()
    {
        Assert.False(_mem.TryReadUInt64(0xFFF9, out var v));
        Assert.Equal(0UL, v);
        Assert.False(_mem.TryWriteUInt32(0x2_FFFD, 1));
        Assert.True(_mem.TryWriteUInt32(0x2_FFFC, 1));
    }

    [Fact]
    public void RegionsAreBackedByDistinctHostMemory()
    {
        Assert.True(_mem.TryFill(0, 0x1_0000, 0x11));
        Assert.True(_mem.TryFill(0x2_0000, 0x1_0000, 0x22));
        Assert.True(_mem.TryReadByte(0xFFFF, out var low) && low == 0x11);
        Assert.True(_mem.TryReadByte(0x2_0000, out var high) && high == 0x22);
    }

    [Fact]
    public void LoaderWritesOutsideRamThrowWithTheRange()
    {
        var e = Assert.Throws<GuestMemoryException>(() => _mem.Write(0x1_8000, new byte[4]));
        Assert.Contains("0x18000+0x4", e.Message);
    }

    [Fact]
    public void DisposedMemoryGrantsNothing()
    {
        var mem = GuestMemory.Allocate(MemoryLayout.ForRamSize(2 << 20));
        mem.Dispose();
        Assert.False(mem.TryGetSpan(0, 1, out _));
    }

    [Fact]
    public void ClearZeroesEveryRegionAndTheMemoryStaysUsable()
    {
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000), (0x20_0000, 0x10_0000)]));
        Assert.True(mem.TryWriteUInt64(0x1000, 0x1122_3344_5566_7788));
        Assert.True(mem.TryWriteUInt64(0x2F_FFF8, ulong.MaxValue));
        mem.Clear();
        Assert.True(mem.TryReadUInt64(0x1000, out var a));
        Assert.True(mem.TryReadUInt64(0x2F_FFF8, out var b));
        Assert.Equal(0UL, a);
        Assert.Equal(0UL, b);
        Assert.True(mem.TryWriteUInt32(0x1000, 7));
        Assert.True(mem.TryReadUInt32(0x1000, out var c));
        Assert.Equal(7u, c);
    }
}

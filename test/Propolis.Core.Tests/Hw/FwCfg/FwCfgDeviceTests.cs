using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Buses;
using Propolis.Core.Hw.FwCfg;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Hw.FwCfg;

public sealed class FwCfgDeviceTests : IDisposable
{
    // 64 KiB of RAM at 0 and 64 KiB at 128 KiB, a hole between: a DMA buffer in the hole is refused.
    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x1_0000), (0x2_0000, 0x1_0000)]));
    private readonly FwCfgDevice _dev;

    public FwCfgDeviceTests()
    {
        _dev = new FwCfgBuilder()
            .AddUInt16Item(FwCfgSelector.NbCpus, 2)
            .AddFile("etc/zeta", "zzz"u8)
            .AddFile("bootorder", "/pci@i0cf8/scsi@4,0/disk@0,0\0"u8)
            .AddFile("etc/alpha", [1, 2, 3, 4, 5, 6, 7, 8])
            .Build(_mem);
    }

    public void Dispose() => _mem.Dispose();

    private void Select(ushort selector)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, selector);
        _dev.PortWrite(0, b);
    }

    private byte[] ReadData(int count)
    {
        var result = new byte[count];
        for (int i = 0; i < count; i++)
        {
            _dev.PortRead(1, result.AsSpan(i, 1));
        }
        return result;
    }

    /// <summary>What OVMF's QemuFwCfgLib does: IoWrite32 (0x514, SwapBytes32 (high)), then low at 0x518.</summary>
    private void StartDma(ulong descriptor)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)(descriptor >> 32));
        _dev.PortWrite(4, b);
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)descriptor);
        _dev.PortWrite(8, b);
    }

    private void WriteDescriptor(ulong at, uint control, uint length, ulong address)
    {
        Span<byte> d = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(d, control);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], length);
        BinaryPrimitives.WriteUInt64BigEndian(d[8..], address);
        Assert.True(_mem.TryWrite(at, d));
    }

    private uint ControlAfter(ulong at)
    {
        Assert.True(_mem.TryGetSpan(at, 4, out var s));
        return BinaryPrimitives.ReadUInt32BigEndian(s);
    }

    [Fact]
    public void SignatureAndIdThroughThePorts()
    {
        Select(FwCfgSelector.Signature);
        Assert.Equal("QEMU", Encoding.ASCII.GetString(ReadData(4)));
        Select(FwCfgSelector.Id);
        Assert.Equal("03000000", Convert.ToHexString(ReadData(4))); // traditional | DMA
        Select(FwCfgSelector.NbCpus);
        Assert.Equal("020000", Convert.ToHexString(ReadData(3))); // past the end reads 0
    }

    [Fact]
    public void UnknownSelectorReadsZeros()
    {
        Select(0x0FFE);
        Assert.Equal("00000000", Convert.ToHexString(ReadData(4)));
    }

    [Fact]
    public void FileDirectoryIsSortedByNameWithBigEndianFields()
    {
        Select(FwCfgSelector.FileDir);
        var dir = ReadData(4 + 3 * 64);
        Assert.Equal("00000003", Convert.ToHexString(dir, 0, 4));
        // bootorder < etc/alpha < etc/zeta (ordinal); selectors 0x20, 0x21, 0x22.
        Assert.Equal("0000001D" + "0020" + "0000" + Convert.ToHexString("bootorder"u8) + new string('0', 2 * (56 - 9)),
            Convert.ToHexString(dir, 4, 64));
        Assert.Equal("00000008" + "0021" + "0000" + Convert.ToHexString("etc/alpha"u8) + new string('0', 2 * (56 - 9)),
            Convert.ToHexString(dir, 68, 64));
        Assert.Equal("00000003" + "0022" + "0000" + Convert.ToHexString("etc/zeta"u8) + new string('0', 2 * (56 - 8)),
            Convert.ToHexString(dir, 132, 64));
        Select(0x0022);
        Assert.Equal("zzz", Encoding.ASCII.GetString(ReadData(3)));
    }

    [Fact]
    public void WriteChannelBitIsNotPartOfTheKey()
    {
        Select(FwCfgSelector.Signature | FwCfgSelector.WriteChannel);
        Assert.Equal("QEMU", Encoding.ASCII.GetString(ReadData(4)));
    }

    [Fact]
    public void DmaAddressRegisterReadsQemuCfg()
    {
        var b = new byte[4];
        _dev.PortRead(4, b);
        Assert.Equal("QEMU", Encoding.ASCII.GetString(b));
        _dev.PortRead(8, b);
        Assert.Equal(" CFG", Encoding.ASCII.GetString(b));
    }

    [Fact]
    public void DmaSelectAndReadCopiesAndZeroFillsPastTheEnd()
    {
        Assert.True(_mem.TryFill(0x2000, 16, 0xAA));
        // SELECT etc/alpha (0x21) | READ, 12 bytes: 8 of data, then 4 zeros.
        WriteDescriptor(0x1000, (0x21u << 16) | (uint)(FwCfgDmaControl.Select | FwCfgDmaControl.Read), 12, 0x2000);
        StartDma(0x1000);
        Assert.Equal(0u, ControlAfter(0x1000));
        Assert.True(_mem.TryGetSpan(0x2000, 16, out var buf));
        Assert.Equal("0102030405060708" + "00000000" + "AAAAAAAA", Convert.ToHexString(buf));
    }

    [Fact]
    public void DmaSkipThenReadContinuesFromTheOffset()
    {
        WriteDescriptor(0x1000, (0x21u << 16) | (uint)(FwCfgDmaControl.Select | FwCfgDmaControl.Skip), 5, 0);
        StartDma(0x1000);
        Assert.Equal(0u, ControlAfter(0x1000));
        WriteDescriptor(0x1000, (uint)FwCfgDmaControl.Read, 2, 0x2_0000); // buffer in high RAM
        StartDma(0x1000);
        Assert.Equal(0u, ControlAfter(0x1000));
        Assert.True(_mem.TryGetSpan(0x2_0000, 2, out var buf));
        Assert.Equal("0607", Convert.ToHexString(buf));
        // The traditional data port continues from the same offset.
        Assert.Equal("08", Convert.ToHexString(ReadData(1)));
    }

    [Fact]
    public void DmaSelectAloneSelects()
    {
        WriteDescriptor(0x1000, ((uint)FwCfgSelector.Signature << 16) | (uint)FwCfgDmaControl.Select, 0, 0);
        StartDma(0x1000);
        Assert.Equal(0u, ControlAfter(0x1000));
        Assert.Equal("QEMU", Encoding.ASCII.GetString(ReadData(4)));
    }

    [Theory]
    [InlineData(0x1_0000UL, 4u)]         // buffer in the hole between the RAM regions
    [InlineData(0xFFFEUL, 4u)]           // buffer runs off the end of low RAM
    [InlineData(ulong.MaxValue - 1, 4u)] // address + length wraps
    [InlineData(0x100UL, 0xFFFF_FFFFu)]  // length larger than any region
    public void DmaReadOutsideRamSetsErrorAndLeavesMemoryAlone(ulong buffer, uint length)
    {
        Assert.True(_mem.TryFill(0xFFF0, 16, 0x5A));
        WriteDescriptor(0x1000, (0x21u << 16) | (uint)(FwCfgDmaControl.Select | FwCfgDmaControl.Read), length, buffer);
        StartDma(0x1000);
        Assert.Equal((uint)FwCfgDmaControl.Error, ControlAfter(0x1000));
        Assert.True(_mem.TryGetSpan(0xFFF0, 16, out var tail));
        Assert.All(tail.ToArray(), b => Assert.Equal(0x5A, b));
    }

    [Fact]
    public void DmaWriteIsRefusedWithError()
    {
        WriteDescriptor(0x1000, (0x21u << 16) | (uint)(FwCfgDmaControl.Select | FwCfgDmaControl.Write), 4, 0x2000);
        StartDma(0x1000);
        Assert.Equal((uint)FwCfgDmaControl.Error, ControlAfter(0x1000));
    }

    [Fact]
    public void DmaUnknownControlBitSetsError()
    {
        WriteDescriptor(0x1000, 0x20 | (uint)FwCfgDmaControl.Read, 4, 0x2000);
        StartDma(0x1000);
        Assert.Equal((uint)FwCfgDmaControl.Error, ControlAfter(0x1000));
    }

    [Fact]
    public void DmaDescriptorOutsideRamIsDroppedWithoutThrowing()
    {
        StartDma(0x1_8000);
        StartDma(0xFFFF_FFFF_FFFF_FFF8);
        // The device still works afterwards.
        Select(FwCfgSelector.Signature);
        Assert.Equal("QEMU", Encoding.ASCII.GetString(ReadData(4)));
    }

    [Fact]
    public void PortAndDmaAccessesAllocateNothing()
    {
        WriteDescriptor(0x1000, (0x21u << 16) | (uint)(FwCfgDmaControl.Select | FwCfgDmaControl.Read), 8, 0x2000);
        void Round()
        {
            Span<byte> one = stackalloc byte[1];
            Span<byte> sel = stackalloc byte[2];
            Span<byte> dma = stackalloc byte[4];
            for (int i = 0; i < 100; i++)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(sel, FwCfgSelector.FileDir);
                _dev.PortWrite(0, sel);
                for (int j = 0; j < 64; j++)
                {
                    _dev.PortRead(1, one);
                }
                Assert.True(_mem.TryWriteUInt32(0x1000, BinaryPrimitives.ReverseEndianness((0x21u << 16) | (uint)(FwCfgDmaControl.Select | FwCfgDmaControl.Read))));
                BinaryPrimitives.WriteUInt32BigEndian(dma, 0);
                _dev.PortWrite(4, dma);
                BinaryPrimitives.WriteUInt32BigEndian(dma, 0x1000);
                _dev.PortWrite(8, dma);
            }
        }
        Round(); // warm up (JIT, tiering)
        var best = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            Round();
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, best);
        Assert.Equal(0u, ControlAfter(0x1000));
    }

    [Fact]
    public void RegistersTwelvePortsAt0x510()
    {
        var calls = new List<(ushort Port, ushort Length, string Owner)>();
        _dev.Register((port, length, _, owner) => calls.Add((port, length, owner)));
        Assert.Equal(((ushort)0x510, (ushort)12, "fw_cfg"), Assert.Single(calls));
    }

    [Fact]
    public void ResetDeselects()
    {
        Select(FwCfgSelector.Signature);
        _dev.Reset();
        Assert.Equal("00000000", Convert.ToHexString(ReadData(4)));
    }

    [Fact]
    public void BuilderRefusesReservedSelectorsDuplicatesAndBadNames()
    {
        var b = new FwCfgBuilder();
        Assert.Throws<ArgumentException>(() => b.AddItem(FwCfgSelector.Signature, [1]));
        Assert.Throws<ArgumentException>(() => b.AddItem(FwCfgSelector.FileDir, [1]));
        Assert.Throws<ArgumentException>(() => b.AddItem(0x20, [1]));
        b.AddItem(FwCfgSelector.NoGraphic, [1, 0]);
        Assert.Throws<ArgumentException>(() => b.AddItem(FwCfgSelector.NoGraphic, [1, 0]));
        b.AddFile("etc/x", [1]);
        Assert.Throws<ArgumentException>(() => b.AddFile("etc/x", [2]));
        Assert.Throws<ArgumentException>(() => b.AddFile(new string('a', 56), [2]));
        Assert.Throws<ArgumentException>(() => b.AddFile("", [2]));
        b.AddFile(new string('a', 55), [2]);
    }
}

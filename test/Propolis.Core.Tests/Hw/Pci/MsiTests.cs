using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Pci;

public class MsiTests
{
    private const ulong Bar2 = 0xC100_0000;
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly FakeMsiSink _sink = new();
    private readonly TestFunction _f = new();

    public MsiTests()
    {
        var bus = new PciBus(_pio, _mmio, _sink);
        bus.Attach(_f, 3, 0);
        _f.ConfigWriteDword(0x18, (uint)Bar2);
        _f.ConfigWriteDword(0x1C, 0);
        _f.ConfigWrite(PciHeader.Command, [(byte)PciCommand.MemorySpace, 0]);
    }

    private int MsixCap => _f.Msix!.Offset;

    private void MsixControl(ushort value) => _f.ConfigWrite(MsixCap + 2, [(byte)value, (byte)(value >> 8)]);

    private void Write32(ulong address, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _mmio.Write(address, b);
    }

    private uint Read32(ulong address)
    {
        Span<byte> b = stackalloc byte[4];
        _mmio.Read(address, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private void ProgramEntry(int vector, ulong address, uint data, bool masked)
    {
        var e = Bar2 + (ulong)vector * 16;
        Write32(e, (uint)address);
        Write32(e + 4, (uint)(address >> 32));
        Write32(e + 8, data);
        Write32(e + 12, masked ? 1u : 0u);
    }

    [Fact]
    public void TableEntriesStartMaskedAndReadBackWhatWasWritten()
    {
        Assert.Equal(1u, Read32(Bar2 + 12));
        ProgramEntry(3, 0xFEE0_1000, 0x4041, masked: false);
        Assert.Equal(0xFEE0_1000u, Read32(Bar2 + 3 * 16));
        Assert.Equal(0u, Read32(Bar2 + 3 * 16 + 4));
        Assert.Equal(0x4041u, Read32(Bar2 + 3 * 16 + 8));
        Assert.Equal(0u, Read32(Bar2 + 3 * 16 + 12));
        Write32(Bar2 + 3 * 16 + 12, 0xFFFF_FFFF);
        Assert.Equal(1u, Read32(Bar2 + 3 * 16 + 12)); // reserved vector control bits read zero
        var (addr, data, masked) = _f.Msix!.GetEntry(3);
        Assert.Equal((0xFEE0_1000UL, 0x4041u, true), (addr, data, masked));
    }

    [Fact]
    public void NotifyDeliversThroughTheSinkWhenEnabledAndUnmasked()
    {
        ProgramEntry(2, 0xFEE0_0000, 0x31, masked: false);
        Assert.False(_f.Msix!.Notify(2)); // MSI-X disabled
        MsixControl(0x8000);
        Assert.True(_f.Msix.Notify(2));
        Assert.Equal([(0xFEE0_0000UL, 0x31u)], _sink.Messages);
    }

    [Fact]
    public void MaskedVectorSetsPendingBitAndDeliversOnUnmask()
    {
        ProgramEntry(5, 0xFEE0_0000, 0x55, masked: true);
        MsixControl(0x8000);
        Assert.True(_f.Msix!.Notify(5));
        Assert.Empty(_sink.Messages);
        Assert.True(_f.Msix.IsPending(5));
        Assert.Equal(1u << 5, Read32(Bar2 + 0x800));
        Write32(Bar2 + 0x800, 0); // the PBA is read-only
        Assert.Equal(1u << 5, Read32(Bar2 + 0x800));

        Write32(Bar2 + 5 * 16 + 12, 0);
        Assert.Equal([(0xFEE0_0000UL, 0x55u)], _sink.Messages);
        Assert.False(_f.Msix.IsPending(5));
        Assert.Equal(0u, Read32(Bar2 + 0x800));
    }

    [Fact]
    public void FunctionMaskHoldsEveryVectorUntilCleared()
    {
        ProgramEntry(0, 0xFEE0_0000, 0x20, masked: false);
        ProgramEntry(1, 0xFEE0_0000, 0x21, masked: false);
        MsixControl(0xC000);
        _f.Msix!.Notify(0);
        _f.Msix.Notify(1);
        Assert.Empty(_sink.Messages);
        Assert.True(_f.Msix.FunctionMasked);
        MsixControl(0x8000);
        Assert.Equal([(0xFEE0_0000UL, 0x20u), (0xFEE0_0000UL, 0x21u)], _sink.Messages);
    }

    [Fact]
    public void QwordTableAccessesWriteAndReadWholeEntries()
    {
        Span<byte> q = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(q, 0x0000_0001_FEE0_2000);
        _mmio.Write(Bar2 + 16, q);
        BinaryPrimitives.WriteUInt64LittleEndian(q, 0x0000_0000_0000_0077); // data, unmasked
        _mmio.Write(Bar2 + 24, q);
        Assert.Equal((0x1_FEE0_2000UL, 0x77u, false), _f.Msix!.GetEntry(1));
        _mmio.Read(Bar2 + 16, q);
        Assert.Equal(0x0000_0001_FEE0_2000UL, BinaryPrimitives.ReadUInt64LittleEndian(q));
    }

    [Fact]
    public void TableSizeIsReadOnly()
    {
        MsixControl(0xFFFF);
        Span<byte> b = stackalloc byte[2];
        _f.ConfigRead(MsixCap + 2, b);
        Assert.Equal(0xC007, BinaryPrimitives.ReadUInt16LittleEndian(b));
    }

    [Fact]
    public void NonTableAccessesInTheSameBarReachTheDevice()
    {
        Read32(Bar2 + 0x1000);
        Assert.Equal((2, 0x1000UL, 4), _f.Reads[^1]);
    }

    [Fact]
    public void MsiDeliversWithVectorInLowDataBitsAndHonoursMask()
    {
        var cap = _f.Msi!.Offset;
        _f.ConfigWriteDword(cap + MsiCapability.MessageAddress, 0xFEE0_0000);
        _f.ConfigWriteDword(cap + MsiCapability.MessageUpperAddress, 0);
        _f.ConfigWrite(cap + MsiCapability.MessageData, [0x40, 0x00]);
        Assert.False(_f.Msi.Notify(0));
        _f.ConfigWrite(cap + MsiCapability.MessageControl, [0x21, 0x00]); // enable, 4 vectors
        Assert.True(_f.Msi.Notify(3));
        Assert.Equal([(0xFEE0_0000UL, 0x43u)], _sink.Messages);

        _f.ConfigWriteDword(cap + MsiCapability.MaskBits, 0xFFFF_FFFF);
        Assert.Equal(0xFu, _f.ConfigReadDword(cap + MsiCapability.MaskBits)); // only 4 vectors
        _f.Msi.Notify(1);
        Assert.Single(_sink.Messages);
        Assert.Equal(0x2u, _f.ConfigReadDword(cap + MsiCapability.PendingBits));
        _f.ConfigWriteDword(cap + MsiCapability.MaskBits, 0);
        Assert.Equal((0xFEE0_0000UL, 0x41u), _sink.Messages[^1]);
        Assert.Equal(0u, _f.ConfigReadDword(cap + MsiCapability.PendingBits));
    }
}

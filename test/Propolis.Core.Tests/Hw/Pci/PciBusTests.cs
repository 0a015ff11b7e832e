using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Pci;

public class PciBusTests
{
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly PciBus _bus;
    private readonly TestFunction _f = new();

    public PciBusTests()
    {
        _bus = new PciBus(_pio, _mmio, new FakeMsiSink());
        _bus.AttachConfigAccess(_pio.Register);
        _bus.Attach(_f, 4, 2);
    }

    private static uint Address(int bus, int dev, int fn, int reg, bool enable = true) =>
        (enable ? 0x8000_0000u : 0) | (uint)(bus << 16 | dev << 11 | fn << 8 | reg);

    private void Out32(ushort port, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _pio.Write(port, b);
    }

    private uint In(ushort port, int size)
    {
        Span<byte> b = stackalloc byte[4];
        _pio.Read(port, b[..size]);
        return size switch { 1 => b[0], 2 => BinaryPrimitives.ReadUInt16LittleEndian(b), _ => BinaryPrimitives.ReadUInt32LittleEndian(b) };
    }

    [Fact]
    public void Mechanism1DwordWordAndByteReads()
    {
        Out32(0xCF8, Address(0, 4, 2, 0x00));
        Assert.Equal(0x5678_1234u, In(0xCFC, 4));
        Assert.Equal(0x1234u, In(0xCFC, 2));
        Assert.Equal(0x5678u, In(0xCFE, 2));
        Assert.Equal(0x34u, In(0xCFC, 1));
        Assert.Equal(0x12u, In(0xCFD, 1));
        Assert.Equal(0x78u, In(0xCFE, 1));
        Assert.Equal(0x56u, In(0xCFF, 1));
        Out32(0xCF8, Address(0, 4, 2, 0x08));
        Assert.Equal(0x01u, In(0xCFF, 1)); // base class
    }

    [Fact]
    public void Mechanism1ByteWriteAtAnOffsetWithinTheDataPort()
    {
        Out32(0xCF8, Address(0, 4, 2, 0x3C));
        _pio.Write(0xCFC, [0x0A]);
        Assert.Equal(0x0Au, _f.ConfigReadDword(0x3C) & 0xFF);
        Out32(0xCF8, Address(0, 4, 2, 0x04));
        _pio.Write(0xCFC, [0x02, 0x00]); // word write of the command register
        Assert.Equal(PciCommand.MemorySpace, _f.Command);
    }

    [Fact]
    public void DisabledEnableBitReadsAllOnesAndDropsWrites()
    {
        Out32(0xCF8, Address(0, 4, 2, 0x3C, enable: false));
        Assert.Equal(0xFFFF_FFFFu, In(0xCFC, 4));
        _pio.Write(0xCFC, [0x0A]);
        Assert.Equal(0u, _f.ConfigReadDword(0x3C) & 0xFF);
    }

    [Fact]
    public void AbsentFunctionsAndOtherBusesReadAllOnes()
    {
        Out32(0xCF8, Address(0, 5, 0, 0));
        Assert.Equal(0xFFFF_FFFFu, In(0xCFC, 4));
        Out32(0xCF8, Address(1, 4, 2, 0));
        Assert.Equal(0xFFFF_FFFFu, In(0xCFC, 4));
    }

    [Fact]
    public void ConfigAddressReadsBackWithReservedBitsClear()
    {
        Out32(0xCF8, 0xFFFF_FFFF);
        Assert.Equal(0x80FF_FFFCu, In(0xCF8, 4));
        // Byte and word accesses to 0xCF8 are not CONFIG_ADDRESS accesses.
        Assert.Equal(0xFFu, In(0xCF8, 1));
    }

    [Fact]
    public void Port0xCF9ByteAccessesGoToResetControl()
    {
        var control = new FakeMachineControl();
        _bus.ResetControl = new Propolis.Core.Hw.Chipset.ResetControl(control);
        Out32(0xCF8, Address(0, 4, 2, 0));
        _pio.Write(0xCF9, [0x06]);
        Assert.Single(control.Resets);
        Assert.Equal(Address(0, 4, 2, 0), In(0xCF8, 4)); // CONFIG_ADDRESS untouched
    }

    [Fact]
    public void EcamReachesTheFunctionIncludingExtendedSpace()
    {
        var fn = MemoryLayout.PcieEcamBase + (4UL << 15) + (2UL << 12);
        Span<byte> d = stackalloc byte[4];
        _mmio.Read(fn, d);
        Assert.Equal(0x5678_1234u, BinaryPrimitives.ReadUInt32LittleEndian(d));
        _mmio.Read(fn + 0x100, d);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(d));
        _mmio.Write(fn + 0x3C, [0x0B]);
        Assert.Equal(0x0Bu, _f.ConfigReadDword(0x3C) & 0xFF);
        Span<byte> w = stackalloc byte[2];
        _mmio.Read(fn + 2, w);
        Assert.Equal(0x5678, BinaryPrimitives.ReadUInt16LittleEndian(w));
    }

    [Fact]
    public void EcamAbsentFunctionAndOtherBusReadAllOnes()
    {
        Span<byte> d = stackalloc byte[4];
        _mmio.Read(MemoryLayout.PcieEcamBase + (6UL << 15), d);
        Assert.Equal(0xFFFF_FFFFu, BinaryPrimitives.ReadUInt32LittleEndian(d));
        _mmio.Read(MemoryLayout.PcieEcamBase + (1UL << 20) + (4UL << 15) + (2UL << 12), d);
        Assert.Equal(0xFFFF_FFFFu, BinaryPrimitives.ReadUInt32LittleEndian(d));
    }

    [Fact]
    public void ResetClearsConfigAddress()
    {
        Out32(0xCF8, Address(0, 4, 2, 0x3C));
        _bus.Reset();
        Assert.Equal(0u, In(0xCF8, 4));
        Assert.Equal(0xFFFF_FFFFu, In(0xCFC, 4)); // enable bit clear again
    }

    [Fact]
    public void AttachingTwiceAtOneAddressFails()
    {
        Assert.Throws<InvalidOperationException>(() => _bus.Attach(new TestFunction(), 4, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => _bus.Attach(new TestFunction(), 32, 0));
    }
}

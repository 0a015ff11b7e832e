using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Pci;

public class PciConfigSpaceTests
{
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly FakeMsiSink _msi = new();
    private readonly PciBus _bus;
    private readonly TestFunction _f = new();

    public PciConfigSpaceTests()
    {
        _bus = new PciBus(_pio, _mmio, _msi);
        _bus.Attach(_f, 3, 0);
    }

    private static ushort W(PciDevice f, int offset)
    {
        Span<byte> b = stackalloc byte[2];
        f.ConfigRead(offset, b);
        return (ushort)(b[0] | b[1] << 8);
    }

    private static void WriteW(PciDevice f, int offset, ushort value) => f.ConfigWrite(offset, [(byte)value, (byte)(value >> 8)]);

    [Fact]
    public void IdentityRegistersReadAsDeclaredAndIgnoreWrites()
    {
        Assert.Equal(0x5678_1234u, _f.ConfigReadDword(0));
        Assert.Equal(0x0108_0207u, _f.ConfigReadDword(8)); // class 01, subclass 08, prog-if 02, rev 07
        Assert.Equal(0xBBBB_AAAAu, _f.ConfigReadDword(0x2C));
        _f.ConfigWriteDword(0, 0xFFFF_FFFF);
        _f.ConfigWriteDword(8, 0);
        _f.ConfigWriteDword(0x2C, 0);
        Assert.Equal(0x5678_1234u, _f.ConfigReadDword(0));
        Assert.Equal(0x0108_0207u, _f.ConfigReadDword(8));
        Assert.Equal(0xBBBB_AAAAu, _f.ConfigReadDword(0x2C));
        Assert.Equal(0u, _f.ConfigReadDword(0x0C) >> 16 & 0xFF); // header type 0, single function
    }

    [Fact]
    public void CommandRegisterKeepsOnlyImplementedBits()
    {
        WriteW(_f, PciHeader.Command, 0xFFFF);
        Assert.Equal(0x0547, W(_f, PciHeader.Command));
        WriteW(_f, PciHeader.Command, 0);
        Assert.Equal(0, W(_f, PciHeader.Command));
    }

    [Fact]
    public void StatusErrorBitsAreWriteOneToClearAndCapabilityBitIsReadOnly()
    {
        // Set the error bits directly in the backing store, as the device would.
        _f.ConfigBytes[PciHeader.Status + 1] |= 0xF9;
        Assert.Equal(0xF910, W(_f, PciHeader.Status));
        WriteW(_f, PciHeader.Status, 0x0800 | 0x0010); // clear Signaled Target Abort only
        Assert.Equal(0xF110, W(_f, PciHeader.Status));
        WriteW(_f, PciHeader.Status, 0);                // writing zero changes nothing
        Assert.Equal(0xF110, W(_f, PciHeader.Status));
        WriteW(_f, PciHeader.Status, 0xFFFF);
        Assert.Equal(0x0010, W(_f, PciHeader.Status)); // capabilities list stays
    }

    [Fact]
    public void InterruptLineIsWritableAndPinIsAssignedByTheBus()
    {
        _f.ConfigWrite(PciHeader.InterruptLine, [0x0B]);
        _f.ConfigWrite(PciHeader.InterruptPin, [0x04]);
        Span<byte> b = stackalloc byte[2];
        _f.ConfigRead(PciHeader.InterruptLine, b);
        Assert.Equal(0x0B, b[0]);
        Assert.Equal(0x00, b[1]); // no router on this bus: no pin
    }

    [Fact]
    public void CapabilityListChainsMsiThenMsix()
    {
        var first = _f.ConfigReadDword(PciHeader.CapabilitiesPointer) & 0xFF;
        Assert.Equal(0x40u, first);
        var msi = _f.ConfigReadDword((int)first);
        Assert.Equal(PciCapabilityId.Msi, (byte)msi);
        var next = (msi >> 8) & 0xFF;
        // 4 vectors (MMC = 2), 64-bit, per-vector masking.
        Assert.Equal(0x0184u, msi >> 16);
        var msix = _f.ConfigReadDword((int)next);
        Assert.Equal(PciCapabilityId.Msix, (byte)msix);
        Assert.Equal(0u, (msix >> 8) & 0xFF);         // end of the list
        Assert.Equal(7u, msix >> 16);                 // table size N-1
        Assert.Equal(0x0000_0002u, _f.ConfigReadDword((int)next + 4)); // table at BAR 2 + 0
        Assert.Equal(0x0000_0802u, _f.ConfigReadDword((int)next + 8)); // PBA at BAR 2 + 0x800
    }

    [Fact]
    public void ExtendedSpaceReadsZeroAndOutOfRangeReadsAllOnes()
    {
        Assert.Equal(0u, _f.ConfigReadDword(0x100));
        Assert.Equal(0xFFFF_FFFFu, _f.ConfigReadDword(0x1000));
    }

    [Fact]
    public void ResetRestoresPowerOnValues()
    {
        WriteW(_f, PciHeader.Command, 0x0007);
        _f.ConfigWrite(PciHeader.InterruptLine, [0x0B]);
        _f.ConfigWriteDword(0x14, 0xC000_0000);
        _f.Reset();
        Assert.Equal(0, W(_f, PciHeader.Command));
        Assert.Equal(0u, _f.ConfigReadDword(0x14));
        Assert.Equal(0u, _f.ConfigReadDword(PciHeader.InterruptLine) & 0xFF);
        Assert.Equal(0x5678_1234u, _f.ConfigReadDword(0));
    }

    [Fact]
    public void IntxFollowsInterruptDisableAndSetsInterruptStatus()
    {
        var isa = new FakeIsa();
        var lpc = new Propolis.Core.Hw.Chipset.Piix3Lpc(isa.Irqs);
        var bus = new PciBus(new PortIoBus(), new MmioBus(), _msi) { IntxRouter = lpc };
        var f = new TestFunction();
        bus.Attach(f, 5, 0);
        lpc.SetRoute(Propolis.Core.Hw.Chipset.Piix3Lpc.LinkFor(5, f.InterruptPin), 11);
        f.Intx(true);
        Assert.True(isa.Lines[11].Level);
        Assert.Equal((ushort)PciStatus.InterruptStatus, (ushort)(W(f, PciHeader.Status) & 0x8));
        WriteW(f, PciHeader.Command, (ushort)PciCommand.InterruptDisable);
        Assert.False(isa.Lines[11].Level);
        Assert.Equal((ushort)PciStatus.InterruptStatus, (ushort)(W(f, PciHeader.Status) & 0x8)); // status still shows the request
        WriteW(f, PciHeader.Command, 0);
        Assert.True(isa.Lines[11].Level);
        f.Intx(false);
        Assert.False(isa.Lines[11].Level);
        Assert.Equal(0, W(f, PciHeader.Status) & 0x8);
    }
}

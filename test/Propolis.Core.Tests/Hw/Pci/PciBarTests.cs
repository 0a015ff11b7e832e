using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Pci;

public class PciBarTests
{
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly PciBus _bus;
    private readonly TestFunction _f = new();

    public PciBarTests()
    {
        _bus = new PciBus(_pio, _mmio, new FakeMsiSink());
        _bus.Attach(_f, 2, 0);
    }

    private void Command(PciCommand c) => _f.ConfigWrite(PciHeader.Command, [(byte)c, (byte)((ushort)c >> 8)]);

    [Fact]
    public void Memory32BarSizing()
    {
        Assert.Equal(0x0u, _f.ConfigReadDword(0x14));
        _f.ConfigWriteDword(0x14, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_F000u, _f.ConfigReadDword(0x14)); // 4 KiB, 32-bit, not prefetchable
        _f.ConfigWriteDword(0x14, 0xC000_1234);
        Assert.Equal(0xC000_1000u, _f.ConfigReadDword(0x14));
    }

    [Fact]
    public void Memory64BarSizingSpansTwoRegisters()
    {
        Assert.Equal(0xCu, _f.ConfigReadDword(0x18)); // 64-bit, prefetchable
        _f.ConfigWriteDword(0x18, 0xFFFF_FFFF);
        _f.ConfigWriteDword(0x1C, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_C00Cu, _f.ConfigReadDword(0x18));
        Assert.Equal(0xFFFF_FFFFu, _f.ConfigReadDword(0x1C));
        _f.ConfigWriteDword(0x18, 0x0000_8000);
        _f.ConfigWriteDword(0x1C, 0x0000_0002);
        Assert.Equal(0x2_0000_8000UL, _f.GetBar(2)!.Address);
        Assert.Null(_f.GetBar(3));
    }

    [Fact]
    public void IoBarSizing()
    {
        Assert.Equal(0x1u, _f.ConfigReadDword(0x10));
        _f.ConfigWriteDword(0x10, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_FFC1u, _f.ConfigReadDword(0x10)); // 64 ports
        _f.ConfigWriteDword(0x10, 0xC07F);
        Assert.Equal(0xC041u, _f.ConfigReadDword(0x10));
    }

    [Fact]
    public void UnimplementedBarsReadZeroWhateverIsWritten()
    {
        _f.ConfigWriteDword(0x20, 0xFFFF_FFFF);
        _f.ConfigWriteDword(0x24, 0xFFFF_FFFF);
        Assert.Equal(0u, _f.ConfigReadDword(0x20));
        Assert.Equal(0u, _f.ConfigReadDword(0x24));
    }

    [Fact]
    public void BarsAreMappedOnlyWhileDecodeIsEnabled()
    {
        _f.ConfigWriteDword(0x10, 0xC000);
        _f.ConfigWriteDword(0x14, 0xC010_0000);
        Assert.Empty(_pio.Ranges);
        Assert.Empty(_mmio.Ranges);

        Command(PciCommand.MemorySpace);
        Assert.Empty(_pio.Ranges);
        var r = Assert.Single(_mmio.Ranges);
        Assert.Equal(0xC010_0000UL, r.Start);
        Assert.Equal(0x1000UL, r.Length);

        Command(PciCommand.MemorySpace | PciCommand.IoSpace);
        var io = Assert.Single(_pio.Ranges);
        Assert.Equal(0xC000UL, io.Start);
        Assert.Equal(0x40UL, io.Length);

        Command(0);
        Assert.Empty(_pio.Ranges);
        Assert.Empty(_mmio.Ranges);
    }

    [Fact]
    public void ReprogrammingAnEnabledBarMovesIt()
    {
        _f.ConfigWriteDword(0x14, 0xC010_0000);
        Command(PciCommand.MemorySpace);
        _f.ConfigWriteDword(0x14, 0xC020_0000);
        var r = Assert.Single(_mmio.Ranges);
        Assert.Equal(0xC020_0000UL, r.Start);

        Span<byte> data = stackalloc byte[4];
        _mmio.Read(0xC020_0010, data);
        Assert.Equal((1, 0x10UL, 4), _f.Reads[^1]);
        _mmio.Read(0xC010_0010, data);
        Assert.Equal(0xFF, data[0]); // the old address no longer decodes
    }

    [Fact]
    public void AccessesReachTheDeviceWithTheBarOffset()
    {
        _f.ConfigWriteDword(0x10, 0xC000);
        Command(PciCommand.IoSpace);
        _pio.Write(0xC005, [0xAB]);
        Assert.Equal(0, _f.Writes[^1].Bar);
        Assert.Equal(5UL, _f.Writes[^1].Offset);
        Assert.Equal([0xAB], _f.Writes[^1].Data);
    }

    [Fact]
    public void A64BitBarIsMappedAboveFourGigabytes()
    {
        _f.ConfigWriteDword(0x18, 0x0000_0000);
        _f.ConfigWriteDword(0x1C, 0x0000_0001);
        Command(PciCommand.MemorySpace);
        var r = Assert.Single(_mmio.Ranges);
        Assert.Equal(0x1_0000_0000UL, r.Start);
        Assert.Equal(0x4000UL, r.Length);
    }

    [Fact]
    public void AnOverlappingBarIsNotDecodedAndDoesNotThrow()
    {
        var other = new TestFunction(msix: false);
        _bus.Attach(other, 3, 0);
        _f.ConfigWriteDword(0x14, 0xC000_0000);
        other.ConfigWriteDword(0x14, 0xC000_0000);
        Command(PciCommand.MemorySpace);
        other.ConfigWrite(PciHeader.Command, [(byte)PciCommand.MemorySpace, 0]);
        Assert.Single(_mmio.Ranges);
        Assert.Null(other.GetBar(1)!.MappedAt);
    }

    [Fact]
    public void FunctionResetUnmapsEveryBar()
    {
        _f.ConfigWriteDword(0x10, 0xC000);
        _f.ConfigWriteDword(0x14, 0xC010_0000);
        Command(PciCommand.MemorySpace | PciCommand.IoSpace);
        _f.Reset();
        Assert.Empty(_pio.Ranges);
        Assert.Empty(_mmio.Ranges);
    }

    [Fact]
    public void AssignBarsPlacesEachKindInItsWindowNaturallyAligned()
    {
        var layout = MemoryLayout.ForRamSize(6UL << 30);
        _bus.AssignBars(layout);
        var io = _f.GetBar(0)!;
        var m32 = _f.GetBar(1)!;
        var m64 = _f.GetBar(2)!;
        Assert.Equal(0xC000UL, io.MappedAt);
        Assert.InRange(m32.Address, MemoryLayout.Pci32MmioBase, MemoryLayout.PcieEcamBase - m32.Size);
        Assert.Equal(0UL, m32.Address % m32.Size);
        Assert.Equal(layout.Pci64MmioBase, m64.Address);
        Assert.Equal(m64.Address, m64.MappedAt);
        Assert.Equal(PciCommand.IoSpace | PciCommand.MemorySpace, _f.Command);
    }
}

using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Chipset;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.Pci;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Chipset;

public sealed class ChipsetTests : IDisposable
{
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly FakeIsa _isa = new();
    private readonly FakeMachineControl _control = new();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
    private readonly I440FxChipset _chipset;

    public ChipsetTests()
    {
        _chipset = I440FxChipset.Create(new I440FxOptions(), _pio, _mmio, _isa.Irqs, new FakeMsiSink(), _control, _time);
    }

    public void Dispose() => _chipset.Dispose();

    private uint ConfigRead(int dev, int fn, int reg)
    {
        Out(0xCF8, 0x8000_0000u | (uint)(dev << 11 | fn << 8 | reg), 4);
        return In(0xCFC, 4);
    }

    private void ConfigWrite8(int dev, int fn, int reg, byte value)
    {
        Out(0xCF8, 0x8000_0000u | (uint)(dev << 11 | fn << 8 | (reg & 0xFC)), 4);
        _pio.Write((ushort)(0xCFC + (reg & 3)), [value]);
    }

    private void Out(ushort port, uint value, int size)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _pio.Write(port, b[..size]);
    }

    private uint In(ushort port, int size)
    {
        Span<byte> b = stackalloc byte[4];
        b.Clear();
        _pio.Read(port, b[..size]);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    [Fact]
    public void ChipsetFunctionsHaveTheirIdentities()
    {
        Assert.Equal(0x1237_8086u, ConfigRead(0, 0, 0));
        Assert.Equal(0x0600_0000u, ConfigRead(0, 0, 8));
        Assert.Equal(0x7000_8086u, ConfigRead(1, 0, 0));
        Assert.Equal(0x0601_0000u, ConfigRead(1, 0, 8));
        Assert.Equal(0x80u, ConfigRead(1, 0, 0x0C) >> 16 & 0xFF); // multi-function
        Assert.Equal(0x7113_8086u, ConfigRead(1, 3, 0));
        Assert.Equal(0x0680_0003u, ConfigRead(1, 3, 8));
        Assert.Equal(0xFFFC_01DEu, ConfigRead(1, 3, 0x2C));
    }

    [Fact]
    public void PmConfigReportsTheFixedPmBase()
    {
        Assert.Equal(0xB001u, ConfigRead(1, 3, 0x40));
        Assert.Equal(0x01u, ConfigRead(1, 3, 0x80) & 0xFF);
        ConfigWrite8(1, 3, 0x41, 0xC0);
        Assert.Equal(0xB001u, ConfigRead(1, 3, 0x40));
    }

    [Fact]
    public void HostBridgeStoresPamRegisters()
    {
        ConfigWrite8(0, 0, 0x59, 0xFF);
        ConfigWrite8(0, 0, 0x5A, 0xFF);
        Assert.Equal(0x3330u, ConfigRead(0, 0, 0x58) >> 8 & 0xFFFF);
    }

    [Fact]
    public void PirqRouteRegistersDefaultDisabledAndReadBack()
    {
        Assert.Equal(0x8080_8080u, ConfigRead(1, 0, 0x60));
        ConfigWrite8(1, 0, 0x61, 0x0B);
        Assert.Equal(0x8080_0B80u, ConfigRead(1, 0, 0x60));
        Assert.Equal(11, _chipset.Lpc.RoutedIrq(1));
        Assert.Null(_chipset.Lpc.RoutedIrq(0));
        ConfigWrite8(1, 0, 0x62, 0x08); // IRQ 8 is not routable
        Assert.Null(_chipset.Lpc.RoutedIrq(2));
    }

    [Fact]
    public void RoutableIrqMaskMatchesThePredicate()
    {
        for (var irq = 0; irq < 16; irq++)
            Assert.Equal(Piix3Lpc.IsRoutableIrq(irq), (Piix3Lpc.RoutableIrqMask >> irq & 1) != 0);
    }

    [Theory]
    // (device, function) → (pin, link): propolis route_lintr, "D->A->B->C starting at 0:0.0".
    [InlineData(0, 3, PciInterruptPin.IntA, 3)]
    [InlineData(1, 3, PciInterruptPin.IntA, 0)]
    [InlineData(2, 3, PciInterruptPin.IntA, 1)]
    [InlineData(4, 0, PciInterruptPin.IntB, 0)]
    [InlineData(5, 0, PciInterruptPin.IntB, 1)]
    [InlineData(5, 1, PciInterruptPin.IntC, 2)]
    [InlineData(5, 2, PciInterruptPin.IntD, 3)]
    [InlineData(7, 0, PciInterruptPin.IntB, 3)]
    public void IntxPinAndLinkFollowThePropolisFormula(int device, int function, PciInterruptPin pin, int link)
    {
        Assert.Equal(pin, Piix3Lpc.PinForFunction(function));
        Assert.Equal(link, Piix3Lpc.LinkFor(device, pin));
    }

    [Fact]
    public void IntxDrivesTheIrqItsPirqRegisterSelectsAndFollowsRouteChanges()
    {
        var f = new TestFunction();
        _chipset.AttachPci(f, 4, 0); // INTB → PIRQA
        Assert.Equal(2u, ConfigRead(4, 0, 0x3C) >> 8 & 0xFF);
        ConfigWrite8(1, 0, 0x60, 10);
        f.Intx(true);
        Assert.True(_isa.Lines[10].Level);
        ConfigWrite8(1, 0, 0x60, 5); // re-route while asserted
        Assert.False(_isa.Lines[10].Level);
        Assert.True(_isa.Lines[5].Level);
        ConfigWrite8(1, 0, 0x60, 0x85); // disable
        Assert.False(_isa.Lines[5].Level);
        ConfigWrite8(1, 0, 0x60, 5);
        Assert.True(_isa.Lines[5].Level);
        f.Intx(false);
        Assert.False(_isa.Lines[5].Level);
    }

    [Fact]
    public void TwoFunctionsOnOneLinkShareTheLevel()
    {
        var a = new TestFunction();
        var b = new TestFunction();
        _chipset.AttachPci(a, 4, 0);
        _chipset.AttachPci(b, 8, 0); // same link: (8 + 2 + 2) % 4 = 0
        ConfigWrite8(1, 0, 0x60, 11);
        a.Intx(true);
        b.Intx(true);
        a.Intx(false);
        Assert.True(_isa.Lines[11].Level);
        b.Intx(false);
        Assert.False(_isa.Lines[11].Level);
    }

    [Fact]
    public void PrepareForDirectBootRoutesLinksAndWritesInterruptLines()
    {
        var f = new TestFunction();
        _chipset.AttachPci(f, 5, 0); // INTB → PIRQB → IRQ 10
        _chipset.PrepareForDirectBoot(MemoryLayout.ForRamSize(512UL << 20));
        Assert.Equal(0x0B0B_0A0Au, ConfigRead(1, 0, 0x60));
        Assert.Equal(10u, ConfigRead(5, 0, 0x3C) & 0xFF);
        Assert.NotNull(f.GetBar(1)!.MappedAt);
    }

    [Fact]
    public void ResetControlRequestsResetAndPort92FastInit()
    {
        _pio.Write(0xCF9, [0x02]);
        Assert.Empty(_control.Resets);
        Assert.Equal(0x02u, In(0xCF9, 1));
        _pio.Write(0xCF9, [0x06]);
        Assert.Single(_control.Resets);

        Assert.Equal(0x02u, In(0x92, 1)); // A20 on
        _pio.Write(0x92, [0x02]);
        Assert.Single(_control.Resets);
        _pio.Write(0x92, [0x03]);
        Assert.Equal(2, _control.Resets.Count);
    }

    [Fact]
    public void PostCodeIsRecorded()
    {
        _pio.Write(0x80, [0x42]);
        Assert.Equal(0x42, _chipset.PostCode.LastCode);
        Assert.Equal(0x42u, In(0x80, 1));
    }

    [Fact]
    public void ResetDisablesPirqRoutes()
    {
        ConfigWrite8(1, 0, 0x60, 10);
        _chipset.Reset();
        Assert.Equal(0x8080_8080u, ConfigRead(1, 0, 0x60));
    }
}

using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Chipset;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Chipset;

public sealed class PowerManagementTests : IDisposable
{
    private const ushort Pm1Sts = PmConstants.Pm1aEventBlock, Pm1En = PmConstants.Pm1aEventBlock + 2;
    private const ushort Pm1Cnt = PmConstants.Pm1aControlBlock, PmTmr = PmConstants.PmTimerBlock;

    private readonly PortIoBus _pio = new();
    private readonly FakeIsa _isa = new();
    private readonly FakeMachineControl _control = new();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
    private readonly Piix4PowerManagement _pm;

    public PowerManagementTests()
    {
        _pm = new Piix4PowerManagement(_isa.Irqs, _control, _time);
        _pm.AttachPorts(_pio.Register);
    }

    public void Dispose() => _pm.Dispose();

    private FakeIrqLine Sci => _isa.Lines[PmConstants.SciIrq];

    private uint In(ushort port, int size)
    {
        Span<byte> b = stackalloc byte[4];
        b.Clear();
        _pio.Read(port, b[..size]);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private void Out16(ushort port, ushort value) => _pio.Write(port, [(byte)value, (byte)(value >> 8)]);

    [Fact]
    public void PmTimerCountsAt3579545HzFromTheMonotonicClock()
    {
        var t0 = In(PmTmr, 4);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(3_579_545u, In(PmTmr, 4) - t0);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(3_579_545u + 3_579u, In(PmTmr, 4) - t0);
    }

    [Fact]
    public void PmTimerIsThirtyTwoBitsAndWraps()
    {
        _time.Advance(TimeSpan.FromSeconds(1200)); // 4.295e9 ticks: past 2^32
        var expected = unchecked((uint)(1200L * PmConstants.PmTimerFrequency));
        Assert.Equal(expected, In(PmTmr, 4));
        Assert.Equal(expected & 0xFFFF, In(PmTmr, 2)); // narrower reads see the low bytes
    }

    [Fact]
    public void AcpiEnableHandshakeSetsSciEn()
    {
        Assert.Equal(0u, In(Pm1Cnt, 2) & 1);
        _pio.Write(PmConstants.SmiCommandPort, [PmConstants.AcpiEnable]);
        Assert.Equal(1u, In(Pm1Cnt, 2) & 1);
        Assert.True(_pm.AcpiEnabled);
        _pio.Write(PmConstants.SmiCommandPort, [PmConstants.AcpiDisable]);
        Assert.False(_pm.AcpiEnabled);
    }

    [Fact]
    public void PowerButtonStatusIsRw1cAndRaisesSciOnlyWhenEnabled()
    {
        Assert.False(_pm.PressPowerButton()); // ACPI not enabled
        Assert.Equal(0x0100u, In(Pm1Sts, 2) & 0x0100);
        Assert.False(Sci.Level);

        _pio.Write(PmConstants.SmiCommandPort, [PmConstants.AcpiEnable]);
        Assert.False(Sci.Level); // enable bit still clear
        Out16(Pm1En, 0x0100);
        Assert.True(Sci.Level);

        Out16(Pm1Sts, 0x0001); // clearing another bit leaves it
        Assert.True(Sci.Level);
        Out16(Pm1Sts, 0x0100);
        Assert.Equal(0u, In(Pm1Sts, 2) & 0x0100);
        Assert.False(Sci.Level);

        Assert.True(_pm.PressPowerButton());
        Assert.True(Sci.Level);
    }

    [Fact]
    public void SleepEnableWithS5RequestsPowerOff()
    {
        Out16(Pm1Cnt, (ushort)(PmConstants.SlpTypS5 << 10 | 1 << 13));
        Assert.Single(_control.PowerOffs);
        Assert.Equal(0u, In(Pm1Cnt, 2) & (1 << 13)); // SLP_EN reads zero
    }

    [Fact]
    public void SlpTypWithoutSlpEnDoesNothingAndOtherStatesAreIgnored()
    {
        Out16(Pm1Cnt, PmConstants.SlpTypS5 << 10);
        Out16(Pm1Cnt, (ushort)(1 << 10 | 1 << 13)); // S1: not described, not implemented
        Assert.Empty(_control.PowerOffs);
    }

    [Fact]
    public void TimerOverflowSetsTmrStsAndRaisesSciWhenEnabled()
    {
        _pio.Write(PmConstants.SmiCommandPort, [PmConstants.AcpiEnable]);
        Out16(Pm1En, 0x0001);
        // Bit 31 of the counter toggles after 2^31 / 3579545 s ≈ 599.9 s.
        _time.Advance(TimeSpan.FromSeconds(599));
        Assert.False(Sci.Level);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(Sci.Level);
        Assert.Equal(1u, In(Pm1Sts, 2) & 1);
        Out16(Pm1Sts, 1);
        Assert.False(Sci.Level);
    }

    [Fact]
    public void Gpe0StatusIsRw1cAndGatedByEnable()
    {
        _pio.Write(PmConstants.SmiCommandPort, [PmConstants.AcpiEnable]);
        _pm.RaiseGpe(0x0002);
        Assert.Equal(0x0002u, In(PmConstants.Gpe0Block, 2));
        Assert.False(Sci.Level);
        Out16(PmConstants.Gpe0Block + 2, 0x0002);
        Assert.True(Sci.Level);
        Out16(PmConstants.Gpe0Block, 0x0002);
        Assert.False(Sci.Level);
        Assert.Equal(0x0002_0000u, In(PmConstants.Gpe0Block, 4));
    }

    [Fact]
    public void ResetClearsAcpiModeAndDropsSci()
    {
        _pio.Write(PmConstants.SmiCommandPort, [PmConstants.AcpiEnable]);
        Out16(Pm1En, 0x0100);
        _pm.PressPowerButton();
        Assert.True(Sci.Level);
        _pm.Reset();
        Assert.False(Sci.Level);
        Assert.False(_pm.AcpiEnabled);
        Assert.Equal(0u, In(Pm1Sts, 2));
    }
}

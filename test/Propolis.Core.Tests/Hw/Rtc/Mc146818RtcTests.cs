using Propolis.Core.Buses;
using Propolis.Core.Hw.Rtc;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Rtc;

public sealed class Mc146818RtcTests : IDisposable
{
    // 2026-11-22 (a Sunday) 21:34:56.000 UTC.
    private static readonly DateTimeOffset Start = new(2026, 11, 22, 21, 34, 56, TimeSpan.Zero);

    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeIrqLine _irq8 = new(8);
    private readonly PortIoBus _pio = new();
    private readonly Mc146818Rtc _rtc;

    public Mc146818RtcTests()
    {
        _rtc = new Mc146818Rtc(RtcOptions.FromLayout(MemoryLayout.ForRamSize(512UL << 20), 2), _irq8, _time);
        _pio.Register(Mc146818Rtc.BasePort, Mc146818Rtc.PortCount, _rtc, "rtc");
    }

    public void Dispose() => _rtc.Dispose();

    private byte Read(int index)
    {
        _pio.Write(0x70, [(byte)index]);
        Span<byte> b = stackalloc byte[1];
        _pio.Read(0x71, b);
        return b[0];
    }

    private void Write(int index, byte value)
    {
        _pio.Write(0x70, [(byte)index]);
        _pio.Write(0x71, [value]);
    }

    [Fact]
    public void TimeReadsInBcdByDefault()
    {
        Assert.Equal(0x56, Read(Mc146818Rtc.Seconds));
        Assert.Equal(0x34, Read(Mc146818Rtc.Minutes));
        Assert.Equal(0x21, Read(Mc146818Rtc.Hours));
        Assert.Equal(0x01, Read(Mc146818Rtc.DayOfWeek)); // Sunday
        Assert.Equal(0x22, Read(Mc146818Rtc.DayOfMonth));
        Assert.Equal(0x11, Read(Mc146818Rtc.Month));
        Assert.Equal(0x26, Read(Mc146818Rtc.Year));
        Assert.Equal(0x20, Read(Mc146818Rtc.Century));
    }

    [Fact]
    public void BinaryAndTwelveHourModes()
    {
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.BDm); // binary, 12-hour
        Assert.Equal(56, Read(Mc146818Rtc.Seconds));
        Assert.Equal(0x80 | 9, Read(Mc146818Rtc.Hours)); // 9 PM
        Assert.Equal(20, Read(Mc146818Rtc.Century));
        Write(Mc146818Rtc.RegisterB, 0); // BCD, 12-hour
        Assert.Equal(0x89, Read(Mc146818Rtc.Hours));
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.B24Hour);
        Assert.Equal(0x21, Read(Mc146818Rtc.Hours));
    }

    [Fact]
    public void TimeAdvancesWithTheClock()
    {
        _time.Advance(TimeSpan.FromSeconds(65));
        Assert.Equal(0x01, Read(Mc146818Rtc.Seconds));
        Assert.Equal(0x36, Read(Mc146818Rtc.Minutes));
    }

    [Fact]
    public void SettingTheTimeUnderSetHoldsItAndRunsFromRelease()
    {
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.BSet | Mc146818Rtc.B24Hour);
        Write(Mc146818Rtc.Hours, 0x07);
        Write(Mc146818Rtc.Minutes, 0x00);
        Write(Mc146818Rtc.Seconds, 0x00);
        Write(Mc146818Rtc.Year, 0x99);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0x00, Read(Mc146818Rtc.Seconds)); // frozen
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.B24Hour);
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(0x03, Read(Mc146818Rtc.Seconds));
        Assert.Equal(0x07, Read(Mc146818Rtc.Hours));
        Assert.Equal(0x99, Read(Mc146818Rtc.Year));
        Assert.Equal(0x20, Read(Mc146818Rtc.Century));
    }

    [Fact]
    public void UpdateInProgressIsSetJustBeforeAndDuringTheUpdate()
    {
        Assert.Equal(Mc146818Rtc.AUip, Read(Mc146818Rtc.RegisterA) & Mc146818Rtc.AUip); // at .000: updating
        _time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(0x26, Read(Mc146818Rtc.RegisterA));
        _time.Advance(TimeSpan.FromTicks(4_998_000)); // .9998: within 244 µs of the update
        Assert.Equal(0xA6, Read(Mc146818Rtc.RegisterA));
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.BSet | Mc146818Rtc.B24Hour);
        Assert.Equal(0x26, Read(Mc146818Rtc.RegisterA)); // no updates while SET
    }

    [Fact]
    public void RegisterDReportsValidRamAndIsReadOnly()
    {
        Write(Mc146818Rtc.RegisterD, 0);
        Assert.Equal(0x80, Read(Mc146818Rtc.RegisterD));
    }

    [Fact]
    public void UpdateEndedInterruptFiresOncePerSecondAndRegisterCClearsIt()
    {
        Read(Mc146818Rtc.RegisterC);
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.B24Hour | Mc146818Rtc.BUie);
        _time.Advance(TimeSpan.FromMilliseconds(1001));
        Assert.Equal(1, _irq8.Pulses);
        // PF is set too (the periodic rate runs whether or not PIE is set).
        Assert.Equal(Mc146818Rtc.CIrqf | Mc146818Rtc.CUf, Read(Mc146818Rtc.RegisterC) & (Mc146818Rtc.CIrqf | Mc146818Rtc.CUf));
        Assert.Equal(0, Read(Mc146818Rtc.RegisterC));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, _irq8.Pulses);
    }

    [Fact]
    public void FlagsAreSetWithoutInterruptsWhenDisabled()
    {
        Read(Mc146818Rtc.RegisterC);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(Mc146818Rtc.CUf | Mc146818Rtc.CPf, Read(Mc146818Rtc.RegisterC) & 0xF0);
        Assert.Equal(0, _irq8.Pulses);
    }

    [Fact]
    public void AlarmInterruptFiresAtTheProgrammedTime()
    {
        Read(Mc146818Rtc.RegisterC);
        Write(Mc146818Rtc.SecondsAlarm, 0x10);
        Write(Mc146818Rtc.MinutesAlarm, 0x35);
        Write(Mc146818Rtc.HoursAlarm, 0xC0); // any hour
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.B24Hour | Mc146818Rtc.BAie);
        _time.Advance(TimeSpan.FromSeconds(13)); // 21:35:09
        Assert.Equal(0, _irq8.Pulses);
        _time.Advance(TimeSpan.FromSeconds(1)); // 21:35:10
        Assert.Equal(1, _irq8.Pulses);
        Assert.Equal(Mc146818Rtc.CIrqf | Mc146818Rtc.CAf, Read(Mc146818Rtc.RegisterC) & (Mc146818Rtc.CIrqf | Mc146818Rtc.CAf));
    }

    [Fact]
    public void PeriodicInterruptAtTheSelectedRate()
    {
        Read(Mc146818Rtc.RegisterC);
        Write(Mc146818Rtc.RegisterA, 0x2F); // rate 15: 2 Hz
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.B24Hour | Mc146818Rtc.BPie);
        for (var i = 0; i < 4; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(500));
            Assert.Equal(Mc146818Rtc.CIrqf | Mc146818Rtc.CPf, Read(Mc146818Rtc.RegisterC) & (Mc146818Rtc.CIrqf | Mc146818Rtc.CPf));
        }
        Assert.Equal(4, _irq8.Pulses);
    }

    [Fact]
    public void SettingSetClearsUie()
    {
        Write(Mc146818Rtc.RegisterB, Mc146818Rtc.BSet | Mc146818Rtc.BUie | Mc146818Rtc.B24Hour);
        Assert.Equal(Mc146818Rtc.BSet | Mc146818Rtc.B24Hour, Read(Mc146818Rtc.RegisterB));
    }

    [Fact]
    public void NmiBitInTheIndexIsIgnoredAndCmosRamIsStorage()
    {
        _pio.Write(0x70, [0x80 | 0x40]);
        _pio.Write(0x71, [0x5A]);
        Assert.Equal(0x5A, Read(0x40));
    }

    [Fact]
    public void MemorySizesFor512MiB()
    {
        Assert.Equal(0x80, Read(0x15));
        Assert.Equal(0x02, Read(0x16));      // 640 KiB
        Assert.Equal(0xFF, Read(0x17));
        Assert.Equal(0xFF, Read(0x18));      // capped at 65535 KiB
        Assert.Equal(0xFF, Read(0x30));
        Assert.Equal(0xFF, Read(0x31));
        Assert.Equal(0x00, Read(0x34));
        Assert.Equal(0x1F, Read(0x35));      // (512 - 16) MiB / 64 KiB = 0x1F00
        Assert.Equal(0x00, Read(0x5B));
        Assert.Equal(0x00, Read(0x5C));
        Assert.Equal(0x00, Read(0x5D));
        Assert.Equal(0x01, Read(0x5F));      // two CPUs
    }

    [Fact]
    public void MemorySizesFor6GiB()
    {
        using var rtc = new Mc146818Rtc(RtcOptions.FromLayout(MemoryLayout.ForRamSize(6UL << 30), 1), _irq8, _time);
        Assert.Equal(0xFFFF, rtc.ReadRegister(0x17) | rtc.ReadRegister(0x18) << 8);
        // (3 GiB - 16 MiB) / 64 KiB below 4 GiB; 3 GiB / 64 KiB above.
        Assert.Equal(0xBF00, rtc.ReadRegister(0x34) | rtc.ReadRegister(0x35) << 8);
        Assert.Equal(0x00C000, rtc.ReadRegister(0x5B) | rtc.ReadRegister(0x5C) << 8 | rtc.ReadRegister(0x5D) << 16);
    }

    [Fact]
    public void SmallMemoryReportsWhatIsThere()
    {
        using var rtc = new Mc146818Rtc(new RtcOptions(8UL << 20, 0), _irq8, _time);
        Assert.Equal(7 * 1024, rtc.ReadRegister(0x17) | rtc.ReadRegister(0x18) << 8);
        Assert.Equal(0, rtc.ReadRegister(0x34) | rtc.ReadRegister(0x35) << 8);
    }
}

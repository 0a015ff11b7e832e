using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Intr;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Rtc;

/// <summary>What the CMOS memory reports about the machine, QEMU-style (hw/i386/pc.c pc_cmos_init),
/// for firmware that sizes memory from the RTC.</summary>
/// <param name="LowMemoryBytes">RAM below 4 GiB (at 0).</param>
/// <param name="HighMemoryBytes">RAM from 4 GiB.</param>
/// <param name="CpuCount">vCPUs (byte 0x5F holds the count minus one).</param>
public readonly record struct RtcOptions(ulong LowMemoryBytes, ulong HighMemoryBytes, int CpuCount = 1)
{
    public static RtcOptions FromLayout(MemoryLayout layout, int cpuCount)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ulong low = 0, high = 0;
        foreach (var r in layout.RamRegions)
        {
            if (r.GuestAddress < MemoryLayout.HighRamBase)
                low += r.Size;
            else
                high += r.Size;
        }
        return new RtcOptions(low, high, cpuCount);
    }
}

/// <summary>The MC146818 real-time clock and its CMOS RAM at ports 0x70 (index) and 0x71 (data),
/// interrupting on ISA IRQ 8 (edge).</summary>
/// <remarks>
/// <para>Time is the host's wall clock (<see cref="TimeProvider.GetUtcNow"/>) plus an offset the
/// guest sets by writing the time registers. Register layout and semantics: MC146818 datasheet,
/// "Address Map" (Figure 2) and "Registers" (A–D). Register values are presented in BCD or binary
/// (register B DM) and 12- or 24-hour form (register B 24/12), as the guest selects.</para>
/// <para>Update-ended, alarm and periodic flags are computed from the clock whenever the guest
/// looks, and a timer (on <see cref="TimeProvider"/>) raises IRQ 8 on time while an interrupt is
/// enabled. IRQF sets (and IRQ 8 pulses) when a flag is set whose enable bit is set; reading
/// register C clears the flags. Writing day-of-week is ignored: it is derived from the date.
/// Invalid time values are clamped to the nearest valid one.</para>
/// </remarks>
public sealed partial class Mc146818Rtc : IPortIoHandler, IDisposable
{
    public const ushort BasePort = 0x70;
    public const ushort PortCount = 2;
    public const int CmosSize = 128;

    // MC146818 address map.
    public const int Seconds = 0x00;
    public const int SecondsAlarm = 0x01;
    public const int Minutes = 0x02;
    public const int MinutesAlarm = 0x03;
    public const int Hours = 0x04;
    public const int HoursAlarm = 0x05;
    public const int DayOfWeek = 0x06;
    public const int DayOfMonth = 0x07;
    public const int Month = 0x08;
    public const int Year = 0x09;
    public const int RegisterA = 0x0A;
    public const int RegisterB = 0x0B;
    public const int RegisterC = 0x0C;
    public const int RegisterD = 0x0D;

    // PC/AT CMOS layout (QEMU pc_cmos_init; IBM AT Technical Reference).
    public const int BaseMemoryLow = 0x15;
    public const int ExtendedMemoryLow = 0x17;
    public const int ExtendedMemory2Low = 0x30;
    public const int Century = 0x32;
    public const int MemoryAbove16MLow = 0x34;
    public const int CpuCountMinusOne = 0x5F;
    public const int MemoryAbove4GLow = 0x5B;

    // Register A.
    public const byte AUip = 0x80;
    private const byte ADividerMask = 0x70;
    private const byte ARateMask = 0x0F;
    private const byte AWritable = ADividerMask | ARateMask;

    // Register B.
    public const byte BSet = 0x80;
    public const byte BPie = 0x40;
    public const byte BAie = 0x20;
    public const byte BUie = 0x10;
    public const byte BSqwe = 0x08;
    public const byte BDm = 0x04;
    public const byte B24Hour = 0x02;
    public const byte BDse = 0x01;

    // Register C.
    public const byte CIrqf = 0x80;
    public const byte CPf = 0x40;
    public const byte CAf = 0x20;
    public const byte CUf = 0x10;

    // Register D.
    public const byte DVrt = 0x80;

    /// <summary>UIP is set 244 µs before an update cycle, which then takes 1984 µs (datasheet
    /// "Update Cycle"), in 100 ns ticks.</summary>
    private const long UipLeadTicks = 2_440;
    private const long UpdateCycleTicks = 19_840;

    private readonly byte[] _cmos = new byte[CmosSize];
    private readonly IIrqLine _irq;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly ITimer _timer;
    private int _index;
    private TimeSpan _offset;
    private DateTime _frozen;
    private DateTime _lastProcessed;
    private byte _flags;

    public Mc146818Rtc(RtcOptions options, IIrqLine irq8, TimeProvider? time = null, ILogger<Mc146818Rtc>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(irq8);
        _irq = irq8;
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _timer = _time.CreateTimer(_ => OnTimer(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        // Power-on: 32.768 kHz time base, 1024 Hz periodic rate, 24-hour mode (as SeaBIOS leaves it).
        _cmos[RegisterA] = 0x26;
        _cmos[RegisterB] = B24Hour;
        WriteMemorySizes(options);
        _lastProcessed = GuestNowLocked();
    }

    private void WriteMemorySizes(RtcOptions o)
    {
        const ulong KiB = 1024, MiB = 1024 * KiB;
        // 0x15/0x16: conventional memory, 640 KiB.
        Write16(BaseMemoryLow, 640);
        // 0x17/0x18 and 0x30/0x31: KiB of memory from 1 MiB, at most 65535.
        var extended = o.LowMemoryBytes > MiB ? Math.Min((o.LowMemoryBytes - MiB) / KiB, 0xFFFF) : 0;
        Write16(ExtendedMemoryLow, (ushort)extended);
        Write16(ExtendedMemory2Low, (ushort)extended);
        // 0x34/0x35: 64 KiB units of memory from 16 MiB below 4 GiB.
        var above16 = o.LowMemoryBytes > 16 * MiB ? Math.Min((o.LowMemoryBytes - 16 * MiB) / (64 * KiB), 0xFFFF) : 0;
        Write16(MemoryAbove16MLow, (ushort)above16);
        // 0x5B–0x5D: 64 KiB units of memory from 4 GiB.
        var above4 = Math.Min(o.HighMemoryBytes / (64 * KiB), 0xFF_FFFF);
        _cmos[MemoryAbove4GLow] = (byte)above4;
        _cmos[MemoryAbove4GLow + 1] = (byte)(above4 >> 8);
        _cmos[MemoryAbove4GLow + 2] = (byte)(above4 >> 16);
        _cmos[CpuCountMinusOne] = (byte)Math.Clamp(o.CpuCount - 1, 0, 255);
    }

    private void Write16(int index, ushort value)
    {
        _cmos[index] = (byte)value;
        _cmos[index + 1] = (byte)(value >> 8);
    }

    // ---- ports ----

    public void PortRead(ushort offset, Span<byte> data)
    {
        data.Fill(0xFF);
        if (offset != 1)
            return; // the index register is write-only
        lock (_lock)
            data[0] = ReadRegisterLocked(_index);
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (offset == 0)
            {
                // Bit 7 is the NMI mask on PC/AT; there is no NMI source here, so it is ignored.
                _index = data[0] & 0x7F;
                return;
            }
            WriteRegisterLocked(_index, data[0]);
        }
    }

    /// <summary>Reads CMOS byte <paramref name="index"/> as the guest would (for tests and diagnostics).</summary>
    public byte ReadRegister(int index)
    {
        lock (_lock)
            return ReadRegisterLocked(index & 0x7F);
    }

    public void WriteRegister(int index, byte value)
    {
        lock (_lock)
            WriteRegisterLocked(index & 0x7F, value);
    }

    // ---- time ----

    private bool Frozen => (_cmos[RegisterB] & BSet) != 0;

    private DateTime GuestNowLocked() => Frozen ? _frozen : _time.GetUtcNow().UtcDateTime + _offset;

    private byte Encode(int value) => (_cmos[RegisterB] & BDm) != 0 ? (byte)value : (byte)((value / 10 << 4) | (value % 10));

    private int Decode(byte value) => (_cmos[RegisterB] & BDm) != 0 ? value : (value >> 4) * 10 + (value & 0xF);

    private byte EncodeHour(int hour)
    {
        if ((_cmos[RegisterB] & B24Hour) != 0)
            return Encode(hour);
        var h12 = hour % 12 == 0 ? 12 : hour % 12;
        return (byte)(Encode(h12) | (hour >= 12 ? 0x80 : 0));
    }

    private int DecodeHour(byte value)
    {
        if ((_cmos[RegisterB] & B24Hour) != 0)
            return Decode(value);
        var h = Decode((byte)(value & 0x7F)) % 12;
        return (value & 0x80) != 0 ? h + 12 : h;
    }

    private byte TimeRegister(DateTime t, int index) => index switch
    {
        Seconds => Encode(t.Second),
        Minutes => Encode(t.Minute),
        Hours => EncodeHour(t.Hour),
        DayOfWeek => Encode((int)t.DayOfWeek + 1), // Sunday = 1
        DayOfMonth => Encode(t.Day),
        Month => Encode(t.Month),
        Year => Encode(t.Year % 100),
        Century => Encode(t.Year / 100),
        _ => 0,
    };

    private static bool IsTimeRegister(int index) => index is Seconds or Minutes or Hours or DayOfWeek or DayOfMonth or Month or Year or Century;

    private void SetTimeField(int index, byte value)
    {
        var t = GuestNowLocked();
        int year = t.Year, month = t.Month, day = t.Day, hour = t.Hour, minute = t.Minute, second = t.Second;
        switch (index)
        {
            case Seconds: second = Math.Clamp(Decode(value), 0, 59); break;
            case Minutes: minute = Math.Clamp(Decode(value), 0, 59); break;
            case Hours: hour = Math.Clamp(DecodeHour(value), 0, 23); break;
            case DayOfMonth: day = Decode(value); break;
            case Month: month = Math.Clamp(Decode(value), 1, 12); break;
            case Year: year = year / 100 * 100 + Math.Clamp(Decode(value), 0, 99); break;
            case Century: year = Math.Clamp(Decode(value), 1, 99) * 100 + year % 100; break;
            default: return; // day of week: derived from the date
        }
        var days = DateTime.DaysInMonth(year, month);
        if (day < 1 || day > days)
        {
            LogClamped(index, value);
            day = Math.Clamp(day, 1, days);
        }
        var updated = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc);
        if (Frozen)
        {
            _frozen = updated;
        }
        else
        {
            // The divider chain restarts at the written second.
            _offset = updated - _time.GetUtcNow().UtcDateTime;
            _lastProcessed = updated;
        }
    }

    private bool UpdateInProgressLocked()
    {
        if (Frozen || (_cmos[RegisterA] & ADividerMask) != 0x20)
            return false;
        var fraction = GuestNowLocked().Ticks % TimeSpan.TicksPerSecond;
        return fraction >= TimeSpan.TicksPerSecond - UipLeadTicks || fraction < UpdateCycleTicks;
    }

    // ---- registers ----

    private byte ReadRegisterLocked(int index)
    {
        ProcessEventsLocked();
        if (IsTimeRegister(index))
            return TimeRegister(GuestNowLocked(), index);
        switch (index)
        {
            case RegisterA:
                return (byte)((_cmos[RegisterA] & AWritable) | (UpdateInProgressLocked() ? AUip : 0));
            case RegisterC:
                var c = _flags;
                _flags = 0;
                ArmTimerLocked();
                return c;
            case RegisterD:
                return DVrt;
            default:
                return _cmos[index];
        }
    }

    private void WriteRegisterLocked(int index, byte value)
    {
        ProcessEventsLocked();
        if (IsTimeRegister(index))
        {
            SetTimeField(index, value);
            return;
        }
        switch (index)
        {
            case RegisterA:
                _cmos[RegisterA] = (byte)(value & AWritable);
                break;
            case RegisterB:
                var wasFrozen = Frozen;
                if ((value & BSet) != 0)
                {
                    if (!wasFrozen)
                        _frozen = GuestNowLocked();
                    // Datasheet, register B: setting SET clears UIE.
                    value &= unchecked((byte)~BUie);
                }
                _cmos[RegisterB] = value;
                if (wasFrozen && (value & BSet) == 0)
                {
                    _offset = _frozen - _time.GetUtcNow().UtcDateTime;
                    _lastProcessed = _frozen;
                }
                UpdateIrqfLocked();
                break;
            case RegisterC:
            case RegisterD:
                break; // read-only
            default:
                _cmos[index] = value;
                break;
        }
        ArmTimerLocked();
    }

    // ---- interrupts ----

    /// <summary>Periodic interrupt period in 1/32768 s for rate select 1–15 with the 32.768 kHz
    /// time base (datasheet Table "Periodic Interrupt Rate"): 1 and 2 repeat rates 8 and 9.</summary>
    private int PeriodUnits
    {
        get
        {
            var rs = _cmos[RegisterA] & ARateMask;
            return rs switch { 0 => 0, 1 => 128, 2 => 256, _ => 1 << (rs - 1) };
        }
    }

    private static Int128 Units(DateTime t) => (Int128)t.Ticks * 32768 / TimeSpan.TicksPerSecond;

    /// <summary>Sets the flags for every event between the last look and now.</summary>
    private void ProcessEventsLocked()
    {
        var now = GuestNowLocked();
        var last = _lastProcessed;
        if (Frozen || now <= last)
        {
            _lastProcessed = now;
            return;
        }
        var period = PeriodUnits;
        if (period != 0 && Units(now) / period != Units(last) / period)
            _flags |= CPf;
        var lastSecond = last.Ticks / TimeSpan.TicksPerSecond;
        var nowSecond = now.Ticks / TimeSpan.TicksPerSecond;
        if (nowSecond != lastSecond)
        {
            _flags |= CUf;
            // Check the alarm at each second passed (at most a day's worth: after that every
            // alarm setting has matched at least once).
            var first = Math.Max(lastSecond + 1, nowSecond - 86_399);
            for (var s = first; s <= nowSecond; s++)
            {
                if (AlarmMatches(new DateTime(s * TimeSpan.TicksPerSecond, DateTimeKind.Utc)))
                {
                    _flags |= CAf;
                    break;
                }
            }
        }
        _lastProcessed = now;
        UpdateIrqfLocked();
    }

    /// <summary>Datasheet "Alarm": a value with both high bits set (0xC0–0xFF) matches any.</summary>
    private bool AlarmMatches(DateTime t) =>
        Matches(_cmos[SecondsAlarm], Encode(t.Second)) && Matches(_cmos[MinutesAlarm], Encode(t.Minute))
        && Matches(_cmos[HoursAlarm], EncodeHour(t.Hour));

    private static bool Matches(byte alarm, byte value) => (alarm & 0xC0) == 0xC0 || alarm == value;

    private void UpdateIrqfLocked()
    {
        var pending = (_flags & _cmos[RegisterB] & (CPf | CAf | CUf)) != 0;
        if (pending && (_flags & CIrqf) == 0)
        {
            _flags |= CIrqf;
            _irq.Pulse();
        }
    }

    /// <summary>Arms the timer for the next event an enabled interrupt is waiting for.</summary>
    private void ArmTimerLocked()
    {
        var b = _cmos[RegisterB];
        if (Frozen || (_flags & CIrqf) != 0 || (b & (BPie | BAie | BUie)) == 0)
        {
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }
        var now = GuestNowLocked();
        long due = TimeSpan.TicksPerSecond - now.Ticks % TimeSpan.TicksPerSecond;
        var period = PeriodUnits;
        if ((b & BPie) != 0 && period != 0)
        {
            var units = Units(now);
            var nextUnits = (units / period + 1) * period;
            var periodicDue = (long)((nextUnits * TimeSpan.TicksPerSecond + 32767) / 32768) - now.Ticks;
            due = Math.Min(due, Math.Max(periodicDue, 1));
        }
        _timer.Change(TimeSpan.FromTicks(due), Timeout.InfiniteTimeSpan);
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            ProcessEventsLocked();
            ArmTimerLocked();
        }
    }

    /// <summary>The RESET pin (datasheet "RESET"): clears PIE, AIE, UIE, SQWE and the flags; time and
    /// CMOS RAM are kept.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _cmos[RegisterB] &= unchecked((byte)~(BPie | BAie | BUie | BSqwe));
            _flags = 0;
            _lastProcessed = GuestNowLocked();
            ArmTimerLocked();
        }
    }

    public void Dispose() => _timer.Dispose();

    [LoggerMessage(Level = LogLevel.Debug, Message = "RTC register 0x{Index:X2} written with 0x{Value:X2}, which makes no valid date; clamped")]
    private partial void LogClamped(int index, byte value);
}

using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Intr;

namespace Propolis.Core.Hw.Chipset;

/// <summary>The PIIX4 power-management function (82371AB function 3, 00:01.3) as the ACPI fixed
/// hardware: the PM1a event and control blocks and the PM timer at <see cref="PmConstants.PmBase"/>,
/// GPE0 at <see cref="PmConstants.Gpe0Block"/>, the SMI command port, and the SCI on ISA IRQ 9.</summary>
/// <remarks>
/// <para>The PM I/O base is fixed at 0xB000 and reported through PMBA (config 0x40) with PMREGMISC
/// (0x80) reading "I/O space enabled", as propolis does; writes to the PM configuration registers are
/// ignored.</para>
/// <para>There is no SMM: the SCI is raised (level, active high) when SCI_EN is set and an enabled
/// status bit is set (ACPI 6.5 §4.8.2, §5.2.9); with SCI_EN clear nothing is signalled. Writing
/// <see cref="PmConstants.AcpiEnable"/> to the SMI command port sets SCI_EN, which the OS polls for
/// (ACPI 6.5 §16.3.1).</para>
/// </remarks>
public sealed partial class Piix4PowerManagement : PciDevice, IDisposable
{
    /// <summary>ACPI 6.5 §4.8.3.1.1, Table 4.16 (PM1 Status) and PIIX4 §7.2.1 PMSTS.</summary>
    [Flags]
    public enum Pm1Status : ushort
    {
        TmrSts = 1 << 0,
        BmSts = 1 << 4,
        GblSts = 1 << 5,
        PwrbtnSts = 1 << 8,
        SlpbtnSts = 1 << 9,
        RtcSts = 1 << 10,
        WakSts = 1 << 15,
    }

    /// <summary>ACPI 6.5 §4.8.3.1.2, Table 4.17 (PM1 Enable).</summary>
    [Flags]
    public enum Pm1Enable : ushort
    {
        TmrEn = 1 << 0,
        GblEn = 1 << 5,
        PwrbtnEn = 1 << 8,
        RtcEn = 1 << 10,
    }

    /// <summary>ACPI 6.5 §4.8.3.2.1, Table 4.18 (PM1 Control).</summary>
    [Flags]
    public enum Pm1Control : ushort
    {
        SciEn = 1 << 0,
        BmRld = 1 << 1,
        GblRls = 1 << 2,
        SlpTypMask = 7 << 10,
        SlpEn = 1 << 13,
    }

    private const ushort Pm1StatusRw1c = (ushort)(Pm1Status.TmrSts | Pm1Status.BmSts | Pm1Status.GblSts | Pm1Status.PwrbtnSts
        | Pm1Status.SlpbtnSts | Pm1Status.RtcSts | Pm1Status.WakSts);
    private const ushort Pm1EnableMask = (ushort)(Pm1Enable.TmrEn | Pm1Enable.GblEn | Pm1Enable.PwrbtnEn | Pm1Enable.RtcEn);
    /// <summary>GBL_RLS and SLP_EN are write-only and read zero.</summary>
    private const ushort Pm1ControlStored = (ushort)(Pm1Control.SciEn | Pm1Control.BmRld | Pm1Control.SlpTypMask);
    private const ushort SciStatusMask = (ushort)(Pm1Status.TmrSts | Pm1Status.GblSts | Pm1Status.PwrbtnSts | Pm1Status.RtcSts);

    /// <summary>The PM I/O registers (PIIX4 datasheet §7.2, Table "Power Management I/O Space"),
    /// offsets from PMBASE. Registers not listed here read zero and ignore writes.</summary>
    public enum PmRegister
    {
        None,
        Pm1Status,
        Pm1Enable,
        Pm1Control,
        PmTimer,
    }

    private static readonly (int Offset, int Width, PmRegister Register)[] PmIoLayout =
    [
        (0x00, 2, PmRegister.Pm1Status),
        (0x02, 2, PmRegister.Pm1Enable),
        (0x04, 2, PmRegister.Pm1Control),
        (0x08, 4, PmRegister.PmTimer),
    ];

    /// <summary>Fixed values of the PM configuration registers (PIIX4 §7.1), as propolis reports
    /// them: PMBA and SMBBA with the I/O-space bit, the device resource registers enabling the
    /// keyboard controller, FDC and serial decodes, PMREGMISC with PMIOSE set.</summary>
    private static readonly (int Offset, uint Value)[] PmConfigValues =
    [
        (0x40, PmConstants.PmBase | 1u),     // PMBA
        (0x5C, 1u << 28),                    // DEVRESA: KBC_EN_DEV11
        (0x60, (1u << 30) | (1u << 29)),     // DEVRESB: KBC_EIO_EN, EIO_EN_DEV5
        (0x64, (1u << 31) | (1u << 28) | (1u << 27)), // DEVRESC: EIO_EN_DEV7, COMB=COM2, EIO_EN_DEV6, COMA=COM1
        (0x80, 0x01),                        // PMREGMISC: PMIOSE
        (0x90, 0xB100 | 1u),                 // SMBBA
    ];

    public const int PmConfigOffset = 0x40;
    public const int PmConfigLength = 0x98;

    private readonly IMachineControl _control;
    private readonly IIrqLine _sci;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly ITimer _overflowTimer;
    private long _timerEpoch;
    private long _lastTimerTicks;
    private ushort _pm1Status;
    private ushort _pm1Enable;
    private ushort _pm1Control;
    private ushort _gpe0Status;
    private ushort _gpe0Enable;
    private byte _apmStatus;
    private bool _sciAsserted;

    public Piix4PowerManagement(IsaIrqLines irqs, IMachineControl control, TimeProvider? time = null, ILogger<Piix4PowerManagement>? logger = null)
        : base(new PciIdentity(PciIds.VendorIntel, PciIds.Piix4Pm, PciIds.ClassBridge, PciIds.SubclassOtherBridge,
            // Linux warns the PM timer may be unreliable on revisions before 3 (propolis sets 3).
            Revision: 0x03, SubsystemVendorId: PciIds.VendorOxide, SubsystemId: PciIds.Piix4PmSubsystem))
    {
        ArgumentNullException.ThrowIfNull(irqs);
        ArgumentNullException.ThrowIfNull(control);
        _control = control;
        _sci = irqs.AddSource(PmConstants.SciIrq);
        _time = time ?? TimeProvider.System;
        _log = (ILogger?)logger ?? NullLogger.Instance;
        _timerEpoch = _time.GetTimestamp();
        _overflowTimer = _time.CreateTimer(_ => OnTimerOverflow(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        AddCustomConfig(PmConfigOffset, PmConfigLength);
    }

    public override string Name => "piix4-pm";

    /// <summary>Claims the PM1/PM timer block, GPE0 and the SMI command ports.</summary>
    public void AttachPorts(PortIoRegistration register)
    {
        register(PmConstants.PmBase, PmConstants.PmBaseLength, new PmBlockPorts(this), "piix4-pm PMBASE");
        register(PmConstants.Gpe0Block, PmConstants.Gpe0BlockLength, new Gpe0Ports(this), "piix4-pm GPE0");
        register(PmConstants.SmiCommandPort, 2, new ApmPorts(this), "piix4-pm APM");
    }

    /// <summary>True once the guest enabled ACPI mode (SCI_EN).</summary>
    public bool AcpiEnabled
    {
        get { lock (_lock) return (_pm1Control & (ushort)Pm1Control.SciEn) != 0; }
    }

    public bool SciAsserted
    {
        get { lock (_lock) return _sciAsserted; }
    }

    /// <summary>A host-initiated ACPI power-button press (ACPI 6.5 §4.8.2.2.1.1): sets PWRBTN_STS; the
    /// OS, if it enabled PWRBTN_EN, sees an SCI and shuts down. Returns false if the guest has not
    /// enabled ACPI and the power-button event, in which case nothing will notice.</summary>
    public bool PressPowerButton()
    {
        lock (_lock)
        {
            _pm1Status |= (ushort)Pm1Status.PwrbtnSts;
            UpdateSciLocked();
            return (_pm1Control & (ushort)Pm1Control.SciEn) != 0 && (_pm1Enable & (ushort)Pm1Enable.PwrbtnEn) != 0;
        }
    }

    /// <summary>Sets bits in GPE0_STS (a general-purpose event such as hotplug).</summary>
    public void RaiseGpe(ushort bits)
    {
        lock (_lock)
        {
            _gpe0Status |= bits;
            UpdateSciLocked();
        }
    }

    // ---- PM timer (ACPI 6.5 §4.8.3.3) ----

    /// <summary>Ticks of the 3.579545 MHz clock since reset, from the monotonic clock.</summary>
    private long TimerTicksLocked()
    {
        var elapsed = _time.GetTimestamp() - _timerEpoch;
        var f = _time.TimestampFrequency;
        return elapsed / f * PmConstants.PmTimerFrequency + elapsed % f * PmConstants.PmTimerFrequency / f;
    }

    /// <summary>The 32-bit PM timer value now (FADT TMR_VAL_EXT: all 32 bits count).</summary>
    public uint PmTimerValue
    {
        get { lock (_lock) return (uint)TimerTicksLocked(); }
    }

    /// <summary>TMR_STS is set whenever bit 31 of the timer changes (ACPI 6.5 §4.8.3.1.1).</summary>
    private void SampleTimerLocked()
    {
        var now = TimerTicksLocked();
        if ((now >> 31) != (_lastTimerTicks >> 31))
            _pm1Status |= (ushort)Pm1Status.TmrSts;
        _lastTimerTicks = now;
    }

    private void ArmOverflowTimerLocked()
    {
        if ((_pm1Enable & (ushort)Pm1Enable.TmrEn) == 0)
        {
            _overflowTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }
        var now = TimerTicksLocked();
        var toFlip = ((now >> 31) + 1 << 31) - now;
        var ms = toFlip * 1000 / PmConstants.PmTimerFrequency + 1;
        _overflowTimer.Change(TimeSpan.FromMilliseconds(ms), Timeout.InfiniteTimeSpan);
    }

    private void OnTimerOverflow()
    {
        lock (_lock)
        {
            SampleTimerLocked();
            UpdateSciLocked();
            ArmOverflowTimerLocked();
        }
    }

    // ---- SCI ----

    private void UpdateSciLocked()
    {
        var level = (_pm1Control & (ushort)Pm1Control.SciEn) != 0
            && ((_pm1Status & _pm1Enable & SciStatusMask) != 0 || (_gpe0Status & _gpe0Enable) != 0);
        if (level != _sciAsserted)
        {
            _sciAsserted = level;
            _sci.SetLevel(level);
        }
    }

    // ---- PM I/O block ----

    private static PmRegister Decode(int offset, out int registerOffset, out int width)
    {
        foreach (var (o, w, r) in PmIoLayout)
        {
            if (offset >= o && offset < o + w)
            {
                registerOffset = o;
                width = w;
                return r;
            }
        }
        registerOffset = offset;
        width = 1;
        return PmRegister.None;
    }

    private uint ReadPmRegisterLocked(PmRegister register)
    {
        switch (register)
        {
            case PmRegister.Pm1Status:
                SampleTimerLocked();
                UpdateSciLocked();
                return _pm1Status;
            case PmRegister.Pm1Enable:
                return _pm1Enable;
            case PmRegister.Pm1Control:
                return _pm1Control;
            case PmRegister.PmTimer:
                return (uint)TimerTicksLocked();
            default:
                return 0;
        }
    }

    private void WritePmRegisterLocked(PmRegister register, uint value, uint byteMask)
    {
        switch (register)
        {
            case PmRegister.Pm1Status:
                SampleTimerLocked();
                _pm1Status &= (ushort)~(value & byteMask & Pm1StatusRw1c);
                break;
            case PmRegister.Pm1Enable:
                _pm1Enable = (ushort)((_pm1Enable & ~byteMask) | (value & byteMask & Pm1EnableMask));
                ArmOverflowTimerLocked();
                break;
            case PmRegister.Pm1Control:
                _pm1Control = (ushort)((_pm1Control & ~byteMask) | (value & byteMask & Pm1ControlStored));
                if ((value & byteMask & (uint)Pm1Control.SlpEn) != 0)
                    EnterSleepLocked((_pm1Control >> 10) & 7);
                break;
        }
        UpdateSciLocked();
    }

    /// <summary>ACPI 6.5 §4.8.3.2.1 SLP_EN: enter the state SLP_TYP names. Only S5 (soft off) is
    /// described in the DSDT; anything else is logged and ignored.</summary>
    private void EnterSleepLocked(int slpTyp)
    {
        if (slpTyp == PmConstants.SlpTypS5)
        {
            LogSoftOff();
            _control.RequestPowerOff("ACPI S5 (PM1_CNT.SLP_EN with SLP_TYP=0)");
        }
        else
        {
            LogUnsupportedSleep(slpTyp);
        }
    }

    private void PmBlockRead(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (var i = 0; i < data.Length;)
            {
                var register = Decode(offset + i, out var regOffset, out var width);
                var value = ReadPmRegisterLocked(register);
                for (var b = offset + i - regOffset; b < width && i < data.Length; b++, i++)
                    data[i] = (byte)(value >> (8 * b));
            }
        }
    }

    private void PmBlockWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (var i = 0; i < data.Length;)
            {
                var register = Decode(offset + i, out var regOffset, out var width);
                uint value = 0, mask = 0;
                for (var b = offset + i - regOffset; b < width && i < data.Length; b++, i++)
                {
                    value |= (uint)data[i] << (8 * b);
                    mask |= 0xFFu << (8 * b);
                }
                WritePmRegisterLocked(register, value, mask);
            }
        }
    }

    // ---- GPE0 (ACPI 6.5 §4.8.4.1): GPE0_STS (RW1C) then GPE0_EN ----

    private void Gpe0Read(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            var block = (uint)_gpe0Status | (uint)_gpe0Enable << 16;
            for (var i = 0; i < data.Length; i++)
                data[i] = offset + i < 4 ? (byte)(block >> (8 * (offset + i))) : (byte)0xFF;
        }
    }

    private void Gpe0Write(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (var i = 0; i < data.Length && offset + i < 4; i++)
            {
                var pos = offset + i;
                var shift = 8 * (pos & 1);
                if (pos < 2)
                    _gpe0Status &= (ushort)~(data[i] << shift);
                else
                    _gpe0Enable = (ushort)((_gpe0Enable & ~(0xFF << shift)) | (data[i] << shift));
            }
            UpdateSciLocked();
        }
    }

    // ---- APM control/status (PIIX4 §7.3.1: APMC 0xB2, APMS 0xB3) ----

    private void ApmWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (var i = 0; i < data.Length; i++)
            {
                if (offset + i == 1)
                {
                    _apmStatus = data[i];
                    continue;
                }
                if (offset + i != 0)
                    continue;
                switch (data[i])
                {
                    case PmConstants.AcpiEnable:
                        _pm1Control |= (ushort)Pm1Control.SciEn;
                        LogAcpiMode(true);
                        break;
                    case PmConstants.AcpiDisable:
                        _pm1Control &= unchecked((ushort)~Pm1Control.SciEn);
                        LogAcpiMode(false);
                        break;
                }
            }
            UpdateSciLocked();
        }
    }

    private void ApmRead(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (var i = 0; i < data.Length; i++)
                data[i] = offset + i == 1 ? _apmStatus : (byte)0;
        }
    }

    // ---- PCI configuration (PIIX4 §7.1) ----

    protected override uint CustomConfigRead(int offset)
    {
        foreach (var (o, v) in PmConfigValues)
        {
            if (o == offset)
                return v;
        }
        return 0;
    }

    protected override void CustomConfigWrite(int offset, uint value, uint byteMask) => LogConfigWriteIgnored(offset, value & byteMask);

    protected override void OnReset()
    {
        lock (_lock)
        {
            _pm1Status = 0;
            _pm1Enable = 0;
            _pm1Control = 0;
            _gpe0Status = 0;
            _gpe0Enable = 0;
            _apmStatus = 0;
            _timerEpoch = _time.GetTimestamp();
            _lastTimerTicks = 0;
            ArmOverflowTimerLocked();
            UpdateSciLocked();
        }
    }

    public void Dispose() => _overflowTimer.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "guest entered ACPI S5 (soft off)")]
    private partial void LogSoftOff();

    [LoggerMessage(Level = LogLevel.Warning, Message = "guest asked for sleep type {SlpTyp}, which this machine does not implement; ignored")]
    private partial void LogUnsupportedSleep(int slpTyp);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ACPI mode {Enabled} through the SMI command port")]
    private partial void LogAcpiMode(bool enabled);

    [LoggerMessage(Level = LogLevel.Debug, Message = "PIIX4 PM config write at 0x{Offset:X2} (0x{Value:X8}) ignored")]
    private partial void LogConfigWriteIgnored(int offset, uint value);

    private sealed class PmBlockPorts(Piix4PowerManagement pm) : IPortIoHandler
    {
        public void PortRead(ushort offset, Span<byte> data) => pm.PmBlockRead(offset, data);
        public void PortWrite(ushort offset, ReadOnlySpan<byte> data) => pm.PmBlockWrite(offset, data);
    }

    private sealed class Gpe0Ports(Piix4PowerManagement pm) : IPortIoHandler
    {
        public void PortRead(ushort offset, Span<byte> data) => pm.Gpe0Read(offset, data);
        public void PortWrite(ushort offset, ReadOnlySpan<byte> data) => pm.Gpe0Write(offset, data);
    }

    private sealed class ApmPorts(Piix4PowerManagement pm) : IPortIoHandler
    {
        public void PortRead(ushort offset, Span<byte> data) => pm.ApmRead(offset, data);
        public void PortWrite(ushort offset, ReadOnlySpan<byte> data) => pm.ApmWrite(offset, data);
    }
}

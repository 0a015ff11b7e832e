using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Misc;
using Propolis.Core.Hw.Ps2;
using Propolis.Core.Hw.Rtc;

namespace Propolis.Core.Hw.Chipset;

/// <summary>Options for <see cref="LegacyIsaDevices"/>.</summary>
/// <param name="Rtc">What the CMOS reports (memory sizes, CPU count).</param>
/// <param name="DebugPortPath">File for the QEMU debug port (0x402), e.g. <c>./debug.out</c>; null for none.</param>
/// <param name="PvPanic">Attach the pvpanic ISA device at 0x505.</param>
public readonly record struct LegacyIsaOptions(RtcOptions Rtc, string? DebugPortPath = null, bool PvPanic = true);

/// <summary>The ISA devices a PC has that KVM does not emulate in the kernel: the MC146818 RTC
/// (0x70–0x71, IRQ 8), the 8042 keyboard controller (0x60, 0x64, IRQ 1), and optionally the QEMU
/// debug port (0x402) and pvpanic (0x505).</summary>
public sealed class LegacyIsaDevices : IDisposable
{
    public const int RtcIrq = 8;

    private LegacyIsaDevices(Mc146818Rtc rtc, I8042Controller keyboard, QemuDebugPort? debugPort, PvPanic? pvPanic)
    {
        Rtc = rtc;
        Keyboard = keyboard;
        DebugPort = debugPort;
        PvPanic = pvPanic;
    }

    public Mc146818Rtc Rtc { get; }
    public I8042Controller Keyboard { get; }
    public QemuDebugPort? DebugPort { get; }
    public PvPanic? PvPanic { get; }

    /// <summary>Builds the devices and claims their ports.</summary>
    /// <exception cref="IOException">The debug port file cannot be created.</exception>
    public static LegacyIsaDevices Create(LegacyIsaOptions options, PortIoRegistration register, IsaIrqLines irqs,
        IMachineControl control, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(register);
        ArgumentNullException.ThrowIfNull(irqs);
        ArgumentNullException.ThrowIfNull(control);
        var lf = loggerFactory ?? NullLoggerFactory.Instance;
        var debugPort = options.DebugPortPath is { } path ? QemuDebugPort.ToFile(path) : null;
        var rtc = new Mc146818Rtc(options.Rtc, irqs.AddSource(RtcIrq), time, lf.CreateLogger<Mc146818Rtc>());
        var keyboard = new I8042Controller(irqs.AddSource(I8042Controller.KeyboardIrq), control, lf.CreateLogger<I8042Controller>());
        var pvPanic = options.PvPanic ? new PvPanic(lf.CreateLogger<PvPanic>()) : null;

        register(Mc146818Rtc.BasePort, Mc146818Rtc.PortCount, rtc, "rtc");
        keyboard.Attach(register);
        if (debugPort != null)
            register(QemuDebugPort.DefaultPort, 1, debugPort, "qemu-debug-port");
        if (pvPanic != null)
            register(PvPanic.DefaultPort, 1, pvPanic, "pvpanic");
        return new LegacyIsaDevices(rtc, keyboard, debugPort, pvPanic);
    }

    /// <summary>Machine reset: the RTC's RESET pin and the keyboard controller; CMOS RAM and time persist.</summary>
    public void Reset()
    {
        Rtc.Reset();
        Keyboard.Reset();
        DebugPort?.Flush();
    }

    public void Dispose()
    {
        Rtc.Dispose();
        DebugPort?.Dispose();
    }
}

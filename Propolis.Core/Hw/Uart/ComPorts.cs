using Propolis.Core.Buses;
using Propolis.Core.Intr;

namespace Propolis.Core.Hw.Uart;

/// <summary>The PC's legacy serial ports: where each one decodes and which ISA IRQ it drives.</summary>
/// <param name="Name">"COM1" … "COM4".</param>
/// <param name="BasePort">First of its eight I/O ports.</param>
/// <param name="Irq">ISA IRQ (equal to the GSI through the IOAPIC's identity-mapped ISA pins).</param>
public readonly record struct ComPortLocation(string Name, ushort BasePort, byte Irq)
{
    /// <summary>The conventional assignment (IBM PC/AT; Linux's SERIAL_PORT_DFNS): COM1 and COM3
    /// share IRQ 4, COM2 and COM4 share IRQ 3.</summary>
    public static IReadOnlyList<ComPortLocation> Standard { get; } =
    [
        new("COM1", 0x3F8, 4),
        new("COM2", 0x2F8, 3),
        new("COM3", 0x3E8, 4),
        new("COM4", 0x2E8, 3),
    ];
}

/// <summary>COM1–COM4: four 16550As on the LPC bus, registered with the port I/O bus and wired to
/// their ISA IRQs (ports sharing an IRQ drive it as a wired OR).</summary>
/// <example>A machine with its serial console on COM1, served at <c>./ttya</c>:
/// <code>
/// var com = ComPorts.Create(portIoBus.Register, irq => vm.GetIrqLine(irq));
/// using var console = ConsoleSocket.Create(ConsoleSocket.DefaultPath, com.Com1, logger);
/// await console.WaitForFirstClientAsync(cancellationToken); // then start the vCPUs
/// </code>
/// COM2–COM4 have nothing attached: what the guest sends there is discarded and they never
/// receive. On machine reset call <see cref="Reset"/>.</example>
public sealed class ComPorts
{
    private readonly Uart16550[] _uarts;

    private ComPorts(Uart16550[] uarts) => _uarts = uarts;

    public Uart16550 Com1 => _uarts[0];
    public Uart16550 Com2 => _uarts[1];
    public Uart16550 Com3 => _uarts[2];
    public Uart16550 Com4 => _uarts[3];

    /// <summary>The four UARTs in the order of <see cref="ComPortLocation.Standard"/>.</summary>
    public IReadOnlyList<Uart16550> All => _uarts;

    /// <summary>Creates the four UARTs and registers each at its base port.</summary>
    /// <param name="register">Claims ports on the port I/O bus: pass <c>portIoBus.Register</c>.</param>
    /// <param name="isaIrq">Returns the interrupt line of an ISA IRQ number; called once per
    /// distinct IRQ (3 and 4).</param>
    public static ComPorts Create(PortIoRegistration register, Func<byte, IIrqLine> isaIrq)
    {
        ArgumentNullException.ThrowIfNull(register);
        ArgumentNullException.ThrowIfNull(isaIrq);
        var lines = new Dictionary<byte, SharedIrqLine>();
        var uarts = new Uart16550[ComPortLocation.Standard.Count];
        for (int i = 0; i < uarts.Length; i++)
        {
            var location = ComPortLocation.Standard[i];
            if (!lines.TryGetValue(location.Irq, out var line))
            {
                line = new SharedIrqLine(isaIrq(location.Irq));
                lines.Add(location.Irq, line);
            }
            uarts[i] = new Uart16550(line.AddSource());
            register(location.BasePort, Uart16550.RegisterCount, uarts[i], location.Name);
        }
        return new ComPorts(uarts);
    }

    /// <summary>Master reset of every UART (machine reset).</summary>
    public void Reset()
    {
        foreach (var uart in _uarts)
            uart.Reset();
    }
}

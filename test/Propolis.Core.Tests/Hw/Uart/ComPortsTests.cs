using Propolis.Core.Buses;
using Propolis.Core.Hw.Uart;
using Propolis.Core.Intr;
using static Propolis.Core.Tests.Hw.Uart.Reg;

namespace Propolis.Core.Tests.Hw.Uart;

public class ComPortsTests
{
    [Fact]
    public void Registers_COM1_to_COM4_at_the_PC_ports_with_their_IRQs()
    {
        var claimed = new List<(ushort Port, ushort Length, IPortIoHandler Handler, string Owner)>();
        var lines = new Dictionary<byte, RecordingIrqLine>();
        var com = ComPorts.Create(
            (port, length, handler, owner) => claimed.Add((port, length, handler, owner)),
            irq => lines.TryGetValue(irq, out var l) ? l : lines[irq] = new RecordingIrqLine(irq));

        Assert.Equal(
            [(0x3F8, 8, "COM1"), (0x2F8, 8, "COM2"), (0x3E8, 8, "COM3"), (0x2E8, 8, "COM4")],
            claimed.Select(c => ((int)c.Port, (int)c.Length, c.Owner)).ToArray());
        Assert.Same(com.Com1, claimed[0].Handler);
        Assert.Same(com.Com4, claimed[3].Handler);
        Assert.Equal([3, 4], lines.Keys.Order().Select(k => (int)k).ToArray());

        // COM1 and COM3 share IRQ 4 as a wired OR; COM2 drives IRQ 3.
        EnableThreInterrupt(com.Com1);
        Assert.True(lines[4].Level);
        Assert.False(lines[3].Level);
        EnableThreInterrupt(com.Com3);
        new Guest(com.Com1).In(IIR); // COM1's THRE acknowledged
        Assert.True(lines[4].Level); // COM3 still pending
        new Guest(com.Com3).In(IIR);
        Assert.False(lines[4].Level);
        EnableThreInterrupt(com.Com2);
        Assert.True(lines[3].Level);

        com.Reset();
        Assert.False(lines[3].Level);
    }

    private static void EnableThreInterrupt(Uart16550 uart)
    {
        var guest = new Guest(uart);
        guest.Out(MCR, MCR_OUT2);
        guest.Out(IER, IER_THRI);
    }
}

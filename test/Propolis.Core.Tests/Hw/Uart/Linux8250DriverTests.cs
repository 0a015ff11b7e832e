using System.Text;
using static Propolis.Core.Tests.Hw.Uart.Reg;

namespace Propolis.Core.Tests.Hw.Uart;

public class Linux8250DriverTests
{
    [Fact]
    public void Autoconfig_identifies_a_16550A_with_the_full_variant_probe()
    {
        var (_, guest, _, _) = Guest.Create();
        Assert.Equal("16550A", new Linux8250Driver(guest).Autoconfig());
    }

    [Fact]
    public void Autoconfig_leaves_the_port_quiet()
    {
        var (uart, guest, irq, _) = Guest.Create();
        new Linux8250Driver(guest).Autoconfig();
        Assert.Equal(0, guest.In(IER));
        Assert.Equal(0, guest.In(LCR));
        Assert.Equal(0, guest.In(MCR));
        Assert.Equal(IIR_NO_INT, guest.Iir); // FIFOs off again after serial8250_clear_fifos
        Assert.False(irq.Level);
        Assert.Equal(0, uart.TransmitDiscarded);
    }

    [Fact]
    public void Size_fifo_counts_sixteen_bytes()
    {
        var (_, guest, _, sink) = Guest.Create();
        Assert.Equal(16, new Linux8250Driver(guest).SizeFifo());
        Assert.Equal(0, sink.Length); // loopback: nothing left on the wire
    }

    [Fact]
    public void Startup_finds_neither_THRE_bug_nor_TXEN_bug()
    {
        var (_, guest, _, _) = Guest.Create();
        var driver = new Linux8250Driver(guest);
        driver.Autoconfig();
        Assert.True(driver.Startup());
        Assert.False(driver.BugThre, "THRE must be re-asserted when THRI is enabled again");
        Assert.False(driver.BugTxen, "enabling THRI with an empty transmitter must raise THRE");
    }

    [Fact]
    public void Interrupt_driven_transmit_delivers_every_byte_and_goes_quiet()
    {
        var (_, guest, irq, sink) = Guest.Create();
        var driver = new Linux8250Driver(guest);
        driver.Autoconfig();
        driver.Startup();
        byte[] message = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("Linux version 6.12 (root@propolis) #1 SMP\r\n", 20)));

        driver.Write(message);
        int interrupts = 0;
        while (irq.Level && interrupts < 1000)
        {
            Assert.True(driver.Interrupt());
            interrupts++;
        }

        Assert.Equal(message, sink.Written.ToArray());
        Assert.Equal(0, driver.Pending);
        Assert.False(irq.Level);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);
    }

    [Fact]
    public void Interrupt_driven_transmit_waits_for_a_slow_sink()
    {
        var (uart, guest, irq, sink) = Guest.Create();
        var driver = new Linux8250Driver(guest);
        driver.Autoconfig();
        driver.Startup();
        byte[] message = Enumerable.Range(0, 100).Select(static i => (byte)i).ToArray();
        sink.Room = 10;

        driver.Write(message);
        for (int round = 0; round < 100 && sink.Length < message.Length; round++)
        {
            while (irq.Level)
                driver.Interrupt();
            // The transmitter holds what the sink refused: THRE stays clear, no interrupt.
            if (sink.Length < message.Length)
                Assert.Equal(0, guest.Lsr & LSR_THRE);
            sink.Room = 10;
            uart.SinkWritable();
        }

        Assert.Equal(message, sink.Written.ToArray());
        Assert.Equal(0, uart.TransmitDiscarded);
    }

    [Fact]
    public void Interrupt_driven_receive_with_trigger_level_8()
    {
        var (uart, guest, irq, sink) = Guest.Create();
        var driver = new Linux8250Driver(guest);
        driver.Autoconfig();
        driver.Startup();
        byte[] input = Enumerable.Range(0, 256).Select(static i => (byte)i).ToArray();

        int offered = 0;
        for (int round = 0; offered < input.Length && round < 1000; round++)
        {
            offered += uart.TryReceive(input.AsSpan(offered));
            Assert.True(irq.Level);
            driver.Interrupt();
            Assert.False(irq.Level);
        }

        Assert.Equal(input, driver.Received.ToArray());
        Assert.True(sink.ReceiverReadyCalls > 0);
    }
}

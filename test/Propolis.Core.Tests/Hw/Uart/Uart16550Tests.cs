using Propolis.Core.Hw.Uart;
using static Propolis.Core.Tests.Hw.Uart.Reg;

namespace Propolis.Core.Tests.Hw.Uart;

public class Uart16550Tests
{
    private static (Uart16550 Uart, Guest Guest, RecordingIrqLine Irq, RecordingSink Sink) CreateWithInterruptsRouted()
    {
        var t = Guest.Create();
        t.Guest.Out(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
        return t;
    }

    [Fact]
    public void Reset_values_match_the_datasheet()
    {
        var (_, guest, irq, _) = Guest.Create();
        Assert.Equal(0x00, guest.In(IER));
        Assert.Equal(0x01, guest.Iir);
        Assert.Equal(0x00, guest.In(LCR));
        Assert.Equal(0x00, guest.In(MCR));
        Assert.Equal(LSR_THRE | LSR_TEMT, guest.Lsr);
        Assert.Equal(MSR_CTS | MSR_DSR | MSR_DCD, guest.In(MSR)); // a connected line, no deltas
        Assert.False(irq.Level);
    }

    [Fact]
    public void Register_map_decodes_every_offset_once_for_each_DLAB()
    {
        for (int offset = 0; offset < UartRegisterMap.Length; offset++)
        {
            foreach (bool dlab in new[] { false, true })
            {
                int matches = UartRegisterMap.Table.Count(e =>
                    e.Offset == offset && (e.Dlab == DlabMatch.Any || (e.Dlab == DlabMatch.Set) == dlab));
                Assert.Equal(1, matches);
            }
        }
        Assert.Equal(UartRegister.Dll, UartRegisterMap.ForRead(0, dlab: true));
        Assert.Equal(UartRegister.Thr, UartRegisterMap.ForWrite(0, dlab: false));
        Assert.Equal(UartRegister.Iir, UartRegisterMap.ForRead(2, dlab: true));
        Assert.Equal(UartRegister.Fcr, UartRegisterMap.ForWrite(2, dlab: false));
    }

    [Fact]
    public void Scratch_register_keeps_any_value()
    {
        var (_, guest, _, _) = Guest.Create();
        foreach (byte value in new byte[] { 0xA5, 0x5A, 0x00, 0xFF })
        {
            guest.Out(SCR, value);
            Assert.Equal(value, guest.In(SCR));
        }
    }

    [Fact]
    public void Divisor_latch_round_trips_under_DLAB_and_hides_behind_RBR_and_IER()
    {
        var (uart, guest, _, sink) = Guest.Create();
        guest.Out(IER, IER_RDI);
        guest.Out(LCR, LCR_DLAB | LCR_WLEN8);
        guest.Out(DLL, 0x0C);
        guest.Out(DLM, 0x01);
        Assert.Equal(0x0C, guest.In(DLL));
        Assert.Equal(0x01, guest.In(DLM));
        Assert.Equal(LCR_DLAB | LCR_WLEN8, guest.In(LCR));
        Assert.Equal(0x010C, uart.Divisor);

        guest.Out(LCR, LCR_WLEN8);
        Assert.Equal(IER_RDI, guest.In(IER));
        guest.Out(TX, (byte)'x');
        Assert.Equal("x"u8.ToArray(), sink.Written.ToArray());
        Assert.Equal(0x010C, uart.Divisor); // THR write did not touch DLL
    }

    [Fact]
    public void IER_and_MCR_read_back_only_their_defined_bits()
    {
        var (_, guest, _, _) = Guest.Create();
        guest.Out(IER, 0xFF);
        Assert.Equal(IER_ALL_INTR, guest.In(IER));
        guest.Out(MCR, 0xEF); // everything but LOOP
        Assert.Equal(0x0F, guest.In(MCR));
    }

    [Fact]
    public void Enabling_ETBEI_with_an_empty_transmitter_raises_THRE_and_reading_IIR_clears_it()
    {
        var (_, guest, irq, _) = CreateWithInterruptsRouted();
        guest.Out(FCR, FCR_ENABLE_FIFO);

        guest.Out(IER, IER_THRI);
        Assert.True(irq.Level);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_THRI, guest.Iir);
        // The read cleared the interrupt; LSR still shows the transmitter empty.
        Assert.False(irq.Level);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);
        Assert.Equal(LSR_THRE | LSR_TEMT, guest.Lsr & (LSR_THRE | LSR_TEMT));

        // Writing the same IER again is no new edge of ETBEI: nothing new.
        guest.Out(IER, IER_THRI);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);

        // Off and on again: THRE again.
        guest.Out(IER, 0);
        guest.Out(IER, IER_THRI);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_THRI, guest.Iir);
        Assert.Equal(2, irq.RisingEdges);
    }

    [Fact]
    public void Writing_THR_clears_THRE_until_the_byte_has_left()
    {
        var (uart, guest, irq, sink) = CreateWithInterruptsRouted();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        sink.Room = 0; // the host end takes nothing for now
        guest.Out(IER, IER_THRI);
        Assert.True(irq.Level);

        guest.Out(TX, 0x41);
        Assert.False(irq.Level);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);
        Assert.Equal(0, guest.Lsr & (LSR_THRE | LSR_TEMT));

        sink.Room = int.MaxValue;
        uart.SinkWritable();
        Assert.True(irq.Level);
        Assert.Equal(LSR_THRE | LSR_TEMT, guest.Lsr & (LSR_THRE | LSR_TEMT));
        Assert.Equal(IIR_FIFO_ENABLED | IIR_THRI, guest.Iir);
        Assert.Equal("A"u8.ToArray(), sink.Written.ToArray());
    }

    [Fact]
    public void Transmitter_FIFO_holds_sixteen_bytes_while_the_sink_is_full_and_then_drains_in_order()
    {
        var (uart, guest, _, sink) = Guest.Create();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        sink.Room = 0;
        for (int i = 0; i < 20; i++)
            guest.Out(TX, (byte)i);
        Assert.Equal(4, uart.TransmitDiscarded); // a driver that ignores THRE loses bytes, as on the part

        sink.Room = 5;
        uart.SinkWritable();
        Assert.Equal(new byte[] { 0, 1, 2, 3, 4 }, sink.Written.ToArray());
        Assert.Equal(0, guest.Lsr & LSR_THRE);

        sink.Room = int.MaxValue;
        uart.SinkWritable();
        Assert.Equal(Enumerable.Range(0, 16).Select(static i => (byte)i).ToArray(), sink.Written.ToArray());
        Assert.Equal(LSR_THRE, guest.Lsr & LSR_THRE);
    }

    [Fact]
    public void Without_FIFOs_THR_holds_one_byte()
    {
        var (uart, guest, _, sink) = Guest.Create();
        sink.Room = 0;
        guest.Out(TX, 1);
        guest.Out(TX, 2);
        Assert.Equal(1, uart.TransmitDiscarded);
        sink.Room = int.MaxValue;
        uart.SinkWritable();
        Assert.Equal(new byte[] { 1 }, sink.Written.ToArray());
    }

    [Fact]
    public void Transmitter_FIFO_reset_discards_held_bytes_and_raises_THRE()
    {
        var (_, guest, irq, sink) = CreateWithInterruptsRouted();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        sink.Room = 0;
        guest.Out(IER, IER_THRI);
        guest.In(IIR);
        guest.Out(TX, 1);
        Assert.False(irq.Level);

        guest.Out(FCR, FCR_ENABLE_FIFO | FCR_CLEAR_XMIT);
        Assert.Equal(LSR_THRE | LSR_TEMT, guest.Lsr & (LSR_THRE | LSR_TEMT));
        Assert.True(irq.Level);
        Assert.Equal(0, sink.Length);
    }

    [Fact]
    public void IIR_reports_pending_interrupts_in_priority_order()
    {
        var (uart, guest, _, _) = Guest.Create();
        guest.Out(FCR, FCR_ENABLE_FIFO | FCR_R_TRIG_00);
        // Overrun through loopback: 17 bytes into a 16-byte receiver FIFO.
        guest.Out(MCR, MCR_LOOP);
        for (int i = 0; i < 17; i++)
            guest.Out(TX, (byte)i);
        guest.Out(MCR, 0); // leaving loopback changes DSR/CTS/DCD: modem status deltas
        guest.Out(IER, IER_ALL_INTR);

        Assert.Equal(IIR_FIFO_ENABLED | IIR_RLSI, guest.Iir);
        Assert.Equal(LSR_OE | LSR_DR | LSR_THRE | LSR_TEMT, guest.Lsr); // reading LSR clears OE
        Assert.Equal(IIR_FIFO_ENABLED | IIR_RDI, guest.Iir);
        for (int i = 0; i < 16; i++)
            Assert.Equal(i, guest.In(RX));
        Assert.Equal(IIR_FIFO_ENABLED | IIR_THRI, guest.Iir); // reading it clears THRE
        byte msr = guest.In(MSR);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);
        Assert.Equal(MSR_CTS | MSR_DSR | MSR_DCD | MSR_DCTS | MSR_DDSR | MSR_DDCD, msr);
        Assert.Equal(0, uart.TransmitDiscarded);
    }

    [Theory]
    [InlineData(FCR_R_TRIG_00, 1)]
    [InlineData(FCR_R_TRIG_01, 4)]
    [InlineData(FCR_R_TRIG_10, 8)]
    [InlineData(FCR_R_TRIG_11, 14)]
    public void Received_data_interrupt_fires_at_the_trigger_level_and_timeout_below_it(byte trigger, int level)
    {
        var (uart, guest, irq, _) = CreateWithInterruptsRouted();
        guest.Out(FCR, (byte)(FCR_ENABLE_FIFO | trigger));
        guest.Out(IER, IER_RDI);
        Assert.False(irq.Level);

        for (int count = 1; count <= 16; count++)
        {
            Assert.Equal(1, uart.TryReceive([(byte)count]));
            byte expected = count >= level ? IIR_RDI : IIR_RX_TIMEOUT;
            Assert.Equal(IIR_FIFO_ENABLED | expected, guest.Iir);
            Assert.True(irq.Level);
        }
        Assert.Equal(0, uart.TryReceive([17])); // full: the host must wait

        for (int remaining = 15; remaining >= 0; remaining--)
        {
            guest.In(RX);
            if (remaining == 0)
                Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);
            else
                Assert.Equal(IIR_FIFO_ENABLED | (remaining >= level ? IIR_RDI : IIR_RX_TIMEOUT), guest.Iir);
        }
        Assert.False(irq.Level);
        Assert.Equal(0, guest.Lsr & LSR_DR);
    }

    [Fact]
    public void Receiver_reset_empties_the_FIFO()
    {
        var (uart, guest, _, _) = Guest.Create();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        Assert.Equal(3, uart.TryReceive([1, 2, 3]));
        guest.Out(FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR);
        Assert.Equal(0, guest.Lsr & LSR_DR);
        Assert.Equal(IIR_FIFO_ENABLED, guest.Iir & IIR_FIFO_ENABLED); // still enabled
    }

    [Fact]
    public void Disabling_the_FIFOs_clears_them_and_IIR_bits_6_and_7()
    {
        var (uart, guest, _, _) = Guest.Create();
        guest.Out(FCR, FCR_ENABLE_FIFO | FCR_R_TRIG_11);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);
        uart.TryReceive([1, 2, 3]);
        guest.Out(FCR, 0);
        Assert.Equal(IIR_NO_INT, guest.Iir);
        Assert.Equal(0, guest.Lsr & LSR_DR);
        // FCR7_64BYTE does not show in IIR (this is not a 16750).
        guest.Out(FCR, FCR_ENABLE_FIFO | FCR7_64BYTE);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_NO_INT, guest.Iir);
    }

    [Fact]
    public void Without_FIFOs_the_receiver_holds_one_byte_and_interrupts_at_once()
    {
        var (uart, guest, irq, sink) = CreateWithInterruptsRouted();
        guest.Out(IER, IER_RDI);
        Assert.Equal(1, uart.TryReceive([7, 8]));
        Assert.Equal(IIR_RDI, guest.Iir);
        Assert.True(irq.Level);
        Assert.Equal(7, guest.In(RX));
        Assert.Equal(1, sink.ReceiverReadyCalls); // room again: the host is told
        Assert.Equal(1, uart.TryReceive([8]));
        Assert.Equal(8, guest.In(RX));
    }

    [Fact]
    public void Loopback_mirrors_modem_outputs_to_inputs_and_transmitter_to_receiver()
    {
        var (uart, guest, irq, sink) = CreateWithInterruptsRouted();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        guest.In(MSR);

        guest.Out(MCR, MCR_LOOP | MCR_RTS);
        // RTS→CTS; DSR and DCD (driven by the host until now) drop.
        Assert.Equal(MSR_CTS | MSR_DDSR | MSR_DDCD, guest.In(MSR));
        guest.Out(MCR, MCR_LOOP | MCR_DTR);
        Assert.Equal(MSR_DSR | MSR_DCTS | MSR_DDSR, guest.In(MSR));
        guest.Out(MCR, MCR_LOOP | MCR_OUT1);
        Assert.Equal(MSR_RI | MSR_DDSR, guest.In(MSR));
        guest.Out(MCR, MCR_LOOP | MCR_OUT2);
        Assert.Equal(MSR_DCD | MSR_TERI | MSR_DDCD, guest.In(MSR));

        guest.Out(IER, IER_RDI);
        guest.Out(TX, 0x55);
        Assert.Equal(0, sink.Length); // the serial output is disconnected
        Assert.Equal(LSR_DR | LSR_THRE | LSR_TEMT, guest.Lsr);
        Assert.Equal(IIR_FIFO_ENABLED | IIR_RDI, guest.Iir);
        Assert.False(irq.Level); // OUT2 is forced inactive in loopback: the PC's IRQ gate is shut
        Assert.Equal(0x55, guest.In(RX));

        Assert.Equal(3, uart.TryReceive([1, 2, 3])); // the serial input is disconnected: lost
        Assert.Equal(0, guest.Lsr & LSR_DR);
    }

    [Fact]
    public void Overrun_in_FIFO_mode_keeps_the_FIFO_and_loses_the_new_byte()
    {
        var (_, guest, _, _) = Guest.Create();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        guest.Out(MCR, MCR_LOOP);
        for (int i = 0; i < 18; i++)
            guest.Out(TX, (byte)(0x30 + i));
        Assert.Equal(LSR_OE | LSR_DR, guest.Lsr & (LSR_OE | LSR_DR));
        Assert.Equal(0, guest.Lsr & LSR_OE); // cleared by the read
        for (int i = 0; i < 16; i++)
            Assert.Equal(0x30 + i, guest.In(RX));
        Assert.Equal(0, guest.Lsr & LSR_DR);
    }

    [Fact]
    public void Overrun_without_FIFOs_overwrites_RBR()
    {
        var (_, guest, irq, _) = CreateWithInterruptsRouted();
        guest.Out(IER, IER_RLSI);
        guest.Out(MCR, MCR_LOOP);
        guest.Out(TX, 1);
        guest.Out(TX, 2);
        Assert.Equal(IIR_RLSI, guest.Iir);
        Assert.Equal(LSR_OE | LSR_DR, guest.Lsr & (LSR_OE | LSR_DR));
        Assert.Equal(IIR_NO_INT, guest.Iir);
        Assert.Equal(2, guest.In(RX));
        Assert.False(irq.Level);
    }

    [Fact]
    public void Interrupt_output_is_gated_by_OUT2()
    {
        var (_, guest, irq, _) = Guest.Create();
        guest.Out(IER, IER_THRI);
        Assert.Equal(IIR_THRI, guest.In(IIR) & 0x0F);
        guest.Out(IER, 0);
        guest.Out(IER, IER_THRI);
        Assert.False(irq.Level);
        guest.Out(MCR, MCR_OUT2);
        Assert.True(irq.Level);
        guest.Out(MCR, 0);
        Assert.False(irq.Level);
    }

    [Fact]
    public void Modem_input_changes_raise_the_modem_status_interrupt_until_MSR_is_read()
    {
        var (uart, guest, irq, _) = CreateWithInterruptsRouted();
        guest.In(MSR);
        guest.Out(IER, IER_MSI);
        Assert.False(irq.Level);

        uart.SetModemInputs(ModemInputs.Connected | ModemInputs.RingIndicator);
        Assert.False(irq.Level); // RI rising: TERI is only the trailing edge
        uart.SetModemInputs(ModemInputs.ClearToSend);
        Assert.True(irq.Level);
        Assert.Equal(IIR_MSI, guest.Iir);
        Assert.Equal(MSR_CTS | MSR_DDSR | MSR_TERI | MSR_DDCD, guest.In(MSR));
        Assert.False(irq.Level);
        Assert.Equal(IIR_NO_INT, guest.Iir);
    }

    [Fact]
    public void Wide_accesses_reach_consecutive_registers_and_ports_past_the_end_read_as_open_bus()
    {
        var (uart, guest, _, _) = Guest.Create();
        uart.PortWrite(Reg.MCR, [MCR_DTR, 0xAA]); // LSR ignores writes
        Span<byte> word = stackalloc byte[2];
        uart.PortRead(Reg.MCR, word);
        Assert.Equal(MCR_DTR, word[0]);
        Assert.Equal(LSR_THRE | LSR_TEMT, word[1]);

        Span<byte> dword = stackalloc byte[4];
        uart.PortRead(Reg.MSR, dword);
        Assert.Equal(0xFF, dword[2]);
        Assert.Equal(0xFF, dword[3]);
        uart.PortWrite(Reg.SCR, [0x12, 0x34]);
        Assert.Equal(0x12, guest.In(SCR));
    }

    [Fact]
    public void Reset_returns_to_power_on_state_and_releases_the_line()
    {
        var (uart, guest, irq, _) = CreateWithInterruptsRouted();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        guest.Out(IER, IER_THRI);
        guest.Out(SCR, 0x77);
        uart.TryReceive([1, 2]);
        Assert.True(irq.Level);

        uart.Reset();
        Assert.False(irq.Level);
        Assert.Equal(IIR_NO_INT, guest.Iir);
        Assert.Equal(LSR_THRE | LSR_TEMT, guest.Lsr);
        Assert.Equal(0, guest.In(IER));
        Assert.Equal(0, guest.In(MCR));
        Assert.Equal(0x77, guest.In(SCR)); // not affected by master reset
    }

    [Fact]
    public void A_host_refused_for_a_full_receiver_is_told_once_room_appears()
    {
        var (uart, guest, _, sink) = Guest.Create();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        byte[] input = Enumerable.Range(0, 40).Select(static i => (byte)(i * 7)).ToArray();
        var received = new List<byte>();
        int offered = uart.TryReceive(input);
        Assert.Equal(16, offered);
        while (received.Count < input.Length)
        {
            int before = sink.ReceiverReadyCalls;
            received.Add(guest.In(RX));
            if (offered < input.Length)
            {
                Assert.Equal(before + 1, sink.ReceiverReadyCalls);
                offered += uart.TryReceive(input.AsSpan(offered));
            }
        }
        Assert.Equal(input, received.ToArray());
    }

    [Fact]
    public void Register_accesses_and_transmit_allocate_nothing()
    {
        var (uart, guest, _, sink) = CreateWithInterruptsRouted();
        guest.Out(FCR, FCR_ENABLE_FIFO);
        guest.Out(IER, IER_RDI | IER_THRI);
        Exercise(uart, sink, 20_000); // warm up: JIT, tiering

        // The runtime itself may allocate once on this thread while it tiers code up; a
        // per-access allocation would show in every round, so the quietest of three must be 0.
        long allocated = Enumerable.Range(0, 3).Min(_ => Exercise(uart, sink, 100_000));

        Assert.True(allocated == 0, $"{allocated} bytes allocated in 100000 iterations");
    }

    // Fully optimized from the start, so no on-stack replacement compiles during the measurement.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static long Exercise(Uart16550 uart, RecordingSink sink, int iterations)
    {
        Span<byte> one = stackalloc byte[1];
        ReadOnlySpan<byte> input = [0x61, 0x62];
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < iterations; i++)
        {
            sink.Clear();
            uart.PortRead(Reg.LSR, one);
            one[0] = 0x41;
            uart.PortWrite(Reg.TX, one);
            uart.PortRead(Reg.IIR, one);
            uart.TryReceive(input);
            uart.PortRead(Reg.RX, one);
            uart.PortRead(Reg.RX, one);
        }
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}

using static Propolis.Core.Tests.Hw.Uart.Reg;

namespace Propolis.Core.Tests.Hw.Uart;

/// <summary>The register sequences of Linux's drivers/tty/serial/8250/8250_port.c (autoconfig,
/// autoconfig_16550a with the full variant probe, size_fifo, serial8250_do_startup's THRE tests,
/// the interrupt handler, start_tx/tx_chars/rx_chars), replayed against the UART.</summary>
internal sealed class Linux8250Driver(Guest port)
{
    public bool BugThre { get; private set; }
    public bool BugTxen { get; private set; }
    public byte Ier { get; private set; }
    public List<byte> Received { get; } = [];

    private readonly Queue<byte> _xmit = new();

    /// <summary>autoconfig(): returns the type name Linux would print ("16550A", ...).</summary>
    public string Autoconfig()
    {
        // IER test
        byte scratch = port.In(IER);
        port.Out(IER, 0);
        byte scratch2 = (byte)(port.In(IER) & IER_ALL_INTR);
        port.Out(IER, IER_ALL_INTR);
        byte scratch3 = (byte)(port.In(IER) & IER_ALL_INTR);
        port.Out(IER, scratch);
        if (scratch2 != 0 || scratch3 != IER_ALL_INTR)
            return "none (IER test failed)";

        byte saveMcr = port.In(MCR);
        byte saveLcr = port.In(LCR);

        // LOOP test
        port.Out(MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
        byte status1 = (byte)(port.In(MSR) & MSR_STATUS_BITS);
        port.Out(MCR, saveMcr);
        if (status1 != (MSR_DCD | MSR_CTS))
            return "none (LOOP test failed)";

        port.Out(LCR, LCR_CONF_MODE_B);
        port.Out(2 /* UART_EFR */, 0);
        port.Out(LCR, 0);
        port.Out(FCR, FCR_ENABLE_FIFO);
        string type;
        switch (port.In(IIR) & IIR_FIFO_ENABLED)
        {
            case 0x00: type = Autoconfig8250(); break;
            case 0x80: type = "16550"; break;
            case 0xC0: type = Autoconfig16550A(); break;
            default: type = "unknown"; break;
        }
        port.Out(LCR, saveLcr);

        port.Out(MCR, saveMcr);
        ClearFifos();
        port.In(RX);
        port.Out(IER, 0);
        return type;
    }

    private string Autoconfig8250()
    {
        byte scratch = port.In(SCR);
        port.Out(SCR, 0xA5);
        byte status1 = port.In(SCR);
        port.Out(SCR, 0x5A);
        byte status2 = port.In(SCR);
        port.Out(SCR, scratch);
        return status1 == 0xA5 && status2 == 0x5A ? "16450" : "8250";
    }

    private string Autoconfig16550A()
    {
        port.Out(LCR, LCR_CONF_MODE_A);
        if (port.In(2 /* UART_EFR */) == 0)
            return "16650 or Motorola (EFR at DLAB)";
        port.Out(LCR, LCR_CONF_MODE_B);
        if (port.In(2 /* UART_EFR */) == 0)
            return "16650V2 or later (EFR)";

        // National Semiconductor Super I/O: EXCR1 at offset 2 with LCR = 0xE0 mirrors MCR.LOOP.
        port.Out(LCR, 0);
        byte status1 = port.In(MCR);
        port.Out(LCR, 0xE0);
        byte status2 = port.In(0x02);
        if (((status2 ^ status1) & MCR_LOOP) == 0)
        {
            port.Out(LCR, 0);
            port.Out(MCR, (byte)(status1 ^ MCR_LOOP));
            port.Out(LCR, 0xE0);
            status2 = port.In(0x02);
            port.Out(LCR, 0);
            port.Out(MCR, status1);
            if (((status2 ^ status1) & MCR_LOOP) != 0)
                return "NS16550A";
        }

        // TI16750: IIR bit 5 follows FCR bit 5 when DLAB is set.
        port.Out(LCR, 0);
        port.Out(FCR, FCR_ENABLE_FIFO | FCR7_64BYTE);
        status1 = (byte)(port.In(IIR) & (IIR_64BYTE_FIFO | IIR_FIFO_ENABLED));
        port.Out(FCR, FCR_ENABLE_FIFO);
        port.Out(LCR, LCR_CONF_MODE_A);
        port.Out(FCR, FCR_ENABLE_FIFO | FCR7_64BYTE);
        status2 = (byte)(port.In(IIR) & (IIR_64BYTE_FIFO | IIR_FIFO_ENABLED));
        port.Out(FCR, FCR_ENABLE_FIFO);
        port.Out(LCR, 0);
        if (status1 == IIR_FIFO_ENABLED && status2 == (IIR_64BYTE_FIFO | IIR_FIFO_ENABLED))
            return "TI16750";

        // XScale: IER bit 6 (UUE) sticks.
        byte iersave = port.In(IER);
        port.Out(IER, (byte)(iersave & ~IER_UUE));
        if ((port.In(IER) & IER_UUE) == 0)
        {
            port.Out(IER, (byte)(iersave | IER_UUE));
            if ((port.In(IER) & IER_UUE) != 0)
                return "XScale";
        }
        port.Out(IER, iersave);

        return SizeFifo() == 64 ? "U6_16550A" : "16550A";
    }

    /// <summary>size_fifo(): counts how many of 256 looped-back bytes the receiver kept.</summary>
    public int SizeFifo()
    {
        byte oldLcr = port.In(LCR);
        port.Out(LCR, 0);
        byte oldFcr = port.In(FCR); // reads IIR, as the kernel does
        byte oldMcr = port.In(MCR);
        port.Out(FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR | FCR_CLEAR_XMIT);
        port.Out(MCR, MCR_LOOP);
        port.Out(LCR, LCR_CONF_MODE_A);
        int oldDl = port.In(DLL) | port.In(DLM) << 8;
        port.Out(DLL, 1);
        port.Out(DLM, 0);
        port.Out(LCR, LCR_WLEN8);
        for (int i = 0; i < 256; i++)
            port.Out(TX, (byte)i);
        int count;
        for (count = 0; (port.In(LSR) & LSR_DR) != 0 && count < 256; count++)
            port.In(RX);
        port.Out(FCR, oldFcr);
        port.Out(MCR, oldMcr);
        port.Out(LCR, LCR_CONF_MODE_A);
        port.Out(DLL, (byte)oldDl);
        port.Out(DLM, (byte)(oldDl >> 8));
        port.Out(LCR, oldLcr);
        return count;
    }

    public void ClearFifos()
    {
        port.Out(FCR, FCR_ENABLE_FIFO);
        port.Out(FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR | FCR_CLEAR_XMIT);
        port.Out(FCR, 0);
    }

    /// <summary>serial8250_do_startup() for a 16550A on an ISA IRQ, with its two THRE tests.</summary>
    public bool Startup()
    {
        ClearFifos();
        port.Out(FCR, FCR_ENABLE_FIFO | FCR_R_TRIG_10); // uart_config[PORT_16550A].fcr
        port.In(LSR);
        port.In(RX);
        port.In(IIR);
        port.In(MSR);
        if (port.In(LSR) == 0xFF)
            return false; // "LSR safety check engaged!"

        // univ8250_setup_irq → serial8250 THRE test (UART_BUG_THRE)
        while ((port.In(LSR) & LSR_THRE) == 0) { }
        port.Out(IER, IER_THRI);
        byte iir1 = port.In(IIR);
        port.Out(IER, 0);
        port.Out(IER, IER_THRI);
        byte iir = port.In(IIR);
        port.Out(IER, 0);
        if ((iir1 & IIR_NO_INT) == 0 && (iir & IIR_NO_INT) != 0)
            BugThre = true;

        port.Out(LCR, LCR_WLEN8);
        port.Out(MCR, MCR_DTR | MCR_RTS | MCR_OUT2); // TIOCM_OUT2 for an ISA irq

        // "Do a quick test to see if we receive an interrupt when we enable the TX irq."
        port.Out(IER, IER_THRI);
        byte lsr = port.In(LSR);
        iir = port.In(IIR);
        port.Out(IER, 0);
        if ((lsr & LSR_TEMT) != 0 && (iir & IIR_NO_INT) != 0)
            BugTxen = true;

        // Clear any pending interrupt flags, then enable receive interrupts.
        port.In(LSR);
        port.In(RX);
        port.In(IIR);
        port.In(MSR);
        Ier = IER_RLSI | IER_RDI;
        port.Out(IER, Ier);
        return true;
    }

    /// <summary>uart_write → __start_tx: queue bytes and enable the THRE interrupt.</summary>
    public void Write(ReadOnlySpan<byte> text)
    {
        foreach (byte b in text)
            _xmit.Enqueue(b);
        if ((Ier & IER_THRI) == 0)
        {
            Ier |= IER_THRI;
            port.Out(IER, Ier);
        }
    }

    public int Pending => _xmit.Count;

    /// <summary>serial8250_interrupt for one port: handle until IIR shows nothing pending.
    /// Returns whether anything was handled (IRQ_HANDLED).</summary>
    public bool Interrupt()
    {
        bool handled = false;
        for (int pass = 0; pass < 512; pass++)
        {
            byte iir = port.In(IIR);
            if ((iir & IIR_NO_INT) != 0)
                return handled;
            handled = true;
            byte lsr = port.In(LSR);
            if ((lsr & LSR_DR) != 0)
            {
                // serial8250_rx_chars: up to 256 bytes while DR
                for (int max = 256; max > 0 && (lsr & LSR_DR) != 0; max--)
                {
                    Received.Add(port.In(RX));
                    lsr = port.In(LSR);
                }
            }
            port.In(MSR);
            if ((lsr & LSR_THRE) != 0 && (Ier & IER_THRI) != 0)
                TxChars();
        }
        throw new InvalidOperationException("interrupt storm: IIR never cleared");
    }

    private void TxChars()
    {
        int count = 16; // tx_loadsz of a 16550A
        while (count-- > 0 && _xmit.Count > 0)
            port.Out(TX, _xmit.Dequeue());
        if (_xmit.Count == 0)
        {
            Ier &= unchecked((byte)~IER_THRI); // __stop_tx
            port.Out(IER, Ier);
        }
    }
}

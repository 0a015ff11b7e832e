using Propolis.Core.Buses;
using Propolis.Core.Chardev;
using Propolis.Core.Intr;

namespace Propolis.Core.Hw.Uart;

/// <summary>The modem control inputs a host-side backend can drive (MSR bits 4–7).</summary>
[Flags]
public enum ModemInputs : byte
{
    None = 0,
    ClearToSend = Msr.Cts,
    DataSetReady = Msr.Dsr,
    RingIndicator = Msr.Ri,
    DataCarrierDetect = Msr.Dcd,
    /// <summary>What a connected null-modem cable or modem shows: CTS, DSR and DCD.</summary>
    Connected = ClearToSend | DataSetReady | DataCarrierDetect,
}

/// <summary>A National Semiconductor PC16550D ("16550A") UART: 16-byte receive and transmit
/// FIFOs, the divisor latch, the four interrupt sources with their priorities, local loopback and
/// the modem status lines. Linux's 8250 driver identifies it as a 16550A and runs it interrupt
/// driven.</summary>
/// <remarks>
/// <para>There is no line timing: a byte written to THR is handed to the <see cref="ISerialSink"/>
/// at once, and the FIFO only fills while the sink refuses bytes. The receiver's character-timeout
/// interrupt therefore fires as soon as the FIFO holds data below the trigger level (the host
/// delivers a burst atomically, so "no new character for four character times" holds when the
/// guest can first look).</para>
/// <para>Thread safety: register accesses (vCPU threads) and the host side
/// (<see cref="ISerialPort"/>, the console threads) serialize on one lock that covers only
/// register state. The interrupt line is driven under that lock, so that the level it shows is
/// always that of the latest state; <see cref="IIrqLine.SetLevel"/> is a single non-blocking
/// ioctl. The output is a level (INTR stays high while an enabled interrupt is pending); the ISA
/// IRQs of a PC are edge-triggered at the PIC/IOAPIC, which act on its rising edges, and Linux's
/// handler loops until IIR shows nothing pending, so no edge is needed per interrupt.
/// The sink is called under the lock (it only copies into memory) so bytes leave in
/// order; <see cref="ISerialSink.ReceiverReady"/> is called after the lock is released.</para>
/// </remarks>
public sealed class Uart16550 : IPortIoHandler, ISerialPort
{
    /// <summary>Number of I/O ports the UART decodes.</summary>
    public const int RegisterCount = UartRegisterMap.Length;

    /// <summary>Depth of each FIFO.</summary>
    public const int FifoDepth = ByteFifo.Depth;

    private readonly Lock _lock = new();
    private readonly IIrqLine _irq;
    private readonly bool _irqGatedByOut2;
    private ISerialSink? _sink;

    private byte _ier;
    private byte _fcr;
    private byte _lcr;
    private byte _mcr;
    private byte _scr;
    // Undefined at power-on (datasheet); 1 (115200 baud) until the guest programs it.
    private ushort _divisor = 1;
    private bool _overrun;
    private byte _msrDeltas;
    private byte _modemInputs = (byte)ModemInputs.Connected;

    // The THRE interrupt is a latched event, separate from LSR.THRE: reading IIR clears the
    // interrupt while LSR still shows the transmitter empty (datasheet "Interrupt Identification
    // Register", table "Interrupt Control Functions").
    private bool _threInterrupt;
    private bool _irqLevel;
    private bool _receiverWanted;
    private bool _sinkBlocked;
    private long _transmitDiscarded;

    private ByteFifo _rx;
    private ByteFifo _tx;

    /// <param name="irq">The interrupt line INTR drives.</param>
    /// <param name="irqGatedByOut2">Whether INTR reaches <paramref name="irq"/> only while MCR.OUT2
    /// is set and loopback is off, as on every PC serial port (the OUT2 pin enables the
    /// tri-state buffer on the IRQ line). Drivers for PCs set OUT2 to enable interrupts.</param>
    public Uart16550(IIrqLine irq, bool irqGatedByOut2 = true)
    {
        ArgumentNullException.ThrowIfNull(irq);
        _irq = irq;
        _irqGatedByOut2 = irqGatedByOut2;
    }

    /// <summary>The divisor latch (DLM:DLL) the guest programmed; the baud rate is 115200 / divisor.</summary>
    public ushort Divisor
    {
        get { lock (_lock) return _divisor; }
    }

    /// <summary>Bytes the guest wrote to THR while the transmitter FIFO was full (lost, as on the
    /// real part). A well-behaved driver waits for THRE, so this stays 0.</summary>
    public long TransmitDiscarded
    {
        get { lock (_lock) return _transmitDiscarded; }
    }

    private bool FifosEnabled => (_fcr & Fcr.Enable) != 0;

    private bool Loopback => (_mcr & Mcr.Loop) != 0;

    // Without FIFOs the receiver and the transmitter each hold one byte (RBR, THR).
    private int FifoCapacity => FifosEnabled ? ByteFifo.Depth : 1;

    // ---- guest side -----------------------------------------------------------------------

    public void PortRead(ushort offset, Span<byte> data)
    {
        ISerialSink? notify;
        lock (_lock)
        {
            // A wider access reaches consecutive byte registers, as the ISA bus splits it.
            for (int i = 0; i < data.Length; i++)
            {
                int register = offset + i;
                data[i] = register < RegisterCount ? ReadRegister(register) : (byte)0xFF;
            }
            UpdateInterruptLine();
            notify = TakeReceiverReady() ? _sink : null;
        }
        notify?.ReceiverReady();
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        ISerialSink? notify;
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                int register = offset + i;
                if (register < RegisterCount)
                    WriteRegister(register, data[i]);
            }
            UpdateInterruptLine();
            notify = TakeReceiverReady() ? _sink : null;
        }
        notify?.ReceiverReady();
    }

    /// <summary>Master reset (datasheet "Master Reset" column of the register table): the
    /// divisor latch and the scratch register keep their values.</summary>
    public void Reset()
    {
        ISerialSink? notify;
        lock (_lock)
        {
            _ier = 0;
            _fcr = 0;
            _lcr = 0;
            _mcr = 0;
            _overrun = false;
            _msrDeltas = 0;
            _threInterrupt = false;
            _sinkBlocked = false;
            _rx.Clear();
            _tx.Clear();
            UpdateInterruptLine();
            notify = TakeReceiverReady() ? _sink : null;
        }
        notify?.ReceiverReady();
    }

    private byte ReadRegister(int offset)
    {
        switch (UartRegisterMap.ForRead(offset, (_lcr & Lcr.Dlab) != 0))
        {
            case UartRegister.Rbr:
                // Reading RBR takes the oldest byte; DR, the data-available and the timeout
                // interrupts follow the FIFO's new level.
                return _rx.TryPop(out byte received) ? received : (byte)0;
            case UartRegister.Ier:
                return _ier;
            case UartRegister.Iir:
                byte pending = PendingInterrupt();
                if (pending == Iir.TransmitterHoldingRegisterEmpty)
                    _threInterrupt = false;
                return (byte)(pending | (FifosEnabled ? Iir.FifosEnabled : 0));
            case UartRegister.Lcr:
                return _lcr;
            case UartRegister.Mcr:
                return _mcr;
            case UartRegister.Lsr:
                byte lsr = 0;
                if (!_rx.IsEmpty)
                    lsr |= Lsr.DataReady;
                if (_overrun)
                    lsr |= Lsr.OverrunError;
                if (_tx.IsEmpty)
                    lsr |= Lsr.ThrEmpty | Lsr.TransmitterEmpty;
                _overrun = false; // OE is reset by reading LSR
                return lsr;
            case UartRegister.Msr:
                byte msr = (byte)(ModemStatusLines() | _msrDeltas);
                _msrDeltas = 0; // delta bits are reset by reading MSR
                return msr;
            case UartRegister.Scr:
                return _scr;
            case UartRegister.Dll:
                return (byte)_divisor;
            case UartRegister.Dlm:
                return (byte)(_divisor >> 8);
            default:
                return 0;
        }
    }

    private void WriteRegister(int offset, byte value)
    {
        switch (UartRegisterMap.ForWrite(offset, (_lcr & Lcr.Dlab) != 0))
        {
            case UartRegister.Thr:
                WriteTransmitterHolding(value);
                break;
            case UartRegister.Ier:
                byte before = _ier;
                _ier = (byte)(value & Ier.Writable);
                // Enabling ETBEI while the transmitter is empty raises THRE at once; Linux's
                // 8250 driver tests for exactly this at startup (UART_BUG_THRE, UART_BUG_TXEN).
                if ((before & Ier.Etbei) == 0 && (_ier & Ier.Etbei) != 0 && _tx.IsEmpty)
                    _threInterrupt = true;
                break;
            case UartRegister.Fcr:
                WriteFifoControl(value);
                break;
            case UartRegister.Lcr:
                _lcr = value;
                break;
            case UartRegister.Mcr:
                byte linesBefore = ModemStatusLines();
                _mcr = (byte)(value & Mcr.Writable);
                RecordModemDeltas(linesBefore, ModemStatusLines());
                break;
            case UartRegister.Scr:
                _scr = value;
                break;
            case UartRegister.Dll:
                _divisor = (ushort)((_divisor & 0xFF00) | value);
                break;
            case UartRegister.Dlm:
                _divisor = (ushort)((_divisor & 0x00FF) | (value << 8));
                break;
        }
    }

    private void WriteTransmitterHolding(byte value)
    {
        // Writing THR resets the THRE interrupt.
        _threInterrupt = false;
        if (Loopback)
        {
            // Loopback: the transmitter shift register feeds the receiver directly, and THR is
            // empty again at once.
            if (!_rx.TryPush(value, FifoCapacity))
            {
                // Overrun. With FIFOs the byte in the shift register is lost; without, it
                // overwrites RBR (datasheet "Line Status Register", bit 1).
                _overrun = true;
                if (!FifosEnabled)
                    _rx.ReplaceLast(value);
            }
            _threInterrupt = true;
            return;
        }
        if (!_tx.TryPush(value, FifoCapacity))
        {
            _transmitDiscarded++;
            return;
        }
        DrainTransmitter();
    }

    private void WriteFifoControl(byte value)
    {
        bool enable = (value & Fcr.Enable) != 0;
        if (enable != FifosEnabled)
        {
            // Changing FCR0 clears both FIFOs.
            _rx.Clear();
            ClearTransmitter();
        }
        if (!enable)
        {
            // FCR0 must be set for the other bits to be programmed.
            _fcr = 0;
            return;
        }
        if ((value & Fcr.ReceiverReset) != 0)
            _rx.Clear();
        if ((value & Fcr.TransmitterReset) != 0)
            ClearTransmitter();
        _fcr = (byte)(value & Fcr.Retained);
    }

    private void ClearTransmitter()
    {
        bool hadBytes = !_tx.IsEmpty;
        _tx.Clear();
        if (hadBytes)
            _threInterrupt = true; // the transmitter FIFO became empty
        _sinkBlocked = false;
    }

    /// <summary>Hands the transmitter FIFO to the sink. Bytes the sink refuses stay queued (THRE
    /// clear) until it calls <see cref="SinkWritable"/>.</summary>
    private void DrainTransmitter()
    {
        if (_tx.IsEmpty)
            return;
        int taken;
        if (_sink is { } sink)
        {
            Span<byte> staging = stackalloc byte[ByteFifo.Depth];
            int count = _tx.CopyTo(staging);
            taken = Math.Clamp(sink.TryWrite(staging[..count]), 0, count);
            _sinkBlocked = taken < count;
        }
        else
        {
            taken = _tx.Count; // nothing attached: the line goes nowhere
        }
        _tx.Discard(taken);
        if (_tx.IsEmpty)
            _threInterrupt = true; // THRE interrupt: the transmitter FIFO emptied
    }

    /// <summary>The highest-priority pending, enabled interrupt (datasheet "Interrupt
    /// Identification Register", table "Interrupt Control Functions"), or
    /// <see cref="Iir.NoInterruptPending"/>.</summary>
    private byte PendingInterrupt()
    {
        if ((_ier & Ier.Elsi) != 0 && _overrun)
            return Iir.ReceiverLineStatus;
        if ((_ier & Ier.Erbfi) != 0 && !_rx.IsEmpty)
        {
            if (!FifosEnabled || _rx.Count >= Fcr.TriggerLevel(_fcr))
                return Iir.ReceivedDataAvailable;
            return Iir.CharacterTimeout;
        }
        if ((_ier & Ier.Etbei) != 0 && _threInterrupt)
            return Iir.TransmitterHoldingRegisterEmpty;
        if ((_ier & Ier.Edssi) != 0 && _msrDeltas != 0)
            return Iir.ModemStatus;
        return Iir.NoInterruptPending;
    }

    private void UpdateInterruptLine()
    {
        bool level = PendingInterrupt() != Iir.NoInterruptPending;
        if (_irqGatedByOut2)
        {
            // In loopback the modem outputs, OUT2 among them, are forced inactive (datasheet
            // "Modem Control Register", bit 4), which closes the PC's IRQ gate.
            level &= (_mcr & (Mcr.Out2 | Mcr.Loop)) == Mcr.Out2;
        }
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irq.SetLevel(level);
        }
    }

    /// <summary>MSR bits 4–7: the host's modem inputs, or in loopback the modem outputs
    /// (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD).</summary>
    private byte ModemStatusLines()
    {
        if (!Loopback)
            return _modemInputs;
        byte lines = 0;
        if ((_mcr & Mcr.Rts) != 0)
            lines |= Msr.Cts;
        if ((_mcr & Mcr.Dtr) != 0)
            lines |= Msr.Dsr;
        if ((_mcr & Mcr.Out1) != 0)
            lines |= Msr.Ri;
        if ((_mcr & Mcr.Out2) != 0)
            lines |= Msr.Dcd;
        return lines;
    }

    private void RecordModemDeltas(byte before, byte after)
    {
        int changed = before ^ after;
        if ((changed & Msr.Cts) != 0)
            _msrDeltas |= Msr.DeltaCts;
        if ((changed & Msr.Dsr) != 0)
            _msrDeltas |= Msr.DeltaDsr;
        if ((before & Msr.Ri) != 0 && (after & Msr.Ri) == 0)
            _msrDeltas |= Msr.TrailingEdgeRi;
        if ((changed & Msr.Dcd) != 0)
            _msrDeltas |= Msr.DeltaDcd;
    }

    // The host is owed a ReceiverReady once the receiver has room after a short TryReceive (in
    // loopback the serial input is disconnected, so it takes anything).
    private bool TakeReceiverReady()
    {
        if (!_receiverWanted || (!Loopback && _rx.Count >= FifoCapacity))
            return false;
        _receiverWanted = false;
        return true;
    }

    // ---- host side --------------------------------------------------------------------------

    public void Attach(ISerialSink? sink)
    {
        lock (_lock)
        {
            _sink = sink;
            _sinkBlocked = false;
            _receiverWanted = false;
            DrainTransmitter();
            UpdateInterruptLine();
        }
    }

    public int TryReceive(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            // In loopback the serial input is disconnected from the receiver: bytes on the line
            // are lost, as on the real part.
            if (Loopback)
                return data.Length;
            int taken = 0;
            while (taken < data.Length && _rx.TryPush(data[taken], FifoCapacity))
                taken++;
            if (taken < data.Length)
                _receiverWanted = true;
            UpdateInterruptLine();
            return taken;
        }
    }

    public void SinkWritable()
    {
        lock (_lock)
        {
            if (!_sinkBlocked)
                return;
            _sinkBlocked = false;
            DrainTransmitter();
            UpdateInterruptLine();
        }
    }

    /// <summary>Sets the modem control inputs (CTS, DSR, RI, DCD) the host side drives; changes
    /// set the MSR delta bits and may raise the modem status interrupt. Ignored by MSR while in
    /// loopback. Initially <see cref="ModemInputs.Connected"/>.</summary>
    public void SetModemInputs(ModemInputs inputs)
    {
        lock (_lock)
        {
            byte before = ModemStatusLines();
            _modemInputs = (byte)((byte)inputs & Msr.StatusMask);
            RecordModemDeltas(before, ModemStatusLines());
            UpdateInterruptLine();
        }
    }
}

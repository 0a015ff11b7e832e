using Propolis.Core.Chardev;
using Propolis.Core.Hw.Uart;
using Propolis.Core.Intr;

namespace Propolis.Core.Tests.Hw.Uart;

/// <summary>Register offsets and bits under the names Linux's &lt;linux/serial_reg.h&gt; gives
/// them, so the tests read like the driver they imitate.</summary>
internal static class Reg
{
    public const ushort RX = 0, TX = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

    public const byte IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08, IER_ALL_INTR = 0x0F, IER_UUE = 0x40;
    public const byte IIR_NO_INT = 0x01, IIR_ID = 0x0E, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04, IIR_RLSI = 0x06, IIR_RX_TIMEOUT = 0x0C;
    public const byte IIR_FIFO_ENABLED = 0xC0, IIR_64BYTE_FIFO = 0x20;
    public const byte FCR_ENABLE_FIFO = 0x01, FCR_CLEAR_RCVR = 0x02, FCR_CLEAR_XMIT = 0x04, FCR7_64BYTE = 0x20;
    public const byte FCR_R_TRIG_00 = 0x00, FCR_R_TRIG_01 = 0x40, FCR_R_TRIG_10 = 0x80, FCR_R_TRIG_11 = 0xC0;
    public const byte LCR_DLAB = 0x80, LCR_WLEN8 = 0x03, LCR_CONF_MODE_A = 0x80, LCR_CONF_MODE_B = 0xBF;
    public const byte MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
    public const byte LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
    public const byte MSR_DCTS = 0x01, MSR_DDSR = 0x02, MSR_TERI = 0x04, MSR_DDCD = 0x08;
    public const byte MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80, MSR_STATUS_BITS = 0xF0;
}

/// <summary>An interrupt line that records every level change.</summary>
internal sealed class RecordingIrqLine(uint gsi = 4) : IIrqLine
{
    private readonly Lock _lock = new();
    private readonly List<bool> _changes = new(capacity: 4096);
    private bool _level;

    public uint Gsi => gsi;

    public bool Level { get { lock (_lock) return _level; } }

    public int Pulses { get; private set; }

    /// <summary>Number of deasserted→asserted transitions (what an edge-triggered ISA pin sees).</summary>
    public int RisingEdges { get { lock (_lock) return _changes.Count(static level => level); } }

    public List<bool> Changes { get { lock (_lock) return [.. _changes]; } }

    public void SetLevel(bool asserted)
    {
        lock (_lock)
        {
            if (asserted != _level && _changes.Count < _changes.Capacity)
                _changes.Add(asserted);
            _level = asserted;
        }
    }

    public void Pulse()
    {
        lock (_lock)
            Pulses++;
    }
}

/// <summary>A host end that takes at most <see cref="Room"/> bytes until the test frees more, and
/// counts ReceiverReady calls. Preallocated: it allocates nothing per byte.</summary>
internal sealed class RecordingSink(int capacity = 1 << 16) : ISerialSink
{
    private readonly byte[] _buffer = new byte[capacity];

    public int Length { get; private set; }

    /// <summary>How many more bytes TryWrite takes (unbounded by default).</summary>
    public int Room { get; set; } = int.MaxValue;

    public int ReceiverReadyCalls { get; private set; }

    public int ShortWrites { get; private set; }

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

    public int TryWrite(ReadOnlySpan<byte> data)
    {
        int take = Math.Min(Math.Min(data.Length, Room), _buffer.Length - Length);
        data[..take].CopyTo(_buffer.AsSpan(Length));
        Length += take;
        if (Room != int.MaxValue)
            Room -= take;
        if (take < data.Length)
            ShortWrites++;
        return take;
    }

    public void ReceiverReady() => ReceiverReadyCalls++;

    public void Clear() => Length = 0;
}

/// <summary>The guest's view: byte-wide inb/outb on the UART's eight ports.</summary>
internal sealed class Guest(Uart16550 uart)
{
    public Uart16550 Uart => uart;

    public byte In(ushort offset)
    {
        Span<byte> data = stackalloc byte[1];
        uart.PortRead(offset, data);
        return data[0];
    }

    public void Out(ushort offset, byte value) => uart.PortWrite(offset, [value]);

    public byte Iir => In(Reg.IIR);

    public byte Lsr => In(Reg.LSR);

    public static (Uart16550 Uart, Guest Guest, RecordingIrqLine Irq, RecordingSink Sink) Create()
    {
        var irq = new RecordingIrqLine();
        var uart = new Uart16550(irq);
        var sink = new RecordingSink();
        uart.Attach(sink);
        return (uart, new Guest(uart), irq, sink);
    }
}

namespace Propolis.Core.Hw.Uart;

// Register layout of the National Semiconductor PC16550D ("16550A"), as given in its datasheet
// (TI SNLS378, "Register Addresses" table and the per-register sections cited below). Every offset,
// bit and reset value the UART uses is named here, once.

/// <summary>The registers of a 16550, as decoded from (offset, DLAB, direction).</summary>
internal enum UartRegister : byte
{
    /// <summary>No register: reads return 0, writes are ignored.</summary>
    None,
    /// <summary>Receiver Buffer Register (read, DLAB=0).</summary>
    Rbr,
    /// <summary>Transmitter Holding Register (write, DLAB=0).</summary>
    Thr,
    /// <summary>Interrupt Enable Register (DLAB=0).</summary>
    Ier,
    /// <summary>Interrupt Identification Register (read).</summary>
    Iir,
    /// <summary>FIFO Control Register (write).</summary>
    Fcr,
    /// <summary>Line Control Register.</summary>
    Lcr,
    /// <summary>Modem Control Register.</summary>
    Mcr,
    /// <summary>Line Status Register (read).</summary>
    Lsr,
    /// <summary>Modem Status Register (read).</summary>
    Msr,
    /// <summary>Scratch Register.</summary>
    Scr,
    /// <summary>Divisor Latch, least significant byte (DLAB=1).</summary>
    Dll,
    /// <summary>Divisor Latch, most significant byte (DLAB=1).</summary>
    Dlm,
}

/// <summary>Which values of LCR.DLAB an entry of the register map applies to.</summary>
internal enum DlabMatch : byte { Clear, Set, Any }

/// <summary>One row of the register map: at <paramref name="Offset"/>, with DLAB matching
/// <paramref name="Dlab"/>, a read reaches <paramref name="Read"/> and a write <paramref name="Write"/>.</summary>
internal readonly record struct RegisterDecode(byte Offset, DlabMatch Dlab, UartRegister Read, UartRegister Write);

/// <summary>The register map (PC16550D datasheet, Table "Register Addresses"), and its decoder.</summary>
internal static class UartRegisterMap
{
    /// <summary>Number of I/O ports a 16550 decodes.</summary>
    public const int Length = 8;

    public static readonly RegisterDecode[] Table =
    [
        new(0, DlabMatch.Clear, UartRegister.Rbr, UartRegister.Thr),
        new(0, DlabMatch.Set, UartRegister.Dll, UartRegister.Dll),
        new(1, DlabMatch.Clear, UartRegister.Ier, UartRegister.Ier),
        new(1, DlabMatch.Set, UartRegister.Dlm, UartRegister.Dlm),
        new(2, DlabMatch.Any, UartRegister.Iir, UartRegister.Fcr),
        new(3, DlabMatch.Any, UartRegister.Lcr, UartRegister.Lcr),
        new(4, DlabMatch.Any, UartRegister.Mcr, UartRegister.Mcr),
        // Writing LSR or MSR is for factory test only ("Line Status Register": "this register
        // should not be written to"); a write does nothing here.
        new(5, DlabMatch.Any, UartRegister.Lsr, UartRegister.None),
        new(6, DlabMatch.Any, UartRegister.Msr, UartRegister.None),
        new(7, DlabMatch.Any, UartRegister.Scr, UartRegister.Scr),
    ];

    // Decoded once: index is (offset << 1) | dlab.
    private static readonly UartRegister[] s_read = Build(static e => e.Read);
    private static readonly UartRegister[] s_write = Build(static e => e.Write);

    public static UartRegister ForRead(int offset, bool dlab) => s_read[Index(offset, dlab)];

    public static UartRegister ForWrite(int offset, bool dlab) => s_write[Index(offset, dlab)];

    private static int Index(int offset, bool dlab) => (offset << 1) | (dlab ? 1 : 0);

    private static UartRegister[] Build(Func<RegisterDecode, UartRegister> select)
    {
        var map = new UartRegister[Length * 2];
        var seen = new bool[Length * 2];
        foreach (var entry in Table)
        {
            for (int dlab = 0; dlab < 2; dlab++)
            {
                if (entry.Dlab == DlabMatch.Clear && dlab == 1 || entry.Dlab == DlabMatch.Set && dlab == 0)
                    continue;
                int index = Index(entry.Offset, dlab == 1);
                if (seen[index])
                    throw new InvalidOperationException($"UART register map decodes offset {entry.Offset} (DLAB={dlab}) twice.");
                seen[index] = true;
                map[index] = select(entry);
            }
        }
        return map;
    }
}

/// <summary>Interrupt Enable Register bits (datasheet "Interrupt Enable Register").</summary>
internal static class Ier
{
    /// <summary>Enable Received Data Available interrupt (and, with FIFOs, the timeout interrupt).</summary>
    public const byte Erbfi = 1 << 0;
    /// <summary>Enable Transmitter Holding Register Empty interrupt.</summary>
    public const byte Etbei = 1 << 1;
    /// <summary>Enable Receiver Line Status interrupt.</summary>
    public const byte Elsi = 1 << 2;
    /// <summary>Enable Modem Status interrupt.</summary>
    public const byte Edssi = 1 << 3;
    /// <summary>Bits 4–7 are always 0 on a 16550.</summary>
    public const byte Writable = Erbfi | Etbei | Elsi | Edssi;
}

/// <summary>Interrupt Identification Register values (datasheet "Interrupt Identification
/// Register", table "Interrupt Control Functions"), highest priority first.</summary>
internal static class Iir
{
    /// <summary>Bit 0 set: no interrupt pending.</summary>
    public const byte NoInterruptPending = 0x01;
    /// <summary>Priority 1: overrun, parity, framing error or break. Reset by reading LSR.</summary>
    public const byte ReceiverLineStatus = 0x06;
    /// <summary>Priority 2: receiver data available (FIFO at or above the trigger level). Reset
    /// when the FIFO drops below the trigger level.</summary>
    public const byte ReceivedDataAvailable = 0x04;
    /// <summary>Priority 2: character timeout (FIFO mode only; data below the trigger level and no
    /// FIFO activity for four character times). Reset by reading RBR.</summary>
    public const byte CharacterTimeout = 0x0C;
    /// <summary>Priority 3: transmitter holding register empty. Reset by reading IIR (when it is
    /// the source) or by writing THR.</summary>
    public const byte TransmitterHoldingRegisterEmpty = 0x02;
    /// <summary>Priority 4: CTS, DSR, RI or DCD changed. Reset by reading MSR.</summary>
    public const byte ModemStatus = 0x00;
    /// <summary>Bits 6–7: both set when FCR bit 0 enables the FIFOs.</summary>
    public const byte FifosEnabled = 0xC0;
}

/// <summary>FIFO Control Register bits (datasheet "FIFO Control Register").</summary>
internal static class Fcr
{
    /// <summary>Enables both FIFOs. Changing it clears both FIFOs; other bits are ignored while clear.</summary>
    public const byte Enable = 1 << 0;
    /// <summary>Clears the receiver FIFO (self-clearing).</summary>
    public const byte ReceiverReset = 1 << 1;
    /// <summary>Clears the transmitter FIFO (self-clearing).</summary>
    public const byte TransmitterReset = 1 << 2;
    /// <summary>RXRDY/TXRDY pin mode; no effect here, kept for completeness.</summary>
    public const byte DmaMode = 1 << 3;
    /// <summary>Bits 6–7: receiver trigger level, 1, 4, 8 or 14 bytes.</summary>
    public const byte TriggerMask = 0xC0;
    public const int TriggerShift = 6;
    /// <summary>The bits the UART remembers.</summary>
    public const byte Retained = Enable | DmaMode | TriggerMask;

    public static int TriggerLevel(byte fcr) => ((fcr & TriggerMask) >> TriggerShift) switch
    {
        0 => 1,
        1 => 4,
        2 => 8,
        _ => 14,
    };
}

/// <summary>Line Control Register bits (datasheet "Line Control Register").</summary>
internal static class Lcr
{
    /// <summary>Divisor Latch Access Bit: offsets 0 and 1 reach DLL and DLM.</summary>
    public const byte Dlab = 1 << 7;
}

/// <summary>Modem Control Register bits (datasheet "Modem Control Register").</summary>
internal static class Mcr
{
    public const byte Dtr = 1 << 0;
    public const byte Rts = 1 << 1;
    public const byte Out1 = 1 << 2;
    /// <summary>On a PC the UART's INTR output reaches the interrupt controller through a gate
    /// driven by OUT2.</summary>
    public const byte Out2 = 1 << 3;
    /// <summary>Local loopback: TX goes to RX, the modem outputs drive the modem inputs, the
    /// serial input and the modem output pins are disconnected.</summary>
    public const byte Loop = 1 << 4;
    /// <summary>Bits 5–7 are always 0 on a 16550.</summary>
    public const byte Writable = Dtr | Rts | Out1 | Out2 | Loop;
}

/// <summary>Line Status Register bits (datasheet "Line Status Register").</summary>
internal static class Lsr
{
    /// <summary>Data Ready: at least one byte in RBR or the receiver FIFO.</summary>
    public const byte DataReady = 1 << 0;
    /// <summary>Overrun Error: a byte arrived with RBR (FIFO) full. Reset by reading LSR.</summary>
    public const byte OverrunError = 1 << 1;
    /// <summary>Transmitter Holding Register Empty (with FIFOs: transmitter FIFO empty).</summary>
    public const byte ThrEmpty = 1 << 5;
    /// <summary>Transmitter Empty: THR (FIFO) and the shift register both empty.</summary>
    public const byte TransmitterEmpty = 1 << 6;
}

/// <summary>Modem Status Register bits (datasheet "Modem Status Register").</summary>
internal static class Msr
{
    public const byte DeltaCts = 1 << 0;
    public const byte DeltaDsr = 1 << 1;
    /// <summary>Trailing Edge Ring Indicator: RI went from asserted to deasserted.</summary>
    public const byte TrailingEdgeRi = 1 << 2;
    public const byte DeltaDcd = 1 << 3;
    public const byte DeltaMask = 0x0F;
    public const byte Cts = 1 << 4;
    public const byte Dsr = 1 << 5;
    public const byte Ri = 1 << 6;
    public const byte Dcd = 1 << 7;
    public const byte StatusMask = 0xF0;
}

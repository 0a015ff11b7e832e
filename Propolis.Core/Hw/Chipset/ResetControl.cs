using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;

namespace Propolis.Core.Hw.Chipset;

/// <summary>The PIIX reset control register at I/O port 0xCF9 (82371AB datasheet, "RC—Reset
/// Control Register (I/O)"): bit 1 SRST selects a hard (1) or soft (0) reset, bit 2
/// RCPU starts it on a 0→1 write, bit 3 FULL_RST asks for power to be cycled. Any reset request
/// goes to the machine as a platform reset (as QEMU and propolis treat both kinds).</summary>
/// <remarks>The port lies inside the dword of CONFIG_ADDRESS; <see cref="Pci.PciBus"/> passes it byte
/// accesses at 0xCF9 (set <see cref="Pci.PciBus.ResetControl"/>).</remarks>
public sealed partial class ResetControl(IMachineControl control, ILogger<ResetControl>? logger = null) : IPortIoHandler
{
    public const byte SystemReset = 1 << 1;
    public const byte ResetCpu = 1 << 2;
    public const byte FullReset = 1 << 3;

    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;
    private byte _value;

    public void PortRead(ushort offset, Span<byte> data)
    {
        // RCPU is write-only and reads zero.
        data.Fill(0);
        data[0] = (byte)(Volatile.Read(ref _value) & (SystemReset | FullReset));
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        var value = data[0];
        Volatile.Write(ref _value, (byte)(value & (SystemReset | FullReset)));
        if ((value & ResetCpu) != 0)
        {
            var kind = (value & SystemReset) != 0 ? "hard" : "soft";
            LogReset(kind, value);
            control.RequestReset((value & SystemReset) != 0 ? "reset control register 0xCF9 (hard reset)" : "reset control register 0xCF9 (soft reset)");
        }
    }

    public void Reset() => Volatile.Write(ref _value, 0);

    [LoggerMessage(Level = LogLevel.Information, Message = "guest requested a {Kind} reset through 0xCF9 (value 0x{Value:X2})")]
    private partial void LogReset(string kind, byte value);
}

/// <summary>System control port A at 0x92 ("fast A20 and init", PS/2 convention; ICH datasheets
/// PORT92): bit 1 A20 gate, bit 0 a 0→1 write resets the processor. A20 is always enabled in this
/// machine, so bit 1 reads one whatever is written.</summary>
public sealed partial class FastA20Port(IMachineControl control, ILogger<FastA20Port>? logger = null) : IPortIoHandler
{
    public const ushort Port = 0x92;
    public const byte FastInit = 1 << 0;
    public const byte A20Enable = 1 << 1;

    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;

    public void PortRead(ushort offset, Span<byte> data)
    {
        data.Fill(0);
        data[0] = A20Enable;
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        if ((data[0] & FastInit) != 0)
        {
            LogReset(data[0]);
            control.RequestReset("fast init through port 0x92");
        }
        else if ((data[0] & A20Enable) == 0)
        {
            LogA20Ignored();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "guest requested a reset through port 0x92 (value 0x{Value:X2})")]
    private partial void LogReset(byte value);

    [LoggerMessage(Level = LogLevel.Debug, Message = "guest cleared A20 through port 0x92; A20 stays enabled")]
    private partial void LogA20Ignored();
}

/// <summary>The POST code port 0x80: firmware writes progress codes here. The last code is kept
/// (readable, and by the host through <see cref="LastCode"/>) and logged at trace level.</summary>
public sealed partial class PostCodePort(ILogger<PostCodePort>? logger = null) : IPortIoHandler
{
    public const ushort Port = 0x80;

    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;
    private int _last;

    public byte LastCode => (byte)Volatile.Read(ref _last);

    public void PortRead(ushort offset, Span<byte> data)
    {
        data.Fill(0);
        data[0] = LastCode;
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        Volatile.Write(ref _last, data[0]);
        LogPostCode(data[0]);
    }

    public void Reset() => Volatile.Write(ref _last, 0);

    [LoggerMessage(Level = LogLevel.Trace, Message = "POST code 0x{Code:X2}")]
    private partial void LogPostCode(byte code);
}

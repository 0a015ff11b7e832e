using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Propolis.Core.Buses;

/// <summary>The x86 I/O port space (0x0000–0xFFFF). Devices claim ranges; a vCPU's IN/OUT exit
/// is dispatched to the handler whose range contains the port, with the offset from the
/// range's base.</summary>
/// <remarks>A read no device claims returns all ones (as an ISA bus with nothing driving it does)
/// and a write is dropped; each is logged at debug level once per port. Dispatch is a binary
/// search over an immutable snapshot and allocates nothing.</remarks>
public sealed partial class PortIoBus
{
    private readonly RangeTable<IPortIoHandler> _table = new();
    private readonly ILogger _logger;
    private readonly ulong[] _readLogged = new ulong[65536 / 64];
    private readonly ulong[] _writeLogged = new ulong[65536 / 64];

    public PortIoBus(ILogger<PortIoBus>? logger = null)
    {
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Claims ports [<paramref name="port"/>, <paramref name="port"/> + <paramref name="length"/>).</summary>
    /// <exception cref="BusConflictException">Some port in the range is already claimed.</exception>
    public void Register(ushort port, ushort length, IPortIoHandler handler, string owner)
    {
        if (length == 0 || port + length > 0x1_0000)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"port range 0x{port:X}+{length} for {owner} is empty or runs past 0xFFFF");
        }
        _table.Add(port, (ulong)port + length - 1, handler, owner, "port I/O bus");
    }

    /// <summary>Releases the range that starts at <paramref name="port"/>.</summary>
    public bool Unregister(ushort port) => _table.Remove(port);

    /// <summary>The claimed ranges, ascending.</summary>
    public IReadOnlyList<BusRange> Ranges => Array.ConvertAll(_table.Snapshot, e => e.Range);

    public void Read(ushort port, Span<byte> data)
    {
        if (_table.TryFind(port, out var e))
        {
            e.Handler.PortRead((ushort)(port - e.Range.Start), data);
            return;
        }
        data.Fill(0xFF);
        if (FirstTime(_readLogged, port))
        {
            LogUnclaimedRead(port, data.Length);
        }
    }

    public void Write(ushort port, ReadOnlySpan<byte> data)
    {
        if (_table.TryFind(port, out var e))
        {
            e.Handler.PortWrite((ushort)(port - e.Range.Start), data);
            return;
        }
        if (FirstTime(_writeLogged, port))
        {
            LogUnclaimedWrite(port, data.Length);
        }
    }

    private static bool FirstTime(ulong[] bits, ushort port)
    {
        var mask = 1UL << (port & 63);
        ref var word = ref bits[port >> 6];
        return (Volatile.Read(ref word) & mask) == 0 && (Interlocked.Or(ref word, mask) & mask) == 0;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "unclaimed port I/O read of {Size} byte(s) at 0x{Port:X4} returns all ones (logged once per port)")]
    private partial void LogUnclaimedRead(ushort port, int size);

    [LoggerMessage(Level = LogLevel.Debug, Message = "unclaimed port I/O write of {Size} byte(s) at 0x{Port:X4} dropped (logged once per port)")]
    private partial void LogUnclaimedWrite(ushort port, int size);
}

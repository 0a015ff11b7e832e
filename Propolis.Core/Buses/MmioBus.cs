using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Propolis.Core.Buses;

/// <summary>Guest-physical MMIO space outside RAM. Same rules as <see cref="PortIoBus"/>:
/// the handler sees the offset from its range's base; unclaimed reads return all ones
/// (a master abort) and unclaimed writes are dropped, each logged once per address.</summary>
public sealed partial class MmioBus
{
    /// <summary>At most this many distinct unclaimed addresses are remembered for logging;
    /// a guest probing more cannot make the log set grow without bound.</summary>
    private const int MaxLoggedAddresses = 4096;

    private readonly RangeTable<IMmioHandler> _table = new();
    private readonly ILogger _logger;
    private readonly HashSet<ulong> _logged = [];
    private bool _logLimitReported;

    public MmioBus(ILogger<MmioBus>? logger = null)
    {
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Claims [<paramref name="address"/>, <paramref name="address"/> + <paramref name="length"/>).</summary>
    /// <exception cref="BusConflictException">Part of the range is already claimed.</exception>
    public void Register(ulong address, ulong length, IMmioHandler handler, string owner)
    {
        if (length == 0 || length - 1 > ulong.MaxValue - address)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"MMIO range 0x{address:X}+0x{length:X} for {owner} is empty or wraps");
        }
        _table.Add(address, address + (length - 1), handler, owner, "MMIO bus");
    }

    public bool Unregister(ulong address) => _table.Remove(address);

    public IReadOnlyList<BusRange> Ranges => Array.ConvertAll(_table.Snapshot, e => e.Range);

    public void Read(ulong address, Span<byte> data)
    {
        if (_table.TryFind(address, out var e))
        {
            e.Handler.MmioRead(address - e.Range.Start, data);
            return;
        }
        data.Fill(0xFF);
        if (FirstTime(address))
        {
            LogUnclaimedRead(address, data.Length);
        }
    }

    public void Write(ulong address, ReadOnlySpan<byte> data)
    {
        if (_table.TryFind(address, out var e))
        {
            e.Handler.MmioWrite(address - e.Range.Start, data);
            return;
        }
        if (FirstTime(address))
        {
            LogUnclaimedWrite(address, data.Length);
        }
    }

    // Only reached for unclaimed accesses, which a well-behaved guest makes a handful of times.
    private bool FirstTime(ulong address)
    {
        lock (_logged)
        {
            if (_logged.Count >= MaxLoggedAddresses)
            {
                if (!_logLimitReported)
                {
                    _logLimitReported = true;
                    LogLimit(MaxLoggedAddresses);
                }
                return false;
            }
            return _logged.Add(address);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "unclaimed MMIO read of {Size} byte(s) at 0x{Address:X} returns all ones (logged once per address)")]
    private partial void LogUnclaimedRead(ulong address, int size);

    [LoggerMessage(Level = LogLevel.Debug, Message = "unclaimed MMIO write of {Size} byte(s) at 0x{Address:X} dropped (logged once per address)")]
    private partial void LogUnclaimedWrite(ulong address, int size);

    [LoggerMessage(Level = LogLevel.Debug, Message = "more than {Count} distinct unclaimed MMIO addresses; no longer logging them")]
    private partial void LogLimit(int count);
}

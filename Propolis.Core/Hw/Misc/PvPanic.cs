using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;

namespace Propolis.Core.Hw.Misc;

/// <summary>pvpanic event bits (QEMU docs/specs/pvpanic.rst).</summary>
[Flags]
public enum PvPanicEvents : byte
{
    /// <summary>The guest panicked.</summary>
    Panicked = 1 << 0,
    /// <summary>The guest panicked and is loading a crash kernel.</summary>
    CrashLoaded = 1 << 1,
}

/// <summary>QEMU's pvpanic ISA device at port 0x505 (docs/specs/pvpanic.rst): a read returns the
/// events the device supports; the guest writes the event bits when it panics. A write is logged
/// as a guest panic and raised as <see cref="GuestPanicked"/>; counts are kept for the host.</summary>
public sealed partial class PvPanic(ILogger<PvPanic>? logger = null) : IPortIoHandler
{
    public const ushort DefaultPort = 0x505;
    public const PvPanicEvents Supported = PvPanicEvents.Panicked | PvPanicEvents.CrashLoaded;

    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;
    private int _panics;

    /// <summary>Raised on the vCPU thread with the bits the guest wrote (unsupported bits removed).</summary>
    public event Action<PvPanicEvents>? GuestPanicked;

    public int PanicCount => Volatile.Read(ref _panics);

    public void PortRead(ushort offset, Span<byte> data)
    {
        data.Fill(0);
        data[0] = (byte)Supported;
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        var events = (PvPanicEvents)data[0] & Supported;
        if (events == 0)
            return;
        Interlocked.Increment(ref _panics);
        LogPanic(events);
        GuestPanicked?.Invoke(events);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "guest panic (pvpanic events: {Events})")]
    private partial void LogPanic(PvPanicEvents events);
}

namespace Propolis.Core.Buses;

/// <summary>A device's port I/O registers. Called on a vCPU thread: must not block on I/O,
/// must not throw for any guest-supplied value, must not allocate.</summary>
/// <remarks><paramref name="offset"/> is relative to the base of the registered range;
/// <paramref name="data"/> is 1, 2 or 4 bytes, little-endian, as the guest accessed it.
/// A read must fill all of <paramref name="data"/>.</remarks>
public interface IPortIoHandler
{
    void PortRead(ushort offset, Span<byte> data);
    void PortWrite(ushort offset, ReadOnlySpan<byte> data);
}

/// <summary>A device's memory-mapped registers. Same rules as <see cref="IPortIoHandler"/>;
/// <paramref name="data"/> is 1, 2, 4 or 8 bytes.</summary>
public interface IMmioHandler
{
    void MmioRead(ulong offset, Span<byte> data);
    void MmioWrite(ulong offset, ReadOnlySpan<byte> data);
}

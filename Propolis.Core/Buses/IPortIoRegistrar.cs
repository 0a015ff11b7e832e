namespace Propolis.Core.Buses;

/// <summary>Where a device claims a range of I/O ports (the port I/O bus).</summary>
public interface IPortIoRegistrar
{
    /// <summary>Routes guest accesses to ports [<paramref name="basePort"/>,
    /// <paramref name="basePort"/> + <paramref name="length"/>) to <paramref name="handler"/>,
    /// with offsets relative to <paramref name="basePort"/>. Throws if the range overlaps one
    /// already registered.</summary>
    void Register(ushort basePort, ushort length, IPortIoHandler handler);
}

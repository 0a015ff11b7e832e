namespace Propolis.Core.Buses;

/// <summary>Claims I/O ports [<paramref name="port"/>, <paramref name="port"/> +
/// <paramref name="length"/>) for <paramref name="handler"/>, offsets relative to
/// <paramref name="port"/>; <paramref name="owner"/> names the device in conflict errors.</summary>
/// <remarks>The shape of <c>PortIoBus.Register</c>: a device helper takes <c>bus.Register</c>
/// and needs no reference to the bus itself (tests pass a recording lambda).</remarks>
public delegate void PortIoRegistration(ushort port, ushort length, IPortIoHandler handler, string owner);

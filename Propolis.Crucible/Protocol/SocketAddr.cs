using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// Rust's <c>std::net::SocketAddr</c> as serde encodes it for a binary format: an enum
/// (<c>u32</c> 0 = V4, 1 = V6) whose payload is the address octets in network order
/// (4 or 16 bytes, no length) followed by the port as a little-endian <c>u16</c>. An IPv6
/// address's flow info and scope id are not on the wire and come back as zero.
/// </summary>
public readonly record struct SocketAddr
{
    private const uint V4Tag = 0;
    private const uint V6Tag = 1;

    // Address octets in network order, read as a big-endian number (V4: low 32 bits).
    private readonly UInt128 _address;

    private SocketAddr(bool isV6, UInt128 address, ushort port)
    {
        IsV6 = isV6;
        _address = address;
        Port = port;
    }

    public bool IsV6 { get; }

    public ushort Port { get; }

    public static SocketAddr V4(ReadOnlySpan<byte> octets, ushort port)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(octets.Length, 4, nameof(octets));
        return new SocketAddr(false, BinaryPrimitives.ReadUInt32BigEndian(octets), port);
    }

    public static SocketAddr V6(ReadOnlySpan<byte> octets, ushort port)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(octets.Length, 16, nameof(octets));
        return new SocketAddr(true, BinaryPrimitives.ReadUInt128BigEndian(octets), port);
    }

    public static SocketAddr FromEndPoint(IPEndPoint endPoint)
    {
        Span<byte> octets = stackalloc byte[16];
        endPoint.Address.TryWriteBytes(octets, out int written);
        return endPoint.AddressFamily == AddressFamily.InterNetworkV6
            ? V6(octets[..written], (ushort)endPoint.Port)
            : V4(octets[..written], (ushort)endPoint.Port);
    }

    /// <summary>Parses <c>127.0.0.1:123</c> or <c>[ff1d::12e]:456</c>.</summary>
    public static SocketAddr Parse(string text) => FromEndPoint(IPEndPoint.Parse(text));

    /// <summary>Writes the address octets (4 or 16) and returns how many.</summary>
    public int CopyAddressTo(Span<byte> destination)
    {
        if (IsV6)
        {
            BinaryPrimitives.WriteUInt128BigEndian(destination, _address);
            return 16;
        }
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)_address);
        return 4;
    }

    public IPEndPoint ToEndPoint()
    {
        Span<byte> octets = stackalloc byte[16];
        int n = CopyAddressTo(octets);
        return new IPEndPoint(new IPAddress(octets[..n]), Port);
    }

    public override string ToString() => ToEndPoint().ToString();

    internal static SocketAddr Read(ref BincodeReader r)
    {
        uint tag = r.ReadVariant(2, "SocketAddr");
        return tag == V4Tag
            ? new SocketAddr(false, BinaryPrimitives.ReadUInt32BigEndian(r.ReadFixed(4)), r.ReadU16())
            : new SocketAddr(true, BinaryPrimitives.ReadUInt128BigEndian(r.ReadFixed(16)), r.ReadU16());
    }

    internal void Write(ref BincodeWriter w)
    {
        Span<byte> octets = stackalloc byte[16];
        int n = CopyAddressTo(octets);
        w.WriteVariant(IsV6 ? V6Tag : V4Tag);
        w.WriteFixed(octets[..n]);
        w.WriteU16(Port);
    }
}

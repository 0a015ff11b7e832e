using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Propolis.Crucible.Protocol.Bincode;

/// <summary>
/// Writes values in bincode 1.3 legacy encoding (see <see cref="BincodeReader"/>).
/// A writer made with <see cref="Measure"/> writes nothing and only counts, so a single
/// encoding routine serves both to size a frame and to fill it.
/// </summary>
internal ref struct BincodeWriter
{
    private readonly Span<byte> _destination;
    private readonly bool _measuring;
    private long _position;

    public BincodeWriter(Span<byte> destination)
    {
        _destination = destination;
        _measuring = false;
        _position = 0;
    }

    private BincodeWriter(bool measuring)
    {
        _destination = default;
        _measuring = measuring;
        _position = 0;
    }

    /// <summary>A writer that only counts bytes.</summary>
    public static BincodeWriter Measure() => new(measuring: true);

    /// <summary>Bytes written (or counted) so far.</summary>
    public readonly long Position => _position;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Reserve(int count)
    {
        long at = _position;
        _position += count;
        // Writing past the destination is a sizing bug in this assembly, not bad input:
        // the slice throws ArgumentOutOfRangeException.
        return _measuring ? default : _destination.Slice(checked((int)at), count);
    }

    public void WriteU8(byte value)
    {
        if (_measuring) { _position += 1; return; }
        Reserve(1)[0] = value;
    }

    public void WriteU16(ushort value)
    {
        if (_measuring) { _position += 2; return; }
        BinaryPrimitives.WriteUInt16LittleEndian(Reserve(2), value);
    }

    public void WriteU32(uint value)
    {
        if (_measuring) { _position += 4; return; }
        BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), value);
    }

    public void WriteU64(ulong value)
    {
        if (_measuring) { _position += 8; return; }
        BinaryPrimitives.WriteUInt64LittleEndian(Reserve(8), value);
    }

    public void WriteBool(bool value) => WriteU8(value ? (byte)1 : (byte)0);

    public void WriteOptionTag(bool isSome) => WriteU8(isSome ? (byte)1 : (byte)0);

    public void WriteVariant(uint index) => WriteU32(index);

    public void WriteLength(int count) => WriteU64((ulong)count);

    /// <summary>Raw bytes without a length (fixed-size arrays).</summary>
    public void WriteFixed(scoped ReadOnlySpan<byte> bytes)
    {
        if (_measuring) { _position += bytes.Length; return; }
        bytes.CopyTo(Reserve(bytes.Length));
    }

    /// <summary>A byte buffer: u64 length then the bytes.</summary>
    public void WriteByteBuf(scoped ReadOnlySpan<byte> bytes)
    {
        WriteLength(bytes.Length);
        WriteFixed(bytes);
    }

    public void WriteUuid(Guid value)
    {
        WriteU64(16);
        if (_measuring) { _position += 16; return; }
        value.TryWriteBytes(Reserve(16), bigEndian: true, out _);
    }

    public void WriteString(string value)
    {
        int count = Encoding.UTF8.GetByteCount(value);
        WriteLength(count);
        if (_measuring) { _position += count; return; }
        Encoding.UTF8.GetBytes(value, Reserve(count));
    }
}

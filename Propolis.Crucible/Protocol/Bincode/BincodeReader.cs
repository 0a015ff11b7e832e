using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace Propolis.Crucible.Protocol.Bincode;

/// <summary>
/// Reads values in the encoding of bincode 1.3 with its legacy options, which is what
/// <c>bincode::serialize</c> / <c>bincode::deserialize</c> use in crucible-protocol:
/// fixed-width little-endian integers, <c>usize</c> as <c>u64</c>, <c>bool</c> as one byte
/// (0 or 1, anything else rejected), <c>Option</c> as a one-byte tag, enum variants as a
/// <c>u32</c> index in declaration order, and <c>Vec</c>/<c>String</c>/byte buffers as a
/// <c>u64</c> length followed by the elements.
/// </summary>
/// <remarks>
/// The reader spans a whole frame and starts after the length prefix, so positions are
/// frame offsets. Every violation is raised as <see cref="CrucibleProtocolException"/>
/// through an out-of-line throw helper. Nothing is allocated except the values the
/// caller asks for (strings, arrays), and a sequence length is checked against the bytes
/// left in the frame before anything is allocated for it.
/// </remarks>
internal ref struct BincodeReader
{
    private readonly ReadOnlySpan<byte> _frame;
    private int _position;

    public BincodeReader(ReadOnlySpan<byte> frame, int start)
    {
        _frame = frame;
        _position = start;
    }

    /// <summary>Frame offset of the next byte to read.</summary>
    public readonly int Position => _position;

    /// <summary>Bytes left in the frame.</summary>
    public readonly int Remaining => _frame.Length - _position;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(int count)
    {
        if ((uint)count > (uint)(_frame.Length - _position))
        {
            ProtocolThrow.Throw(ProtocolErrorKind.Truncated, _position,
                $"need {count} more bytes, the frame has {_frame.Length - _position} left");
        }
        ReadOnlySpan<byte> s = _frame.Slice(_position, count);
        _position += count;
        return s;
    }

    public byte ReadU8() => Take(1)[0];

    public ushort ReadU16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    public uint ReadU32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ulong ReadU64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    /// <summary>Raw bytes of a fixed-size array (<c>[u8; N]</c> is a tuple: no length).</summary>
    public ReadOnlySpan<byte> ReadFixed(int count) => Take(count);

    public bool ReadBool()
    {
        int at = _position;
        byte b = ReadU8();
        if (b > 1)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.InvalidBool, at, $"bool byte is {b}, not 0 or 1");
        }
        return b != 0;
    }

    /// <summary>An <c>Option</c> tag: false for None, true for Some.</summary>
    public bool ReadOptionTag()
    {
        int at = _position;
        byte b = ReadU8();
        if (b > 1)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.InvalidOptionTag, at, $"Option tag is {b}, not 0 or 1");
        }
        return b != 0;
    }

    /// <summary>An enum variant index, which must be below <paramref name="variantCount"/>.</summary>
    public uint ReadVariant(uint variantCount, string enumName)
    {
        int at = _position;
        uint tag = ReadU32();
        if (tag >= variantCount)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.InvalidEnumTag, at,
                $"{enumName} variant {tag} does not exist (it has {variantCount})");
        }
        return tag;
    }

    /// <summary>
    /// A sequence length, checked so that <paramref name="minElementSize"/> bytes per
    /// element still fit in the frame. This bounds every allocation by the frame size.
    /// </summary>
    public int ReadLength(int minElementSize)
    {
        int at = _position;
        ulong count = ReadU64();
        ulong fits = (ulong)(_frame.Length - _position) / (ulong)minElementSize;
        if (count > fits)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.LengthOutOfRange, at,
                $"sequence of {count} elements cannot fit in the {_frame.Length - _position} bytes left");
        }
        return (int)count;
    }

    /// <summary>A byte buffer (<c>Bytes</c>, <c>Vec&lt;u8&gt;</c>): u64 length then the bytes.</summary>
    public ReadOnlySpan<byte> ReadByteBuf() => Take(ReadLength(1));

    /// <summary>A <c>Uuid</c>: serde_bytes of the 16 RFC 4122 bytes (u64 length 16, then the bytes).</summary>
    public Guid ReadUuid()
    {
        int at = _position;
        ulong len = ReadU64();
        if (len != 16)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.InvalidUuidLength, at, $"Uuid is {len} bytes long, not 16");
        }
        return new Guid(Take(16), bigEndian: true);
    }

    public string ReadString()
    {
        int at = _position;
        ReadOnlySpan<byte> utf8 = ReadByteBuf();
        if (!Utf8.IsValid(utf8))
        {
            ProtocolThrow.Throw(ProtocolErrorKind.InvalidUtf8, at, "String is not well-formed UTF-8");
        }
        return Encoding.UTF8.GetString(utf8);
    }
}

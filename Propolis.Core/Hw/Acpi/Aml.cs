using System.Buffers.Binary;
using System.Text;

namespace Propolis.Core.Hw.Acpi;

/// <summary>AML opcodes and prefixes used here (ACPI 6.4 §20.3, "AML Byte Stream Byte Values").</summary>
internal static class AmlOp
{
    public const byte Zero = 0x00;
    public const byte One = 0x01;
    public const byte Name = 0x08;
    public const byte BytePrefix = 0x0A;
    public const byte WordPrefix = 0x0B;
    public const byte DWordPrefix = 0x0C;
    public const byte StringPrefix = 0x0D;
    public const byte QWordPrefix = 0x0E;
    public const byte Scope = 0x10;
    public const byte Buffer = 0x11;
    public const byte Package = 0x12;
    public const byte Method = 0x14;
    public const byte DualNamePrefix = 0x2E;
    public const byte MultiNamePrefix = 0x2F;
    public const byte ExtOpPrefix = 0x5B;
    public const byte RootChar = 0x5C;       // '\'
    public const byte ParentPrefixChar = 0x5E; // '^'
    public const byte Return = 0xA4;
    public const byte Ones = 0xFF;
    public const byte DeviceExt = 0x82;      // after ExtOpPrefix
    public const byte OpRegionExt = 0x80;    // after ExtOpPrefix
    public const byte FieldExt = 0x81;       // after ExtOpPrefix
    public const byte Local0 = 0x60;
    public const byte Arg0 = 0x68;
    public const byte Store = 0x70;
    public const byte And = 0x7B;
    public const byte Or = 0x7D;
    public const byte CreateDWordField = 0x8A;
    public const byte LNot = 0x92;
    public const byte If = 0xA0;
    public const byte Else = 0xA1;
}

/// <summary>An AML byte stream writer (ACPI 6.4 §20.2, "AML Grammar Definition"). Objects with a
/// PkgLength take their contents as a callback that writes into a nested writer, so the length
/// is known before it is encoded.</summary>
/// <remarks>Not a hot path: tables are built once before the guest starts.</remarks>
public sealed class AmlWriter
{
    private readonly List<byte> _bytes = new();

    public int Length => _bytes.Count;

    public byte[] ToArray() => _bytes.ToArray();

    public AmlWriter Byte(byte value)
    {
        _bytes.Add(value);
        return this;
    }

    public AmlWriter Bytes(ReadOnlySpan<byte> values)
    {
        foreach (var b in values)
        {
            _bytes.Add(b);
        }
        return this;
    }

    /// <summary>PkgLength (§20.2.4) for <paramref name="contentLength"/> bytes that follow it;
    /// the encoded length counts the PkgLength bytes themselves. One byte holds up to 63; for
    /// more, bits 7–6 of the lead byte give the count of following bytes (1–3), its bits 3–0
    /// the low nibble, and each following byte the next 8 bits.</summary>
    public static byte[] EncodePkgLength(int contentLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(contentLength);
        if (contentLength + 1 <= 0x3F)
        {
            return [(byte)(contentLength + 1)];
        }
        for (int extra = 1; extra <= 3; extra++)
        {
            var total = contentLength + 1 + extra;
            if (total < 1 << (4 + 8 * extra))
            {
                var encoded = new byte[1 + extra];
                encoded[0] = (byte)((extra << 6) | (total & 0x0F));
                for (int i = 1; i <= extra; i++)
                {
                    encoded[i] = (byte)(total >> (4 + 8 * (i - 1)));
                }
                return encoded;
            }
        }
        throw new ArgumentOutOfRangeException(nameof(contentLength), contentLength, "AML package length exceeds 2^28 bytes");
    }

    /// <summary>A NameString (§20.2.2): an optional root '\' or parent '^' prefixes, then one
    /// NameSeg, a DualNamePath or a MultiNamePath of dot-separated segments. Segments shorter
    /// than four characters are padded with '_' (as iasl does).</summary>
    public AmlWriter NameString(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var rest = path.AsSpan();
        while (!rest.IsEmpty && (rest[0] == '\\' || rest[0] == '^'))
        {
            Byte(rest[0] == '\\' ? AmlOp.RootChar : AmlOp.ParentPrefixChar);
            rest = rest[1..];
        }
        if (rest.IsEmpty)
        {
            return Byte(0x00); // NullName
        }
        var segments = rest.ToString().Split('.');
        if (segments.Length == 2)
        {
            Byte(AmlOp.DualNamePrefix);
        }
        else if (segments.Length > 2)
        {
            Byte(AmlOp.MultiNamePrefix).Byte(checked((byte)segments.Length));
        }
        foreach (var seg in segments)
        {
            NameSeg(seg);
        }
        return this;
    }

    internal void NameSeg(string seg)
    {
        // NameSeg := LeadNameChar NameChar NameChar NameChar; LeadNameChar is 'A'-'Z' or '_'.
        if (seg.Length is 0 or > 4 || !(seg[0] is (>= 'A' and <= 'Z') or '_')
            || seg.Any(c => !(c is (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_')))
        {
            throw new ArgumentException($"'{seg}' is not an AML NameSeg", nameof(seg));
        }
        for (int i = 0; i < 4; i++)
        {
            Byte(i < seg.Length ? (byte)seg[i] : (byte)'_');
        }
    }

    /// <summary>An integer in the shortest encoding iasl picks (§20.2.3): ZeroOp, OneOp,
    /// ByteConst, WordConst, DWordConst or QWordConst.</summary>
    public AmlWriter Integer(ulong value)
    {
        if (value == 0)
        {
            return Byte(AmlOp.Zero);
        }
        if (value == 1)
        {
            return Byte(AmlOp.One);
        }
        if (value <= byte.MaxValue)
        {
            return Byte(AmlOp.BytePrefix).Byte((byte)value);
        }
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        if (value <= ushort.MaxValue)
        {
            return Byte(AmlOp.WordPrefix).Bytes(b[..2]);
        }
        if (value <= uint.MaxValue)
        {
            return Byte(AmlOp.DWordPrefix).Bytes(b[..4]);
        }
        return Byte(AmlOp.QWordPrefix).Bytes(b);
    }

    /// <summary>A String (§20.2.3): StringPrefix, ASCII characters 0x01–0x7F, NUL.</summary>
    public AmlWriter String(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Any(c => c is '\0' or > '\x7F'))
        {
            throw new ArgumentException("an AML string is ASCII without NUL", nameof(value));
        }
        return Byte(AmlOp.StringPrefix).Bytes(Encoding.ASCII.GetBytes(value)).Byte(0);
    }

    /// <summary>A compressed EISA ID as iasl's EISAID() encodes it (§19.6.35): three uppercase
    /// letters and four hex digits, e.g. "PNP0A03" → DWordConst 0x030AD041 (bytes 41 D0 0A 03).</summary>
    public AmlWriter EisaId(string id) => Integer(EncodeEisaId(id));

    public static uint EncodeEisaId(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (id.Length != 7 || !id[..3].All(c => c is >= 'A' and <= 'Z') || !id[3..].All(Uri.IsHexDigit))
        {
            throw new ArgumentException($"'{id}' is not an EISA ID (three letters, four hex digits)", nameof(id));
        }
        var vendor = ((id[0] - 0x40) << 10) | ((id[1] - 0x40) << 5) | (id[2] - 0x40);
        var product = Convert.ToUInt16(id[3..], 16);
        // Stored big-endian: vendor then product.
        Span<byte> b = [(byte)(vendor >> 8), (byte)vendor, (byte)(product >> 8), (byte)product];
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>Name(path, object) (§19.6.89): NameOp NameString DataRefObject.</summary>
    public AmlWriter Name(string path, Action<AmlWriter> value)
    {
        Byte(AmlOp.Name).NameString(path);
        value(this);
        return this;
    }

    /// <summary>Scope(path) { … } (§19.6.122).</summary>
    public AmlWriter Scope(string path, Action<AmlWriter> body) =>
        WithPkgLength([AmlOp.Scope], w => { w.NameString(path); body(w); });

    /// <summary>Device(path) { … } (§19.6.31): ExtOpPrefix DeviceOp PkgLength NameString TermList.</summary>
    public AmlWriter Device(string path, Action<AmlWriter> body) =>
        WithPkgLength([AmlOp.ExtOpPrefix, AmlOp.DeviceExt], w => { w.NameString(path); body(w); });

    /// <summary>Method(path, argCount, serialized) { … } (§19.6.85): MethodFlags bits 2–0 the
    /// argument count, bit 3 SerializeFlag, bits 7–4 SyncLevel 0.</summary>
    public AmlWriter Method(string path, int argCount, bool serialized, Action<AmlWriter> body)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)argCount, 7u, nameof(argCount));
        return WithPkgLength([AmlOp.Method], w =>
        {
            w.NameString(path).Byte((byte)(argCount | (serialized ? 0x08 : 0)));
            body(w);
        });
    }

    /// <summary>OperationRegion(name, PCI_Config, offset, length) (§19.6.100): RegionSpace 0x02.</summary>
    public AmlWriter PciConfigRegion(string name, ulong offset, ulong length)
    {
        Bytes([AmlOp.ExtOpPrefix, AmlOp.OpRegionExt]).NameString(name).Byte(0x02);
        return Integer(offset).Integer(length);
    }

    /// <summary>Field(region, AnyAcc, NoLock, Preserve) { name, bits … } (§19.6.48): FieldFlags 0,
    /// each NamedField a NameSeg and its bit width as a PkgLength.</summary>
    public AmlWriter Field(string region, params (string Name, int Bits)[] fields) =>
        WithPkgLength([AmlOp.ExtOpPrefix, AmlOp.FieldExt], w =>
        {
            w.NameString(region).Byte(0x00);
            foreach (var (name, bits) in fields)
            {
                // The width is a PkgLength that counts bits, not itself: one byte up to 63.
                ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)bits - 1, 62u, nameof(fields));
                w.NameSeg(name);
                w.Bytes(EncodePkgLength(bits - 1));
            }
        });

    /// <summary>If(predicate) { … } (§19.6.60).</summary>
    public AmlWriter If(Action<AmlWriter> predicate, Action<AmlWriter> body) =>
        WithPkgLength([AmlOp.If], w => { predicate(w); body(w); });

    /// <summary>Else { … } (§19.6.39), directly after an If.</summary>
    public AmlWriter Else(Action<AmlWriter> body) => WithPkgLength([AmlOp.Else], body);

    /// <summary>And(a, b) with no target (§19.6.5): AndOp Operand Operand NullName.</summary>
    public AmlWriter And(Action<AmlWriter> a, Action<AmlWriter> b)
    {
        Byte(AmlOp.And);
        a(this);
        b(this);
        return Byte(0x00);
    }

    /// <summary>Or(a, b, target) (§19.6.96).</summary>
    public AmlWriter Or(Action<AmlWriter> a, Action<AmlWriter> b, string target)
    {
        Byte(AmlOp.Or);
        a(this);
        b(this);
        return NameString(target);
    }

    /// <summary>LNot(operand) (§19.6.73).</summary>
    public AmlWriter LNot(Action<AmlWriter> operand)
    {
        Byte(AmlOp.LNot);
        operand(this);
        return this;
    }

    /// <summary>Store(source, destination name) (§19.6.132).</summary>
    public AmlWriter Store(Action<AmlWriter> source, string destination)
    {
        Byte(AmlOp.Store);
        source(this);
        return NameString(destination);
    }

    /// <summary>CreateDWordField(buffer, byteIndex, name) (§19.6.20).</summary>
    public AmlWriter CreateDWordField(Action<AmlWriter> buffer, ulong byteIndex, string name)
    {
        Byte(AmlOp.CreateDWordField);
        buffer(this);
        Integer(byteIndex);
        return NameString(name);
    }

    /// <summary>Arg0 (§19.6.7).</summary>
    public AmlWriter Arg0() => Byte(AmlOp.Arg0);

    /// <summary>A method invocation: its name, then its arguments (§20.2.5.4, MethodInvocation).</summary>
    public AmlWriter Call(string method, params Action<AmlWriter>[] args)
    {
        NameString(method);
        foreach (var a in args)
        {
            a(this);
        }
        return this;
    }

    /// <summary>Return(value) (§19.6.120).</summary>
    public AmlWriter Return(Action<AmlWriter> value)
    {
        Byte(AmlOp.Return);
        value(this);
        return this;
    }

    /// <summary>Package() { … } (§19.6.102): PackageOp PkgLength NumElements PackageElementList.</summary>
    public AmlWriter Package(params Action<AmlWriter>[] elements)
    {
        if (elements.Length > byte.MaxValue)
        {
            throw new ArgumentException("a Package has at most 255 elements (use VarPackage)", nameof(elements));
        }
        return WithPkgLength([AmlOp.Package], w =>
        {
            w.Byte((byte)elements.Length);
            foreach (var e in elements)
            {
                e(w);
            }
        });
    }

    /// <summary>Buffer() { bytes } (§19.6.10): BufferOp PkgLength BufferSize ByteList.</summary>
    public AmlWriter Buffer(ReadOnlySpan<byte> contents)
    {
        var copy = contents.ToArray();
        return WithPkgLength([AmlOp.Buffer], w => w.Integer((ulong)copy.Length).Bytes(copy));
    }

    /// <summary>ResourceTemplate() { … } (§19.3.3): a Buffer holding the descriptors and an End Tag.</summary>
    public AmlWriter ResourceTemplate(Action<ResourceTemplateWriter> descriptors)
    {
        var rt = new ResourceTemplateWriter();
        descriptors(rt);
        return Buffer(rt.ToArray());
    }

    private AmlWriter WithPkgLength(ReadOnlySpan<byte> opcode, Action<AmlWriter> contents)
    {
        var inner = new AmlWriter();
        contents(inner);
        Bytes(opcode);
        Bytes(EncodePkgLength(inner.Length));
        _bytes.AddRange(inner._bytes);
        return this;
    }
}

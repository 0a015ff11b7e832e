using System.Buffers.Binary;

namespace Propolis.Core.Hw.Acpi;

/// <summary>Resource data descriptors (ACPI 6.4 §6.4, "Resource Data Types for ACPI") as the
/// ASL resource macros of §19.6 encode them; <see cref="ToArray"/> appends the End Tag.</summary>
public sealed class ResourceTemplateWriter
{
    // Small resource items (§6.4.2): tag byte = (item name << 3) | length.
    private const byte IrqNoFlagsTag = 0x22;        // IRQ descriptor, 2 bytes (§6.4.2.1)
    private const byte IoPortTag = 0x47;            // I/O port descriptor, 7 bytes (§6.4.2.5)
    private const byte EndTag = 0x79;               // End tag, 1 byte (§6.4.2.9)

    // Large resource items (§6.4.3): tag byte, then LE16 length of what follows it.
    private const byte Memory32FixedTag = 0x86;     // §6.4.3.4
    private const byte DWordAddressSpaceTag = 0x87; // §6.4.3.5.2
    private const byte WordAddressSpaceTag = 0x88;  // §6.4.3.5.3
    private const byte ExtendedInterruptTag = 0x89; // §6.4.3.6
    private const byte QWordAddressSpaceTag = 0x8A; // §6.4.3.5.1

    // Address space descriptor resource types (§6.4.3.5, Table 6.44 byte 3).
    private const byte MemoryRange = 0;
    private const byte IoRange = 1;
    private const byte BusNumberRange = 2;

    // General flags (byte 4): _MAF bit 3, _MIF bit 2, _DEC bit 1 (0 = positive decode),
    // bit 0 consumer (1) / producer (0). ResourceProducer, MinFixed, MaxFixed, PosDecode:
    private const byte ProducerMinMaxFixed = 0x0C;

    private readonly List<byte> _bytes = new();

    /// <summary>The descriptors followed by the End Tag, whose checksum byte makes the whole
    /// template sum to zero (§6.4.2.9).</summary>
    public byte[] ToArray()
    {
        var result = new byte[_bytes.Count + 2];
        _bytes.CopyTo(result);
        result[^2] = EndTag;
        byte sum = 0;
        foreach (var b in result)
        {
            sum += b;
        }
        result[^1] = (byte)-sum;
        return result;
    }

    private ResourceTemplateWriter Add(ReadOnlySpan<byte> descriptor)
    {
        foreach (var b in descriptor)
        {
            _bytes.Add(b);
        }
        return this;
    }

    /// <summary>IRQNoFlags() { irq } (§6.4.2.1): edge-triggered, active-high, exclusive ISA IRQ.</summary>
    public ResourceTemplateWriter IrqNoFlags(byte irq)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(irq, (byte)15);
        var mask = (ushort)(1 << irq);
        return Add([IrqNoFlagsTag, (byte)mask, (byte)(mask >> 8)]);
    }

    /// <summary>IO(Decode16, min, max, alignment, length) (§6.4.2.5).</summary>
    public ResourceTemplateWriter Io(ushort minimum, ushort maximum, byte alignment, byte length)
    {
        Span<byte> d = stackalloc byte[8];
        d[0] = IoPortTag;
        d[1] = 0x01; // _DEC: decodes 16 address bits
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], minimum);
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], maximum);
        d[6] = alignment;
        d[7] = length;
        return Add(d);
    }

    /// <summary>A fixed I/O range: IO(Decode16, port, port, 1, length).</summary>
    public ResourceTemplateWriter Io(ushort port, byte length) => Io(port, port, 1, length);

    /// <summary>Memory32Fixed(ReadWrite, base, length) (§6.4.3.4).</summary>
    public ResourceTemplateWriter Memory32Fixed(uint address, uint length, bool writable = true)
    {
        Span<byte> d = stackalloc byte[12];
        d[0] = Memory32FixedTag;
        BinaryPrimitives.WriteUInt16LittleEndian(d[1..], 9);
        d[3] = writable ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], address);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
        return Add(d);
    }

    /// <summary>WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, len) (§6.4.3.5.3).</summary>
    public ResourceTemplateWriter WordBusNumber(ushort minimum, ushort maximum)
    {
        Span<byte> d = stackalloc byte[16];
        d[0] = WordAddressSpaceTag;
        BinaryPrimitives.WriteUInt16LittleEndian(d[1..], 13);
        d[3] = BusNumberRange;
        d[4] = ProducerMinMaxFixed;
        d[5] = 0; // type-specific flags
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], 0);        // _GRA
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], minimum);  // _MIN
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], maximum); // _MAX
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], 0);       // _TRA
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], (ushort)(maximum - minimum + 1)); // _LEN
        return Add(d);
    }

    /// <summary>DWordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, len) (§6.4.3.5.2).</summary>
    public ResourceTemplateWriter DWordIo(uint minimum, uint maximum) =>
        DWordAddressSpace(IoRange, typeFlags: 0x03, minimum, maximum); // _RNG = 3: ISA and non-ISA ranges

    /// <summary>DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, cacheable, ReadWrite, 0, min, max, 0, len) (§6.4.3.5.2).</summary>
    public ResourceTemplateWriter DWordMemory(uint minimum, uint maximum, bool cacheable) =>
        DWordAddressSpace(MemoryRange, MemoryTypeFlags(cacheable), minimum, maximum);

    /// <summary>QWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, cacheable, ReadWrite, 0, min, max, 0, len) (§6.4.3.5.1).</summary>
    public ResourceTemplateWriter QWordMemory(ulong minimum, ulong maximum, bool cacheable)
    {
        Span<byte> d = stackalloc byte[46];
        d[0] = QWordAddressSpaceTag;
        BinaryPrimitives.WriteUInt16LittleEndian(d[1..], 43);
        d[3] = MemoryRange;
        d[4] = ProducerMinMaxFixed;
        d[5] = MemoryTypeFlags(cacheable);
        BinaryPrimitives.WriteUInt64LittleEndian(d[6..], 0);        // _GRA
        BinaryPrimitives.WriteUInt64LittleEndian(d[14..], minimum); // _MIN
        BinaryPrimitives.WriteUInt64LittleEndian(d[22..], maximum); // _MAX
        BinaryPrimitives.WriteUInt64LittleEndian(d[30..], 0);       // _TRA
        BinaryPrimitives.WriteUInt64LittleEndian(d[38..], maximum - minimum + 1); // _LEN
        return Add(d);
    }

    /// <summary>Interrupt(ResourceConsumer, trigger, polarity, sharing) { gsi… } (§6.4.3.6).</summary>
    public ResourceTemplateWriter Interrupt(bool levelTriggered, bool activeLow, bool shared, params uint[] interrupts)
    {
        if (interrupts.Length is 0 or > 255)
        {
            throw new ArgumentException("an Interrupt descriptor lists 1 to 255 interrupts", nameof(interrupts));
        }
        var d = new byte[5 + 4 * interrupts.Length];
        d[0] = ExtendedInterruptTag;
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(1), (ushort)(2 + 4 * interrupts.Length));
        // Bit 0 consumer, bit 1 _HE (1 = edge), bit 2 _LL (1 = active-low), bit 3 _SHR.
        d[3] = (byte)(0x01 | (levelTriggered ? 0 : 0x02) | (activeLow ? 0x04 : 0) | (shared ? 0x08 : 0));
        d[4] = (byte)interrupts.Length;
        for (int i = 0; i < interrupts.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(5 + 4 * i), interrupts[i]);
        }
        return Add(d);
    }

    // Memory type-specific flags (§6.4.3.5.4): bit 0 _RW (1 = read/write), bits 2–1 _MEM
    // (0 non-cacheable, 1 cacheable).
    private static byte MemoryTypeFlags(bool cacheable) => (byte)(0x01 | (cacheable ? 0x02 : 0));

    private ResourceTemplateWriter DWordAddressSpace(byte type, byte typeFlags, uint minimum, uint maximum)
    {
        Span<byte> d = stackalloc byte[26];
        d[0] = DWordAddressSpaceTag;
        BinaryPrimitives.WriteUInt16LittleEndian(d[1..], 23);
        d[3] = type;
        d[4] = ProducerMinMaxFixed;
        d[5] = typeFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(d[6..], 0);        // _GRA
        BinaryPrimitives.WriteUInt32LittleEndian(d[10..], minimum); // _MIN
        BinaryPrimitives.WriteUInt32LittleEndian(d[14..], maximum); // _MAX
        BinaryPrimitives.WriteUInt32LittleEndian(d[18..], 0);       // _TRA
        BinaryPrimitives.WriteUInt32LittleEndian(d[22..], maximum - minimum + 1); // _LEN
        return Add(d);
    }
}

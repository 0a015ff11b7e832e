using System.Buffers.Binary;
using System.Text;

namespace Propolis.Core.Hw.Acpi;

/// <summary>The System Description Table header every table but the RSDP and FACS starts with
/// (ACPI 6.4 §5.2.6, Table 5.4).</summary>
public static class SdtHeader
{
    public const int Signature = 0;        // char[4]
    public const int Length = Signature + 4;        // u32, whole table
    public const int Revision = Length + 4;         // u8
    public const int Checksum = Revision + 1;       // u8, whole table sums to 0
    public const int OemId = Checksum + 1;          // char[6]
    public const int OemTableId = OemId + 6;        // char[8]
    public const int OemRevision = OemTableId + 8;  // u32
    public const int CreatorId = OemRevision + 4;   // char[4]
    public const int CreatorRevision = CreatorId + 4; // u32
    public const int Size = CreatorRevision + 4;    // 36

    /// <summary>Our identity in the OEM fields of every table.</summary>
    public const string DefaultOemId = "PRPLIS";
    public const string DefaultOemTableId = "PROPOLIS";
    public const uint DefaultOemRevision = 1;
    public const string DefaultCreatorId = "PRPL";
    public const uint DefaultCreatorRevision = 1;

    /// <summary>Writes the header at the start of <paramref name="table"/> (whose length is the
    /// table's) with a zero checksum.</summary>
    public static void Write(Span<byte> table, string signature, byte revision)
    {
        Ascii(table.Slice(Signature, 4), signature);
        BinaryPrimitives.WriteUInt32LittleEndian(table[Length..], (uint)table.Length);
        table[Revision] = revision;
        table[Checksum] = 0;
        Ascii(table.Slice(OemId, 6), DefaultOemId);
        Ascii(table.Slice(OemTableId, 8), DefaultOemTableId);
        BinaryPrimitives.WriteUInt32LittleEndian(table[OemRevision..], DefaultOemRevision);
        Ascii(table.Slice(CreatorId, 4), DefaultCreatorId);
        BinaryPrimitives.WriteUInt32LittleEndian(table[CreatorRevision..], DefaultCreatorRevision);
    }

    /// <summary>The byte that makes <paramref name="bytes"/> sum to zero when stored in place
    /// of a zero checksum field.</summary>
    public static byte ChecksumOf(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (var b in bytes)
        {
            sum += b;
        }
        return (byte)-sum;
    }

    internal static void Ascii(Span<byte> field, string value)
    {
        if (value.Length > field.Length)
        {
            throw new ArgumentException($"'{value}' does not fit in {field.Length} bytes", nameof(value));
        }
        field.Clear();
        Encoding.ASCII.GetBytes(value, field);
    }
}

/// <summary>Generic Address Structure (ACPI 6.4 §5.2.3.2, Table 5.1).</summary>
internal static class Gas
{
    public const int AddressSpaceId = 0; // u8: 0 memory, 1 system I/O
    public const int BitWidth = 1;       // u8
    public const int BitOffset = 2;      // u8
    public const int AccessSize = 3;     // u8: 0 undefined (legacy), 1 byte, 2 word, 3 dword, 4 qword
    public const int Address = 4;        // u64
    public const int Size = 12;

    public const byte SystemIo = 1;

    public static void WriteIo(Span<byte> gas, ushort port, byte bitWidth)
    {
        gas[AddressSpaceId] = SystemIo;
        gas[BitWidth] = bitWidth;
        gas[BitOffset] = 0;
        gas[AccessSize] = 0;
        BinaryPrimitives.WriteUInt64LittleEndian(gas[Address..], port);
    }
}

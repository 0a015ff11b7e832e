using System.Buffers.Binary;

namespace Propolis.Core.Memory;

/// <summary>Address range types of the ACPI address map (ACPI 6.4 §15.3, Table 15.312; the
/// values are those of the BIOS INT 15h E820 interface).</summary>
public enum E820Type : uint
{
    Ram = 1,
    Reserved = 2,
    AcpiReclaimable = 3,
    AcpiNvs = 4,
    Unusable = 5,
}

/// <summary>One address range of the E820 map.</summary>
public readonly record struct E820Entry(ulong Address, ulong Size, E820Type Type)
{
    /// <summary>Size of an entry in boot_params.e820_table and in an etc/e820 fw_cfg file:
    /// u64 address, u64 size, u32 type, packed.</summary>
    public const int EncodedSize = 20;

    public ulong End => Address + Size;

    public void Encode(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Address);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], Size);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], (uint)Type);
    }
}

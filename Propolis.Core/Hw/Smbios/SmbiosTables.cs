using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Hw.FwCfg;

namespace Propolis.Core.Hw.Smbios;

/// <summary>What the SMBIOS tables say about the machine: plain values, nothing from the
/// configuration file. Strings are printable ASCII; an empty string is "not specified".</summary>
public sealed record SmbiosPlatform
{
    public string BiosVendor { get; init; } = "propolis-standalone";

    /// <summary>The boot ROM's version (propolis's bootrom_version).</summary>
    public string BiosVersion { get; init; } = "";

    /// <summary>mm/dd/yyyy (SMBIOS 3.x §7.1, BIOS Release Date).</summary>
    public string BiosReleaseDate { get; init; } = "";

    /// <summary>Bytes of the boot ROM (type 0 ROM size, in 64 KiB units).</summary>
    public ulong BiosRomSize { get; init; }

    public string SystemManufacturer { get; init; } = "propolis-standalone";
    public string SystemProductName { get; init; } = "propolis-standalone VM";
    public string SystemVersion { get; init; } = "";
    public string SystemSerialNumber { get; init; } = "";
    public string SystemFamily { get; init; } = "";

    /// <summary>The VM's UUID (type 1); all zeros means "not set" (§7.2.1).</summary>
    public Guid SystemUuid { get; init; }

    /// <summary>vCPUs: one processor socket with this many cores, one thread each (as propolis
    /// reports them).</summary>
    public required int CpuCount { get; init; }

    public string ProcessorManufacturer { get; init; } = "";

    /// <summary>The brand string (CPUID 0x80000002–4).</summary>
    public string ProcessorVersion { get; init; } = "";

    /// <summary>Processor family (SMBIOS 3.x §7.5.2; 0x02 unknown, 0x6B AMD Zen, as propolis picks).</summary>
    public byte ProcessorFamily { get; init; } = 0x02;

    /// <summary>CPUID leaf 1: EAX in the low half, EDX in the high half (§7.5.3).</summary>
    public ulong ProcessorId { get; init; }

    /// <summary>Bytes of guest RAM.</summary>
    public required ulong MemorySize { get; init; }
}

/// <summary>The SMBIOS structure table and the 2.7 entry point for <c>etc/smbios/smbios-tables</c>
/// and <c>etc/smbios/smbios-anchor</c>, as propolis builds them (lib/propolis/src/firmware/smbios).</summary>
/// <remarks>OVMF's SmbiosPlatformDxe installs each structure from smbios-tables through the
/// SMBIOS protocol, and DetectSmbiosVersionLib takes the version from the anchor: a 31-byte
/// "_SM_" entry point (2.x) or a 24-byte "_SM3_" one; propolis uses 2.7, and so do we. The
/// firmware builds the entry points the OS sees, so the table address here is zero.
/// Structures and handles: type 0 (0x0000), 1 (0x0100), 4 (0x0300), 16 (0x1600), 17 (0x1700),
/// 32 (0x3200), 127 (0x7F00).</remarks>
public sealed class SmbiosTables
{
    public const string TablesFileName = "etc/smbios/smbios-tables";
    public const string AnchorFileName = "etc/smbios/smbios-anchor";

    public const ushort Type0Handle = 0x0000;
    public const ushort Type1Handle = 0x0100;
    public const ushort Type4Handle = 0x0300;
    public const ushort Type16Handle = 0x1600;
    public const ushort Type17Handle = 0x1700;
    public const ushort Type32Handle = 0x3200;
    public const ushort Type127Handle = 0x7F00;

    /// <summary>The SMBIOS 2.1+ 32-bit entry point (SMBIOS 3.x §5.2.1, Table 1): 31 bytes.</summary>
    public static class EntryPoint
    {
        public const int Anchor = 0;                  // "_SM_"
        public const int Checksum = 4;                // u8, over Length bytes
        public const int Length = 5;                  // u8, 0x1F
        public const int MajorVersion = 6;            // u8
        public const int MinorVersion = 7;            // u8
        public const int MaxStructureSize = 8;        // u16
        public const int Revision = 10;               // u8, 0
        public const int FormattedArea = 11;          // 5 bytes, 0
        public const int IntermediateAnchor = 16;     // "_DMI_"
        public const int IntermediateChecksum = 21;   // u8, over bytes 16–30
        public const int TableLength = 22;            // u16
        public const int TableAddress = 24;           // u32
        public const int StructureCount = 28;         // u16
        public const int BcdRevision = 30;            // u8
        public const int Size = 31;
    }

    private SmbiosTables(byte[] tables, byte[] anchor)
    {
        Tables = tables;
        Anchor = anchor;
    }

    public byte[] Tables { get; }

    public byte[] Anchor { get; }

    public FwCfgBuilder AddTo(FwCfgBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddFile(TablesFileName, Tables).AddFile(AnchorFileName, Anchor);
    }

    public static SmbiosTables Build(SmbiosPlatform p)
    {
        ArgumentNullException.ThrowIfNull(p);
        if (p.CpuCount is < 1 or > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(p), p.CpuCount, "SMBIOS type 4 counts 1 to 255 cores in its 2.6 fields");
        }
        var structures = new List<byte[]>
        {
            BiosInformation(p),
            SystemInformation(p),
            ProcessorInformation(p),
            PhysicalMemoryArray(p),
            MemoryDevice(p),
            SystemBootInformation(),
            new Structure(127, 4, Type127Handle).ToArray(), // End-of-Table (§7.45)
        };
        var tables = structures.SelectMany(s => s).ToArray();
        var anchor = new byte[EntryPoint.Size];
        var a = anchor.AsSpan();
        "_SM_"u8.CopyTo(a);
        a[EntryPoint.Length] = EntryPoint.Size;
        a[EntryPoint.MajorVersion] = 2;
        a[EntryPoint.MinorVersion] = 7;
        BinaryPrimitives.WriteUInt16LittleEndian(a[EntryPoint.MaxStructureSize..], (ushort)structures.Max(s => s.Length));
        "_DMI_"u8.CopyTo(a[EntryPoint.IntermediateAnchor..]);
        BinaryPrimitives.WriteUInt16LittleEndian(a[EntryPoint.TableLength..], checked((ushort)tables.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(a[EntryPoint.StructureCount..], (ushort)structures.Count);
        a[EntryPoint.BcdRevision] = 0x27;
        a[EntryPoint.IntermediateChecksum] = Checksum(a[EntryPoint.IntermediateAnchor..]);
        a[EntryPoint.Checksum] = Checksum(a);
        return new SmbiosTables(tables, anchor);
    }

    private static byte Checksum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (var b in bytes)
        {
            sum += b;
        }
        return (byte)-sum;
    }

    /// <summary>Type 0, BIOS Information (§7.1), 2.4+ length 0x18.</summary>
    private static byte[] BiosInformation(SmbiosPlatform p)
    {
        var s = new Structure(0, 0x18, Type0Handle);
        s.Formatted[4] = s.String(p.BiosVendor);
        s.Formatted[5] = s.String(p.BiosVersion);
        // 6: BIOS starting address segment, 0 for UEFI firmware.
        s.Formatted[8] = s.String(p.BiosReleaseDate);
        // 9: ROM size, 64 KiB × (n + 1).
        s.Formatted[9] = (byte)Math.Clamp((long)(p.BiosRomSize >> 16) - 1, 0, 0xFF);
        // 10: characteristics: bit 3, "BIOS Characteristics are not supported".
        BinaryPrimitives.WriteUInt64LittleEndian(s.Formatted.AsSpan(10), 1UL << 3);
        // 18–19: extension bytes: ACPI supported (byte 1 bit 0); UEFI supported (byte 2 bit 3),
        // the system is a virtual machine (byte 2 bit 4).
        s.Formatted[18] = 0x01;
        s.Formatted[19] = 0x18;
        s.Formatted[20] = 0xFF; // system BIOS major/minor release: not given
        s.Formatted[21] = 0xFF;
        s.Formatted[22] = 0xFF; // no embedded controller
        s.Formatted[23] = 0xFF;
        return s.ToArray();
    }

    /// <summary>Type 1, System Information (§7.2), 2.4+ length 0x1B.</summary>
    private static byte[] SystemInformation(SmbiosPlatform p)
    {
        var s = new Structure(1, 0x1B, Type1Handle);
        s.Formatted[4] = s.String(p.SystemManufacturer);
        s.Formatted[5] = s.String(p.SystemProductName);
        s.Formatted[6] = s.String(p.SystemVersion);
        s.Formatted[7] = s.String(p.SystemSerialNumber);
        // 8–23: UUID; its first three fields little-endian (§7.2.1), as Guid stores them.
        p.SystemUuid.TryWriteBytes(s.Formatted.AsSpan(8, 16));
        s.Formatted[24] = 0x06; // wake-up type: power switch
        s.Formatted[25] = 0;    // SKU number
        s.Formatted[26] = s.String(p.SystemFamily);
        return s.ToArray();
    }

    /// <summary>Type 4, Processor Information (§7.5), 2.6 length 0x2A.</summary>
    private static byte[] ProcessorInformation(SmbiosPlatform p)
    {
        var s = new Structure(4, 0x2A, Type4Handle);
        var f = s.Formatted.AsSpan();
        f[4] = s.String("CPU 0");    // socket designation
        f[5] = 0x03;                 // processor type: central processor
        f[6] = p.ProcessorFamily;
        f[7] = s.String(p.ProcessorManufacturer);
        BinaryPrimitives.WriteUInt64LittleEndian(f[8..], p.ProcessorId);
        f[16] = s.String(p.ProcessorVersion);
        // 17 voltage, 18 external clock, 20 max speed, 22 current speed: unknown (0).
        f[24] = 0x41;                // status: socket populated, CPU enabled
        f[25] = 0x02;                // upgrade: unknown
        BinaryPrimitives.WriteUInt16LittleEndian(f[26..], 0xFFFF); // no L1/L2/L3 cache information
        BinaryPrimitives.WriteUInt16LittleEndian(f[28..], 0xFFFF);
        BinaryPrimitives.WriteUInt16LittleEndian(f[30..], 0xFFFF);
        // 32 serial number, 33 asset tag, 34 part number: not given.
        f[35] = (byte)p.CpuCount;    // core count
        f[36] = (byte)p.CpuCount;    // cores enabled
        f[37] = (byte)p.CpuCount;    // thread count
        BinaryPrimitives.WriteUInt16LittleEndian(f[38..], 0x000C); // characteristics: 64-bit capable, multi-core
        BinaryPrimitives.WriteUInt16LittleEndian(f[40..], p.ProcessorFamily); // processor family 2
        return s.ToArray();
    }

    /// <summary>Type 16, Physical Memory Array (§7.17), 2.7 length 0x17.</summary>
    private static byte[] PhysicalMemoryArray(SmbiosPlatform p)
    {
        var s = new Structure(16, 0x17, Type16Handle);
        var f = s.Formatted.AsSpan();
        f[4] = 0x03; // location: system board
        f[5] = 0x03; // use: system memory
        f[6] = 0x02; // error correction: unknown
        var kib = p.MemorySize >> 10;
        if (kib < 0x8000_0000)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(f[7..], (uint)kib);
        }
        else
        {
            // 2 TiB or more: 0x80000000 here, bytes in the extended field.
            BinaryPrimitives.WriteUInt32LittleEndian(f[7..], 0x8000_0000);
            BinaryPrimitives.WriteUInt64LittleEndian(f[15..], p.MemorySize);
        }
        BinaryPrimitives.WriteUInt16LittleEndian(f[11..], 0xFFFE); // no error information structure
        BinaryPrimitives.WriteUInt16LittleEndian(f[13..], 1);      // one memory device
        return s.ToArray();
    }

    /// <summary>Type 17, Memory Device (§7.18), 2.8 length 0x28: one device holding all RAM.</summary>
    private static byte[] MemoryDevice(SmbiosPlatform p)
    {
        var s = new Structure(17, 0x28, Type17Handle);
        var f = s.Formatted.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(f[4..], Type16Handle);
        BinaryPrimitives.WriteUInt16LittleEndian(f[6..], 0xFFFE);  // no error information structure
        BinaryPrimitives.WriteUInt16LittleEndian(f[8..], 0xFFFF);  // total width: unknown
        BinaryPrimitives.WriteUInt16LittleEndian(f[10..], 0xFFFF); // data width: unknown
        var mib = p.MemorySize >> 20;
        if (mib < 0x7FFF)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(f[12..], (ushort)mib); // size in MiB (bit 15 clear)
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(f[12..], 0x7FFF);      // see extended size
            BinaryPrimitives.WriteUInt32LittleEndian(f[28..], checked((uint)mib));
        }
        f[14] = 0x02;                 // form factor: unknown
        f[16] = s.String("DIMM 0");   // device locator
        f[18] = 0x02;                 // memory type: unknown
        BinaryPrimitives.WriteUInt16LittleEndian(f[19..], 0x0004); // type detail: bit 2, unknown (bit 1 is "other")
        return s.ToArray();
    }

    /// <summary>Type 32, System Boot Information (§7.33): length 0x0B, status "no errors detected".</summary>
    private static byte[] SystemBootInformation() => new Structure(32, 0x0B, Type32Handle).ToArray();

    /// <summary>A structure's formatted area (header: type, length, handle) and its string set (§6.1.3).</summary>
    private sealed class Structure
    {
        private readonly List<string> _strings = new();

        public Structure(byte type, byte length, ushort handle)
        {
            Formatted = new byte[length];
            Formatted[0] = type;
            Formatted[1] = length;
            BinaryPrimitives.WriteUInt16LittleEndian(Formatted.AsSpan(2), handle);
        }

        public byte[] Formatted { get; }

        /// <summary>The string's number in the set (from 1), or 0 for an empty string.</summary>
        public byte String(string value)
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Length == 0)
            {
                return 0;
            }
            if (value.Any(c => c is < ' ' or > '~'))
            {
                throw new ArgumentException($"SMBIOS string '{value}' must be printable ASCII", nameof(value));
            }
            _strings.Add(value);
            return checked((byte)_strings.Count);
        }

        /// <summary>The formatted area, each string NUL-terminated, and a final NUL (two NULs if there are no strings).</summary>
        public byte[] ToArray()
        {
            var bytes = new List<byte>(Formatted);
            foreach (var s in _strings)
            {
                bytes.AddRange(Encoding.ASCII.GetBytes(s));
                bytes.Add(0);
            }
            if (_strings.Count == 0)
            {
                bytes.Add(0);
            }
            bytes.Add(0);
            return bytes.ToArray();
        }
    }
}

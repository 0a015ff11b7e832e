using System.Buffers.Binary;
using System.Text;

namespace Propolis.Core.Hw.Acpi;

/// <summary>Where firmware places a blob named in an ALLOCATE command (QEMU hw/acpi/bios-linker-loader.c).</summary>
public enum TableLoaderZone : byte
{
    /// <summary>Anywhere below 4 GiB.</summary>
    High = 1,

    /// <summary>The F segment (0xE0000–0xFFFFF), where an OS looks for the RSDP.</summary>
    FSeg = 2,
}

/// <summary>The <c>etc/table-loader</c> script (QEMU hw/acpi/bios-linker-loader.c, executed by
/// OVMF's AcpiPlatformDxe QemuFwCfgAcpi.c and SeaBIOS's romfile_loader): 128-byte commands,
/// LE32 command type first.</summary>
public sealed class TableLoader
{
    public const int CommandSize = 128;

    /// <summary>BIOS_LINKER_LOADER_FILESZ: a file name field, NUL-padded.</summary>
    public const int FileNameSize = 56;

    public const uint CommandAllocate = 1;
    public const uint CommandAddPointer = 2;
    public const uint CommandAddChecksum = 3;

    /// <summary>Field offsets inside a command.</summary>
    public static class Field
    {
        public const int Command = 0;                           // u32
        public const int AllocateFile = 4;                      // char[56]
        public const int AllocateAlign = AllocateFile + FileNameSize;    // u32
        public const int AllocateZone = AllocateAlign + 4;      // u8
        public const int PointerDestFile = 4;                   // char[56]
        public const int PointerSrcFile = PointerDestFile + FileNameSize; // char[56]
        public const int PointerOffset = PointerSrcFile + FileNameSize;   // u32
        public const int PointerSize = PointerOffset + 4;       // u8: 1, 2, 4 or 8
        public const int ChecksumFile = 4;                      // char[56]
        public const int ChecksumOffset = ChecksumFile + FileNameSize;    // u32
        public const int ChecksumStart = ChecksumOffset + 4;    // u32
        public const int ChecksumLength = ChecksumStart + 4;    // u32
    }

    private readonly List<byte[]> _commands = new();

    public int Count => _commands.Count;

    /// <summary>ALLOCATE: load file <paramref name="file"/> into memory aligned to <paramref name="alignment"/> in <paramref name="zone"/>.</summary>
    public void Allocate(string file, uint alignment, TableLoaderZone zone)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new ArgumentException("alignment must be a power of two", nameof(alignment));
        }
        var c = NewCommand(CommandAllocate);
        FileName(c.AsSpan(Field.AllocateFile, FileNameSize), file);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(Field.AllocateAlign), alignment);
        c[Field.AllocateZone] = (byte)zone;
    }

    /// <summary>ADD_POINTER: add the address where <paramref name="sourceFile"/> was loaded to the
    /// <paramref name="size"/>-byte little-endian value at <paramref name="offset"/> in <paramref name="destFile"/>.</summary>
    public void AddPointer(string destFile, string sourceFile, uint offset, byte size)
    {
        if (size is not (1 or 2 or 4 or 8))
        {
            throw new ArgumentException("pointer size must be 1, 2, 4 or 8", nameof(size));
        }
        var c = NewCommand(CommandAddPointer);
        FileName(c.AsSpan(Field.PointerDestFile, FileNameSize), destFile);
        FileName(c.AsSpan(Field.PointerSrcFile, FileNameSize), sourceFile);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(Field.PointerOffset), offset);
        c[Field.PointerSize] = size;
    }

    /// <summary>ADD_CHECKSUM: store at <paramref name="offset"/> the byte that makes
    /// [<paramref name="start"/>, +<paramref name="length"/>) sum to zero. OVMF overwrites the
    /// byte with the checksum of the range as it stands, so the byte must be zero beforehand.</summary>
    public void AddChecksum(string file, uint offset, uint start, uint length)
    {
        var c = NewCommand(CommandAddChecksum);
        FileName(c.AsSpan(Field.ChecksumFile, FileNameSize), file);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(Field.ChecksumOffset), offset);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(Field.ChecksumStart), start);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(Field.ChecksumLength), length);
    }

    public byte[] ToArray()
    {
        var script = new byte[_commands.Count * CommandSize];
        for (int i = 0; i < _commands.Count; i++)
        {
            _commands[i].CopyTo(script, i * CommandSize);
        }
        return script;
    }

    private byte[] NewCommand(uint type)
    {
        var c = new byte[CommandSize];
        BinaryPrimitives.WriteUInt32LittleEndian(c, type);
        _commands.Add(c);
        return c;
    }

    private static void FileName(Span<byte> field, string name)
    {
        if (name.Length == 0 || name.Length >= FileNameSize || name.Any(ch => ch is < ' ' or > '~'))
        {
            throw new ArgumentException($"'{name}' is not a table-loader file name", nameof(name));
        }
        Encoding.ASCII.GetBytes(name, field);
    }
}

using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Acpi;

/// <summary>Executes an <c>etc/table-loader</c> script the way firmware does (OVMF's
/// AcpiPlatformDxe QemuFwCfgAcpi.c, SeaBIOS's romfile_loader): ALLOCATE places a file, ADD_POINTER
/// adds the address of a placed file to a field, ADD_CHECKSUM stores the byte that makes a range
/// sum to zero. Used for a kernel booted without firmware, so that it finds the same tables.</summary>
public static class TableLoaderRunner
{
    /// <summary>Chooses the guest address of a file the script allocates: its name, the
    /// alignment and zone the script asks for, and its size.</summary>
    public delegate ulong Placement(string file, uint alignment, TableLoaderZone zone, int size);

    /// <summary>Runs <paramref name="script"/> over <paramref name="files"/> and writes every
    /// allocated file into <paramref name="memory"/>; returns where each file went.</summary>
    /// <exception cref="InvalidDataException">The script names an unknown file, a field outside
    /// a file, or an unknown command.</exception>
    public static IReadOnlyDictionary<string, ulong> Run(ReadOnlySpan<byte> script, IReadOnlyDictionary<string, byte[]> files,
        Placement place, GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(place);
        ArgumentNullException.ThrowIfNull(memory);
        if (script.Length % TableLoader.CommandSize != 0)
            throw new InvalidDataException($"table-loader script of {script.Length} bytes is not a whole number of {TableLoader.CommandSize}-byte commands");
        var buffers = new Dictionary<string, byte[]>();
        var addresses = new Dictionary<string, ulong>();
        for (var at = 0; at < script.Length; at += TableLoader.CommandSize)
        {
            var c = script.Slice(at, TableLoader.CommandSize);
            switch (BinaryPrimitives.ReadUInt32LittleEndian(c))
            {
                case TableLoader.CommandAllocate:
                {
                    var name = Name(c.Slice(TableLoader.Field.AllocateFile, TableLoader.FileNameSize));
                    if (!files.TryGetValue(name, out var contents))
                        throw new InvalidDataException($"table-loader allocates '{name}', which is not a file");
                    var alignment = BinaryPrimitives.ReadUInt32LittleEndian(c[TableLoader.Field.AllocateAlign..]);
                    var address = place(name, alignment, (TableLoaderZone)c[TableLoader.Field.AllocateZone], contents.Length);
                    if (alignment != 0 && address % alignment != 0)
                        throw new InvalidDataException($"'{name}' placed at 0x{address:X}, not {alignment}-byte aligned");
                    buffers[name] = (byte[])contents.Clone();
                    addresses[name] = address;
                    break;
                }
                case TableLoader.CommandAddPointer:
                {
                    var dest = Buffer(buffers, Name(c.Slice(TableLoader.Field.PointerDestFile, TableLoader.FileNameSize)));
                    var source = Name(c.Slice(TableLoader.Field.PointerSrcFile, TableLoader.FileNameSize));
                    if (!addresses.TryGetValue(source, out var sourceAddress))
                        throw new InvalidDataException($"table-loader points at '{source}' before allocating it");
                    var offset = BinaryPrimitives.ReadUInt32LittleEndian(c[TableLoader.Field.PointerOffset..]);
                    var size = c[TableLoader.Field.PointerSize];
                    if (size is not (1 or 2 or 4 or 8) || offset > (uint)dest.Length || size > dest.Length - offset)
                        throw new InvalidDataException($"table-loader pointer at 0x{offset:X} ({size} bytes) is outside its file");
                    Span<byte> field = stackalloc byte[8];
                    field.Clear();
                    dest.AsSpan((int)offset, size).CopyTo(field);
                    var value = BinaryPrimitives.ReadUInt64LittleEndian(field) + sourceAddress;
                    BinaryPrimitives.WriteUInt64LittleEndian(field, value);
                    field[..size].CopyTo(dest.AsSpan((int)offset, size));
                    break;
                }
                case TableLoader.CommandAddChecksum:
                {
                    var file = Buffer(buffers, Name(c.Slice(TableLoader.Field.ChecksumFile, TableLoader.FileNameSize)));
                    var offset = BinaryPrimitives.ReadUInt32LittleEndian(c[TableLoader.Field.ChecksumOffset..]);
                    var start = BinaryPrimitives.ReadUInt32LittleEndian(c[TableLoader.Field.ChecksumStart..]);
                    var length = BinaryPrimitives.ReadUInt32LittleEndian(c[TableLoader.Field.ChecksumLength..]);
                    if (offset >= (uint)file.Length || start > (uint)file.Length || length > file.Length - start)
                        throw new InvalidDataException($"table-loader checksum over 0x{start:X}+0x{length:X} is outside its file");
                    file[offset] = 0;
                    byte sum = 0;
                    foreach (var b in file.AsSpan((int)start, (int)length))
                        sum += b;
                    file[offset] = (byte)-sum;
                    break;
                }
                case 0:
                    break; // padding
                default:
                    throw new InvalidDataException($"table-loader command {BinaryPrimitives.ReadUInt32LittleEndian(c)} is not one this runner knows");
            }
        }
        foreach (var (name, bytes) in buffers)
            memory.Write(addresses[name], bytes);
        return addresses;
    }

    private static byte[] Buffer(Dictionary<string, byte[]> buffers, string name) =>
        buffers.TryGetValue(name, out var b) ? b : throw new InvalidDataException($"table-loader uses '{name}' before allocating it");

    private static string Name(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
    }
}

using System.Buffers.Binary;
using System.Collections.Frozen;
using System.Text;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.FwCfg;

/// <summary>Collects fw_cfg items and named files, then builds the <see cref="FwCfgDevice"/>.</summary>
/// <remarks>The signature, the ID (traditional and DMA interfaces) and the file directory are
/// always present. Files get selectors from <see cref="FwCfgSelector.FileFirst"/> in order of
/// name, so the directory (which is sorted by name, as QEMU sorts it) lists selectors in
/// ascending order and the bytes do not depend on the order of the calls.</remarks>
/// <example>
/// <code>
/// var fwcfg = new FwCfgBuilder()
///     .AddUInt16Item(FwCfgSelector.NbCpus, 2)
///     .AddFile("etc/e820", FwCfgFiles.E820(layout.RamRegions, reserved))
///     .AddFile("bootorder", FwCfgFiles.BootOrder(["/pci@i0cf8/scsi@4,0/disk@0,0"]))
///     .Build(guestMemory);
/// fwcfg.Register(portIoBus.Register);
/// </code>
/// </example>
public sealed class FwCfgBuilder
{
    /// <summary>Bytes of a file name in the directory, its terminating NUL included (FW_CFG_MAX_FILE_PATH).</summary>
    public const int MaxFileNameBytes = 56;

    /// <summary>One FWCfgFile directory entry (docs/specs/fw_cfg.rst, "File Directory"): BE32 size,
    /// BE16 select, BE16 reserved, char name[56].</summary>
    internal static class FileEntry
    {
        public const int Size = 0;     // BE32
        public const int Select = Size + 4;      // BE16
        public const int Reserved = Select + 2;  // BE16
        public const int Name = Reserved + 2;    // char[56], NUL-padded
        public const int Length = Name + MaxFileNameBytes;
    }

    private readonly Dictionary<ushort, byte[]> _items = new();
    private readonly SortedDictionary<string, byte[]> _files = new(StringComparer.Ordinal);

    /// <summary>Adds the item at a fixed selector (a legacy item below 0x20 or an x86 item from 0x8000).</summary>
    /// <exception cref="ArgumentException">The selector is reserved (signature, ID, file
    /// directory), in the file range, or already used.</exception>
    public FwCfgBuilder AddItem(ushort selector, ReadOnlySpan<byte> contents)
    {
        if (selector is FwCfgSelector.Signature or FwCfgSelector.Id or FwCfgSelector.FileDir
            || (selector & FwCfgSelector.WriteChannel) != 0
            || (selector >= FwCfgSelector.FileFirst && selector < FwCfgSelector.ArchLocal))
        {
            throw new ArgumentException($"fw_cfg selector 0x{selector:X4} is reserved or belongs to named files", nameof(selector));
        }
        if (!_items.TryAdd(selector, contents.ToArray()))
        {
            throw new ArgumentException($"fw_cfg selector 0x{selector:X4} is already used", nameof(selector));
        }
        return this;
    }

    public FwCfgBuilder AddUInt16Item(ushort selector, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        return AddItem(selector, b);
    }

    public FwCfgBuilder AddUInt32Item(ushort selector, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return AddItem(selector, b);
    }

    public FwCfgBuilder AddUInt64Item(ushort selector, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return AddItem(selector, b);
    }

    /// <summary>Adds a named file (e.g. "etc/e820").</summary>
    /// <exception cref="ArgumentException">The name is empty, not printable ASCII, 56 bytes or
    /// longer, or already used.</exception>
    public FwCfgBuilder AddFile(string name, ReadOnlySpan<byte> contents)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || name.Length >= MaxFileNameBytes || name.Any(c => c is < ' ' or > '~'))
        {
            throw new ArgumentException($"fw_cfg file name '{name}' must be 1 to {MaxFileNameBytes - 1} printable ASCII characters", nameof(name));
        }
        if (!_files.TryAdd(name, contents.ToArray()))
        {
            throw new ArgumentException($"fw_cfg file '{name}' is already present", nameof(name));
        }
        if (_files.Count > FwCfgSelector.FileLimit - FwCfgSelector.FileFirst)
        {
            _files.Remove(name);
            throw new ArgumentException($"fw_cfg has no file selector left for '{name}'", nameof(name));
        }
        return this;
    }

    /// <summary>The file directory as the guest reads it from <see cref="FwCfgSelector.FileDir"/>:
    /// BE32 count, then one entry per file sorted by name.</summary>
    public byte[] BuildFileDirectory()
    {
        var dir = new byte[4 + _files.Count * FileEntry.Length];
        BinaryPrimitives.WriteUInt32BigEndian(dir, (uint)_files.Count);
        var selector = FwCfgSelector.FileFirst;
        var entry = dir.AsSpan(4);
        foreach (var (name, contents) in _files)
        {
            BinaryPrimitives.WriteUInt32BigEndian(entry[FileEntry.Size..], (uint)contents.Length);
            BinaryPrimitives.WriteUInt16BigEndian(entry[FileEntry.Select..], selector++);
            Encoding.ASCII.GetBytes(name, entry.Slice(FileEntry.Name, MaxFileNameBytes));
            entry = entry[FileEntry.Length..];
        }
        return dir;
    }

    /// <summary>The device, reading DMA descriptors and buffers from <paramref name="memory"/>.</summary>
    public FwCfgDevice Build(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var items = new Dictionary<ushort, byte[]>(_items)
        {
            [FwCfgSelector.Signature] = "QEMU"u8.ToArray(),
            [FwCfgSelector.Id] = new byte[4],
            [FwCfgSelector.FileDir] = BuildFileDirectory(),
        };
        BinaryPrimitives.WriteUInt32LittleEndian(items[FwCfgSelector.Id], (uint)(FwCfgFeatures.Traditional | FwCfgFeatures.Dma));
        var selector = FwCfgSelector.FileFirst;
        foreach (var contents in _files.Values)
        {
            items[selector++] = contents;
        }
        return new FwCfgDevice(items.ToFrozenDictionary(), memory);
    }
}

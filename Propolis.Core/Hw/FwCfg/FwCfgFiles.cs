using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Propolis.Core.Boot;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.FwCfg;

/// <summary>Encoders for the fw_cfg files and items firmware reads.</summary>
public static class FwCfgFiles
{
    public const string E820FileName = "etc/e820";
    public const string BootOrderFileName = "bootorder";

    /// <summary>The contents of <c>etc/e820</c> (QEMU hw/i386/e820_memory_layout.h, struct
    /// e820_entry; read by OVMF's PlatformInitLib ScanOrAdd64BitE820Ram): per range LE64 address,
    /// LE64 length, LE32 type, packed, in ascending address order.</summary>
    /// <remarks>As propolis does: every RAM region is usable RAM as a whole (the firmware carves
    /// the legacy areas below 1 MiB out itself) and the ranges in <paramref name="reserved"/>
    /// (e.g. the boot ROM, the ECAM window) are type 2.</remarks>
    public static byte[] E820(ReadOnlySpan<RamRegion> ram, ReadOnlySpan<(ulong Address, ulong Size)> reserved)
    {
        var entries = new List<E820Entry>(ram.Length + reserved.Length);
        foreach (var r in ram)
        {
            entries.Add(new E820Entry(r.GuestAddress, r.Size, E820Type.Ram));
        }
        foreach (var (address, size) in reserved)
        {
            entries.Add(new E820Entry(address, size, E820Type.Reserved));
        }
        entries.Sort((a, b) => a.Address.CompareTo(b.Address));
        return E820(entries);
    }

    /// <summary>Encodes <paramref name="entries"/> as they are.</summary>
    public static byte[] E820(IReadOnlyList<E820Entry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var bytes = new byte[entries.Count * E820Entry.EncodedSize];
        for (int i = 0; i < entries.Count; i++)
        {
            entries[i].Encode(bytes.AsSpan(i * E820Entry.EncodedSize, E820Entry.EncodedSize));
        }
        return bytes;
    }

    /// <summary>The contents of <c>bootorder</c>: OpenFirmware device paths, one a line, the
    /// last NUL-terminated (QEMU get_boot_devices_list; OVMF's QemuBootOrderLib refuses a file
    /// whose last byte is not NUL). <paramref name="strict"/> appends "HALT" (QEMU's
    /// -boot strict=on): boot nothing that is not listed.</summary>
    public static byte[] BootOrder(IEnumerable<string> paths, bool strict = false)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var lines = paths.ToList();
        if (strict)
        {
            lines.Add("HALT");
        }
        foreach (var line in lines)
        {
            if (line.Length == 0 || line.Any(c => c is < ' ' or > '~'))
            {
                throw new ArgumentException($"boot order entry '{line}' must be non-empty printable ASCII", nameof(paths));
            }
        }
        return Encoding.ASCII.GetBytes(string.Join('\n', lines) + "\0");
    }

    /// <summary>The contents of the etc/boot-fail-wait file: LE32 seconds before retrying boot.</summary>
    public static byte[] UInt32File(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return bytes;
    }
}

/// <summary>OpenFirmware device paths for <see cref="FwCfgFiles.BootOrder"/> in the forms
/// OVMF's QemuBootOrderLib (TranslatePciOfwNodes) translates, as propolis writes them.</summary>
public static class BootOrderPath
{
    private const string Root = "/pci@i0cf8";

    /// <summary>A virtio block disk (OVMF matches "scsi" then "disk").</summary>
    public static string VirtioBlock(byte device, byte function) =>
        string.Create(CultureInfo.InvariantCulture, $"{Root}/scsi@{device:x},{function:x}/disk@0,0");

    /// <summary>Namespace 1 of an NVMe controller; OVMF demands the node name pci8086,5845
    /// whatever the device's real IDs.</summary>
    public static string Nvme(byte device, byte function, ulong eui64 = 0) =>
        string.Create(CultureInfo.InvariantCulture, $"{Root}/pci8086,5845@{device:x},{function:x}/namespace@1,{eui64:x}");

    /// <summary>Any other PCI function, e.g. "ethernet" for a NIC to PXE-boot from.</summary>
    public static string Pci(byte device, byte function, string kind = "device") =>
        string.Create(CultureInfo.InvariantCulture, $"{Root}/{kind}@{device:x},{function:x}");
}

/// <summary>The fw_cfg items QEMU's x86 loader (hw/i386/x86.c, x86_load_linux) provides for
/// -kernel/-initrd/-append and that OVMF reads (QemuKernelLoaderFsDxe publishes "kernel" as
/// setup ++ kernel, "initrd" and "cmdline"; X86QemuLoadImageLib's legacy path reads the setup
/// and kernel items separately).</summary>
public static class FwCfgLinuxKernel
{
    /// <summary>Adds the setup, kernel, initrd and command line size/data items for a bzImage.</summary>
    /// <param name="bzImage">The whole bzImage file.</param>
    /// <param name="initrd">The initrd; empty for none (its items then say size 0).</param>
    /// <param name="commandLine">ASCII; stored NUL-terminated, the NUL counted in its size.</param>
    /// <exception cref="KernelImageException">Not a bzImage (no "HdrS"), or shorter than its setup.</exception>
    public static FwCfgBuilder AddLinuxKernel(this FwCfgBuilder builder, ReadOnlySpan<byte> bzImage, ReadOnlySpan<byte> initrd, string commandLine)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(commandLine);
        var setupSize = SetupSize(bzImage);
        var cmdline = new byte[Encoding.ASCII.GetByteCount(commandLine) + 1];
        Encoding.ASCII.GetBytes(commandLine, cmdline);
        return builder
            .AddUInt32Item(FwCfgSelector.SetupSize, (uint)setupSize)
            .AddItem(FwCfgSelector.SetupData, bzImage[..setupSize])
            .AddUInt32Item(FwCfgSelector.KernelSize, (uint)(bzImage.Length - setupSize))
            .AddItem(FwCfgSelector.KernelData, bzImage[setupSize..])
            .AddUInt32Item(FwCfgSelector.InitrdSize, (uint)initrd.Length)
            .AddItem(FwCfgSelector.InitrdData, initrd)
            .AddUInt32Item(FwCfgSelector.CmdlineSize, (uint)cmdline.Length)
            .AddItem(FwCfgSelector.CmdlineData, cmdline);
    }

    /// <summary>(setup_sects + 1) × 512, setup_sects 0 meaning 4 (Documentation/arch/x86/boot.rst,
    /// "The Real-Mode Kernel Header"; QEMU x86_load_linux).</summary>
    public static int SetupSize(ReadOnlySpan<byte> bzImage)
    {
        if (bzImage.Length < SetupHeader.Header + 4 || BinaryPrimitives.ReadUInt32LittleEndian(bzImage[SetupHeader.Header..]) != 0x5372_6448)
        {
            throw new KernelImageException("the kernel is not a bzImage: no \"HdrS\" setup header at offset 0x202");
        }
        int sects = bzImage[SetupHeader.SetupSects];
        var size = ((sects == 0 ? 4 : sects) + 1) * 512;
        if (bzImage.Length <= size)
        {
            throw new KernelImageException($"the kernel is {bzImage.Length} bytes, no more than its {size}-byte real-mode setup");
        }
        return size;
    }
}

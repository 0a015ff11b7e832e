using System.Net;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

// The typed, validated form of a propolis-standalone TOML file. Everything here has passed
// ConfigLoader's checks: references resolve, ranges hold, files named exist and are
// readable, and every path is absolute (relative paths in the file are resolved against
// the directory that holds the file).

/// <summary>A whole configuration file. <see cref="SourcePath"/> is the file's absolute
/// path; lists keep the order of the file.</summary>
public sealed record StandaloneConfig(
    string SourcePath,
    MainConfig Main,
    IReadOnlyList<BlockDevConfig> BlockDevs,
    IReadOnlyList<DeviceConfig> Devices,
    IReadOnlyList<CpuidProfileConfig> CpuidProfiles,
    CloudInitConfig? CloudInit)
{
    /// <summary>Things that are valid but have no effect (an unused block_dev, an unselected
    /// CPUID profile, ...), located like errors.</summary>
    public IReadOnlyList<ConfigError> Warnings { get; init; } = System.Array.Empty<ConfigError>();

    public BlockDevConfig? FindBlockDev(string name) => BlockDevs.FirstOrDefault(b => b.Name == name);
    public DeviceConfig? FindDevice(string name) => Devices.FirstOrDefault(d => d.Name == name);

    /// <summary>The profile <c>[main] cpuid_profile</c> names, if any.</summary>
    public CpuidProfileConfig? CpuidProfile =>
        Main.CpuidProfile is { } name ? CpuidProfiles.FirstOrDefault(p => p.Name == name) : null;
}

/// <summary>How vCPU threads are pinned to host CPUs.</summary>
public enum CpuBinding
{
    /// <summary>Not pinned ("any", the default).</summary>
    Any,
    /// <summary>vCPU i runs on host CPU (online - cpus + i) ("upper-half").</summary>
    UpperHalf,
}

/// <summary>The ACPI table set given to the guest. Only V0 exists upstream.</summary>
public enum AcpiVariant
{
    V0,
}

/// <summary>The <c>[main]</c> section.</summary>
public sealed record MainConfig(
    string Name,
    int Cpus,
    long MemoryMiB,
    string? Bootrom,
    string? BootromVersion,
    string? Kernel,
    string? Initrd,
    string? Cmdline,
    bool UseReservoir,
    string? CpuidProfile,
    CpuBinding CpuBinding,
    byte ExitOnHalt,
    byte? ExitOnReboot,
    IReadOnlyList<string> BootOrder,
    AcpiVariant AcpiVariant)
{
    public long MemoryBytes => MemoryMiB * 1024 * 1024;
}

/// <summary>A <c>[block_dev.NAME]</c> section: a block backend.</summary>
public abstract record BlockDevConfig(string Name, int BlockSize, bool ReadOnly, bool SkipFlush)
{
    /// <summary>The <c>type</c> value as written in the file.</summary>
    public abstract string Type { get; }
    /// <summary>Where the section starts, for messages about its use.</summary>
    public TomlPosition Position { get; init; }
}

/// <summary><c>type = "file"</c>: a regular file or a block device on the host.</summary>
public sealed record FileBlockDev(string Name, int BlockSize, bool ReadOnly, bool SkipFlush, string Path, int Workers)
    : BlockDevConfig(Name, BlockSize, ReadOnly, SkipFlush)
{
    public const int DefaultWorkers = 8;
    public const int MaxWorkers = 32;
    public override string Type => "file";
}

/// <summary>TLS material for a Crucible upstairs (all three or none).</summary>
public sealed record CrucibleTls(string CertPem, string KeyPem, string RootCertPem);

/// <summary><c>type = "crucible"</c>: a Crucible volume of one region replicated on three
/// downstairs.</summary>
public sealed record CrucibleBlockDev(
    string Name,
    int BlockSize,
    bool ReadOnly,
    bool SkipFlush,
    ulong BlocksPerExtent,
    uint ExtentCount,
    IReadOnlyList<IPEndPoint> Targets,
    ulong Generation,
    Guid? UpstairsId,
    bool Lossy,
    double? FlushTimeoutSeconds,
    byte[]? EncryptionKey,
    CrucibleTls? Tls,
    IPEndPoint? ControlAddress)
    : BlockDevConfig(Name, BlockSize, ReadOnly, SkipFlush)
{
    public override string Type => "crucible";
    public ulong SizeBytes => BlocksPerExtent * ExtentCount * (ulong)BlockSize;
}

/// <summary><c>type = "crucible-mem"</c>: a Crucible in-memory volume (no downstairs).</summary>
public sealed record CrucibleMemBlockDev(string Name, int BlockSize, bool ReadOnly, bool SkipFlush, long Size)
    : BlockDevConfig(Name, BlockSize, ReadOnly, SkipFlush)
{
    public override string Type => "crucible-mem";
}

/// <summary><c>type = "mem-async"</c>: a RAM disk served by worker threads.</summary>
public sealed record MemAsyncBlockDev(string Name, int BlockSize, bool ReadOnly, bool SkipFlush, long Size, int Workers)
    : BlockDevConfig(Name, BlockSize, ReadOnly, SkipFlush)
{
    public override string Type => "mem-async";
}

/// <summary><c>type = "cloudinit"</c>: a small FAT volume labelled "cidata" built from the
/// <c>[cloudinit]</c> section.</summary>
public sealed record CloudInitBlockDev(string Name, int BlockSize, bool ReadOnly, bool SkipFlush)
    : BlockDevConfig(Name, BlockSize, ReadOnly, SkipFlush)
{
    public override string Type => "cloudinit";
}

/// <summary>A PCI bus/device/function. Written "bus.device.function" in decimal.</summary>
public readonly record struct PciPath(byte Bus, byte Device, byte Function) : IComparable<PciPath>
{
    public const int MaxDevice = 31;
    public const int MaxFunction = 7;

    public int CompareTo(PciPath other) =>
        (Bus, Device, Function).CompareTo((other.Bus, other.Device, other.Function));

    public override string ToString() => $"{Bus}.{Device}.{Function}";
}

/// <summary>A <c>[dev.NAME]</c> section: a device in the guest.</summary>
public abstract record DeviceConfig(string Name)
{
    /// <summary>The <c>driver</c> value as written in the file.</summary>
    public abstract string Driver { get; }
    /// <summary>The PCI slot, for PCI devices.</summary>
    public virtual PciPath? PciPath => null;
    public TomlPosition Position { get; init; }
}

/// <summary><c>driver = "pci-nvme"</c>: an NVMe controller with one namespace.</summary>
public sealed record NvmeDeviceConfig(string Name, PciPath Slot, string BlockDev) : DeviceConfig(Name)
{
    public override string Driver => "pci-nvme";
    public override PciPath? PciPath => Slot;
}

/// <summary><c>driver = "pci-virtio-block"</c>: a virtio block device.</summary>
public sealed record VirtioBlockDeviceConfig(string Name, PciPath Slot, string BlockDev) : DeviceConfig(Name)
{
    public override string Driver => "pci-virtio-block";
    public override PciPath? PciPath => Slot;
}

/// <summary>The <c>vhost</c> key of <c>pci-virtio-viona</c>: whether the kernel's vhost-net moves
/// the frames of the receive and transmit queues.</summary>
public enum VhostNetMode
{
    /// <summary>No key: vhost-net if /dev/vhost-net can be opened, else the in-process packet
    /// threads (and one log line saying why).</summary>
    Auto,

    /// <summary><c>vhost = true</c>: vhost-net or the VM does not start.</summary>
    Required,

    /// <summary><c>vhost = false</c>: always the in-process packet threads.</summary>
    Off,
}

/// <summary><c>driver = "pci-virtio-viona"</c>: a virtio network device attached to a host
/// interface.</summary>
public sealed record VirtioNetDeviceConfig(
    string Name,
    PciPath Slot,
    string Vnic,
    int RxQueueSize,
    int TxQueueSize,
    bool TxCopyData,
    ushort TxHeaderPad,
    byte[]? Mac,
    VhostNetMode Vhost = VhostNetMode.Auto) : DeviceConfig(Name)
{
    public const int DefaultRxQueueSize = 2048;
    public const int DefaultTxQueueSize = 256;
    public const int MaxQueueSize = 32768;
    public override string Driver => "pci-virtio-viona";
    public override PciPath? PciPath => Slot;
}

/// <summary><c>driver = "qemu-pvpanic"</c>: QEMU's panic notification device (ISA port 0x505).</summary>
public sealed record PvpanicDeviceConfig(string Name, bool EnableIsa) : DeviceConfig(Name)
{
    public const ushort IsaPort = 0x505;
    public override string Driver => "qemu-pvpanic";
}

/// <summary>A vsock port the host forwards to a TCP address.</summary>
public sealed record VsockPortMapping(uint Port, IPEndPoint Address);

/// <summary><c>driver = "pci-virtio-socket"</c>: a virtio vsock device.</summary>
public sealed record VirtioSocketDeviceConfig(
    string Name,
    PciPath Slot,
    uint GuestCid,
    IReadOnlyList<VsockPortMapping> PortMappings) : DeviceConfig(Name)
{
    public override string Driver => "pci-virtio-socket";
    public override PciPath? PciPath => Slot;
}

/// <summary>One cloud-init item: inline text or a file to read when the volume is built.</summary>
public abstract record CloudInitSource
{
    public sealed record Inline(string Text) : CloudInitSource;
    public sealed record FromFile(string Path) : CloudInitSource;
}

/// <summary>The <c>[cloudinit]</c> section. Absent items are empty files.</summary>
public sealed record CloudInitConfig(CloudInitSource? UserData, CloudInitSource? MetaData, CloudInitSource? NetworkConfig);

public enum CpuVendor
{
    Amd,
    Intel,
}

/// <summary>One CPUID leaf override: function (eax) and optional index (ecx), and the four
/// result registers.</summary>
public sealed record CpuidEntry(uint Leaf, uint? Subleaf, uint Eax, uint Ebx, uint Ecx, uint Edx)
{
    public override string ToString() =>
        Subleaf is { } s ? $"0x{Leaf:x}-0x{s:x}" : $"0x{Leaf:x}";
}

/// <summary>A <c>[cpuid.NAME]</c> section.</summary>
public sealed record CpuidProfileConfig(string Name, CpuVendor Vendor, IReadOnlyList<CpuidEntry> Entries);

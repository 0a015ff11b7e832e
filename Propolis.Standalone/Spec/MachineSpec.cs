using Propolis.Standalone.Config;

namespace Propolis.Standalone.Spec;

// The machine a configuration describes, as a typed device tree: the board (CPUs, memory,
// what it boots), the PCI functions of bus 0 with the device in each and the backend behind
// it, the ISA devices, and the console. Built from a validated StandaloneConfig by
// MachineSpec.From; the wiring code turns it into a Propolis.Core machine without looking at
// the configuration again.

/// <summary>The whole machine.</summary>
public sealed record MachineSpec(
    BoardSpec Board,
    IReadOnlyList<PciSlotSpec> PciSlots,
    IReadOnlyList<IsaDeviceSpec> IsaDevices,
    ConsoleSpec Console,
    CloudInitConfig? CloudInit)
{
    /// <summary>Builds the tree from a validated configuration; <paramref name="consolePath"/>
    /// is where the COM1 socket is created.</summary>
    public static MachineSpec From(StandaloneConfig config, string consolePath)
    {
        var main = config.Main;
        var board = new BoardSpec(
            main.Name,
            main.Cpus,
            main.MemoryMiB,
            main.Bootrom is { } rom ? new BootromSpec(rom, main.BootromVersion) : null,
            main.Kernel is { } k ? new KernelBootSpec(k, main.Initrd, main.Cmdline ?? "") : null,
            main.CpuBinding,
            config.CpuidProfile,
            main.BootOrder.Select(n => BootDevice(config.FindDevice(n)!)).ToArray(),
            main.ExitOnHalt,
            main.ExitOnReboot,
            main.AcpiVariant,
            main.UseReservoir);

        var slots = new List<PciSlotSpec>
        {
            new(ChipsetSlots.HostBridge, new HostBridgeSpec()),
            new(ChipsetSlots.Lpc, new LpcSpec()),
            new(ChipsetSlots.PowerManagement, new PowerManagementSpec()),
        };
        var isa = new List<IsaDeviceSpec>();
        foreach (var dev in config.Devices)
        {
            switch (dev)
            {
                case NvmeDeviceConfig n:
                    slots.Add(new(n.Slot, new NvmeSpec(n.Name, config.FindBlockDev(n.BlockDev)!, NvmeSpec.SerialFor(n.BlockDev))));
                    break;
                case VirtioBlockDeviceConfig b:
                    slots.Add(new(b.Slot, new VirtioBlockSpec(b.Name, config.FindBlockDev(b.BlockDev)!)));
                    break;
                case VirtioNetDeviceConfig v:
                    slots.Add(new(v.Slot, new VirtioNetSpec(v)));
                    break;
                case VirtioSocketDeviceConfig s:
                    slots.Add(new(s.Slot, new VirtioSocketSpec(s)));
                    break;
                case PvpanicDeviceConfig p:
                    isa.Add(new PvpanicSpec(p.Name, p.EnableIsa));
                    break;
                default:
                    throw new InvalidOperationException($"device [dev.{dev.Name}] of driver {dev.Driver} has no spec");
            }
        }
        slots.Sort((a, b) => a.Path.CompareTo(b.Path));
        return new MachineSpec(board, slots, isa, new ConsoleSpec(consolePath), config.CloudInit);
    }

    private static BootDeviceSpec BootDevice(DeviceConfig dev) => dev switch
    {
        VirtioBlockDeviceConfig b => new(b.Name, b.Slot, BootDeviceKind.VirtioDisk),
        NvmeDeviceConfig n => new(n.Name, n.Slot, BootDeviceKind.Nvme),
        _ => new(dev.Name, dev.PciPath!.Value, BootDeviceKind.Pci),
    };
}

/// <summary>CPUs, memory and boot.</summary>
public sealed record BoardSpec(
    string Name,
    int Cpus,
    long MemoryMiB,
    BootromSpec? Bootrom,
    KernelBootSpec? Kernel,
    CpuBinding CpuBinding,
    CpuidProfileConfig? Cpuid,
    IReadOnlyList<BootDeviceSpec> BootOrder,
    byte ExitOnHalt,
    byte? ExitOnReboot,
    AcpiVariant AcpiVariant,
    bool UseReservoir)
{
    /// <summary>Guest RAM below 4 GiB ends at 3 GiB; the 32-bit PCI hole follows.</summary>
    public const long LowMemLimit = 3L << 30;
    public long MemoryBytes => MemoryMiB << 20;
    public long LowMemBytes => Math.Min(MemoryBytes, LowMemLimit);
    /// <summary>RAM mapped from 4 GiB up.</summary>
    public long HighMemBytes => MemoryBytes - LowMemBytes;
}

/// <summary>Firmware mapped just below 4 GiB. <paramref name="Version"/> is what fw_cfg
/// reports, when given.</summary>
public sealed record BootromSpec(string Path, string? Version);

/// <summary>Direct kernel boot: a bzImage, an optional initial ramdisk, a command line.</summary>
public sealed record KernelBootSpec(string Kernel, string? Initrd, string Cmdline);

public enum BootDeviceKind
{
    /// <summary>A virtio block disk.</summary>
    VirtioDisk,
    /// <summary>Namespace 1 of an NVMe controller.</summary>
    Nvme,
    /// <summary>Any other PCI device (a NIC, for network boot).</summary>
    Pci,
}

/// <summary>One entry of the boot order handed to the firmware.</summary>
public sealed record BootDeviceSpec(string Name, PciPath Path, BootDeviceKind Kind);

/// <summary>COM1 is connected to a Unix socket at <paramref name="Com1SocketPath"/>; COM2 to
/// COM4 exist and discard their output.</summary>
public sealed record ConsoleSpec(string Com1SocketPath);

/// <summary>One PCI function on bus 0.</summary>
public sealed record PciSlotSpec(PciPath Path, PciDeviceSpec Device);

/// <summary>The device in a PCI slot.</summary>
public abstract record PciDeviceSpec
{
    /// <summary>True for the functions the chipset provides.</summary>
    public virtual bool IsChipset => false;
}

public sealed record HostBridgeSpec : PciDeviceSpec
{
    public override bool IsChipset => true;
}

/// <summary>The PIIX3 PCI-to-ISA bridge: legacy PIC, PIT, RTC, UARTs, PS/2 sit behind it.</summary>
public sealed record LpcSpec : PciDeviceSpec
{
    public override bool IsChipset => true;
}

public sealed record PowerManagementSpec : PciDeviceSpec
{
    public override bool IsChipset => true;
}

/// <summary>An NVMe controller whose namespace 1 is <paramref name="Backend"/>.</summary>
public sealed record NvmeSpec(string Name, BlockDevConfig Backend, string Serial) : PciDeviceSpec
{
    /// <summary>The controller serial number: the block_dev name, cut to the 20 bytes the
    /// Identify Controller structure holds (NVMe 1.4 §5.15.2.1, bytes 23:04).</summary>
    public static string SerialFor(string blockDevName)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(blockDevName);
        if (bytes.Length <= 20)
            return blockDevName;
        int n = 20;
        while (n > 0 && (bytes[n] & 0xC0) == 0x80)
            n--;
        return System.Text.Encoding.UTF8.GetString(bytes, 0, n);
    }
}

public sealed record VirtioBlockSpec(string Name, BlockDevConfig Backend) : PciDeviceSpec;

public sealed record VirtioNetSpec(VirtioNetDeviceConfig Config) : PciDeviceSpec;

public sealed record VirtioSocketSpec(VirtioSocketDeviceConfig Config) : PciDeviceSpec;

/// <summary>A device on the ISA bus behind the LPC bridge.</summary>
public abstract record IsaDeviceSpec(string Name);

/// <summary>QEMU's pvpanic at port 0x505; present only when <paramref name="Enabled"/>.</summary>
public sealed record PvpanicSpec(string Name, bool Enabled) : IsaDeviceSpec(Name)
{
    public const ushort Port = PvpanicDeviceConfig.IsaPort;
}

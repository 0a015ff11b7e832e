namespace Propolis.Core.Hw.FwCfg;

/// <summary>fw_cfg item selectors (QEMU docs/specs/fw_cfg.rst, "Selector Register";
/// include/standard-headers/linux/qemu_fw_cfg.h).</summary>
public static class FwCfgSelector
{
    /// <summary>"QEMU", always present.</summary>
    public const ushort Signature = 0x0000;

    /// <summary>LE32 feature bitmap: <see cref="FwCfgFeatures"/>.</summary>
    public const ushort Id = 0x0001;

    public const ushort Uuid = 0x0002;

    /// <summary>LE64 bytes of RAM.</summary>
    public const ushort RamSize = 0x0003;

    /// <summary>LE16, non-zero when the machine has no graphics (QEMU's -nographic).</summary>
    public const ushort NoGraphic = 0x0004;

    /// <summary>LE16 number of vCPUs present at boot.</summary>
    public const ushort NbCpus = 0x0005;

    public const ushort MachineId = 0x0006;
    public const ushort KernelAddr = 0x0007;

    /// <summary>LE32 size of <see cref="KernelData"/>.</summary>
    public const ushort KernelSize = 0x0008;

    public const ushort KernelCmdline = 0x0009;
    public const ushort InitrdAddr = 0x000A;

    /// <summary>LE32 size of <see cref="InitrdData"/>.</summary>
    public const ushort InitrdSize = 0x000B;

    public const ushort BootDevice = 0x000C;
    public const ushort NumaData = 0x000D;
    public const ushort BootMenu = 0x000E;

    /// <summary>LE16 maximum number of vCPUs (hot-pluggable ones included).</summary>
    public const ushort MaxCpus = 0x000F;

    public const ushort KernelEntry = 0x0010;

    /// <summary>The bzImage from offset (setup_sects + 1) × 512 on: the protected-mode kernel.</summary>
    public const ushort KernelData = 0x0011;

    public const ushort InitrdData = 0x0012;
    public const ushort CmdlineAddr = 0x0013;

    /// <summary>LE32 size of <see cref="CmdlineData"/>, its terminating NUL included.</summary>
    public const ushort CmdlineSize = 0x0014;

    public const ushort CmdlineData = 0x0015;
    public const ushort SetupAddr = 0x0016;

    /// <summary>LE32 size of <see cref="SetupData"/>.</summary>
    public const ushort SetupSize = 0x0017;

    /// <summary>The first (setup_sects + 1) × 512 bytes of the bzImage: boot sector and real-mode setup.</summary>
    public const ushort SetupData = 0x0018;

    /// <summary>The file directory (docs/specs/fw_cfg.rst, "File Directory").</summary>
    public const ushort FileDir = 0x0019;

    /// <summary>Named files get selectors from here, in name order.</summary>
    public const ushort FileFirst = 0x0020;

    /// <summary>One past the last selector a file may have.</summary>
    public const ushort FileLimit = 0x1000;

    /// <summary>Set in a selector that the guest writes to select an item for writing; it is not
    /// part of the item's key.</summary>
    public const ushort WriteChannel = 0x4000;

    /// <summary>Set in architecture-specific selectors (0x8000 and up).</summary>
    public const ushort ArchLocal = 0x8000;
}

/// <summary>Bits of the <see cref="FwCfgSelector.Id"/> item (docs/specs/fw_cfg.rst, "Interface Version").</summary>
[Flags]
public enum FwCfgFeatures : uint
{
    /// <summary>The traditional selector/data port interface.</summary>
    Traditional = 1 << 0,

    /// <summary>The DMA interface at 0x514.</summary>
    Dma = 1 << 1,
}

/// <summary>The control word of an FWCfgDmaAccess (docs/specs/fw_cfg.rst, "DMA interface").</summary>
[Flags]
public enum FwCfgDmaControl : uint
{
    Error = 1 << 0,
    Read = 1 << 1,
    Skip = 1 << 2,
    Select = 1 << 3,
    Write = 1 << 4,
}

using Propolis.Core.Hw.Acpi;
using Propolis.Core.Hw.Smbios;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.FwCfg;

/// <summary>A kernel for OVMF to boot directly (QEMU's -kernel/-initrd/-append).</summary>
public sealed record DirectKernel(byte[] BzImage, byte[] Initrd, string CommandLine);

/// <summary>Everything the firmware is told through fw_cfg, as plain values.</summary>
public sealed record FirmwareInputs
{
    /// <summary>vCPUs present at boot (also the maximum: no CPU hotplug).</summary>
    public required int CpuCount { get; init; }

    public required MemoryLayout Layout { get; init; }

    /// <summary>Ranges marked reserved (type 2) in etc/e820, e.g. the boot ROM.</summary>
    public IReadOnlyList<(ulong Address, ulong Size)> ReservedRanges { get; init; } = [];

    /// <summary>OpenFirmware paths for the bootorder file (see <see cref="BootOrderPath"/>); none: no file.</summary>
    public IReadOnlyList<string> BootOrder { get; init; } = [];

    /// <summary>Append "HALT": boot only what <see cref="BootOrder"/> lists.</summary>
    public bool StrictBootOrder { get; init; }

    public required AcpiPlatform Acpi { get; init; }

    public required SmbiosPlatform Smbios { get; init; }

    public DirectKernel? Kernel { get; init; }
}

/// <summary>The fw_cfg contents propolis-standalone gives OVMF.</summary>
public static class FirmwareFwCfg
{
    /// <summary>A builder holding NB_CPUS and MAX_CPUS (LE16), RAM_SIZE (LE64), NOGRAPHIC (LE16 1:
    /// the machine has no display), etc/e820, bootorder (if any), the ACPI files
    /// (etc/acpi/tables, etc/acpi/rsdp, etc/table-loader), the SMBIOS files and, for a direct
    /// kernel boot, the kernel items. Add more with the builder, then <c>Build(memory)</c>.</summary>
    public static FwCfgBuilder CreateBuilder(FirmwareInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.CpuCount is < 1 or > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(inputs), inputs.CpuCount, "vCPU count out of range");
        }
        var reserved = inputs.ReservedRanges.ToArray();
        var builder = new FwCfgBuilder()
            .AddUInt16Item(FwCfgSelector.NbCpus, (ushort)inputs.CpuCount)
            .AddUInt16Item(FwCfgSelector.MaxCpus, (ushort)inputs.CpuCount)
            .AddUInt64Item(FwCfgSelector.RamSize, inputs.Layout.RamSize)
            .AddUInt16Item(FwCfgSelector.NoGraphic, 1)
            .AddFile(FwCfgFiles.E820FileName, FwCfgFiles.E820(inputs.Layout.RamRegions, reserved));
        if (inputs.BootOrder.Count > 0)
        {
            builder.AddFile(FwCfgFiles.BootOrderFileName, FwCfgFiles.BootOrder(inputs.BootOrder, inputs.StrictBootOrder));
        }
        AcpiTables.Build(inputs.Acpi).AddTo(builder);
        SmbiosTables.Build(inputs.Smbios).AddTo(builder);
        if (inputs.Kernel is { } k)
        {
            builder.AddLinuxKernel(k.BzImage, k.Initrd, k.CommandLine);
        }
        return builder;
    }
}

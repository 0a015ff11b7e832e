using Propolis.Standalone.Spec;

namespace Propolis.Standalone.Machine;

/// <summary>What a valid configuration may ask for that this build cannot run yet. Checked
/// before anything starts: a device the machine cannot build is an error, never left out.</summary>
internal static class UnsupportedDevices
{
    /// <summary>One message per thing this build cannot run, naming it; empty when it can run the spec.</summary>
    public static IReadOnlyList<string> Find(MachineSpec spec)
    {
        var problems = new List<string>();
        if (spec.Board.Bootrom is { } rom)
        {
            problems.Add($"[main] bootrom = \"{rom.Path}\": firmware boot is not supported by this build yet"
                + (spec.Board.Kernel is null ? "; boot a Linux kernel directly with kernel/initrd/cmdline instead" : "; remove bootrom to boot the kernel directly"));
        }
        if (spec.Board.Kernel is null && spec.Board.Bootrom is null)
        {
            problems.Add("[main] has neither kernel nor bootrom: nothing to boot");
        }
        foreach (var slot in spec.PciSlots)
        {
            var what = slot.Device switch
            {
                NvmeSpec n => $"[dev.{n.Name}] (driver pci-nvme, block_dev type {n.Backend.Type})",
                VirtioBlockSpec b => $"[dev.{b.Name}] (driver pci-virtio-block, block_dev type {b.Backend.Type})",
                VirtioNetSpec v => $"[dev.{v.Config.Name}] (driver pci-virtio-viona)",
                VirtioSocketSpec s => $"[dev.{s.Config.Name}] (driver pci-virtio-socket)",
                _ => null,
            };
            if (what is not null)
                problems.Add($"{what} at pci-path {slot.Path}: this build does not support this device yet");
        }
        foreach (var isa in spec.IsaDevices)
        {
            if (isa is PvpanicSpec { Enabled: true } p)
                problems.Add($"[dev.{p.Name}] (driver qemu-pvpanic, ISA port 0x{PvpanicSpec.Port:x}): this build does not support this device yet");
        }
        return problems;
    }
}

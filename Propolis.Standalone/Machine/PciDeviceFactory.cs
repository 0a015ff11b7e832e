using Microsoft.Extensions.Logging;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Lifecycle;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;
using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;

namespace Propolis.Standalone.Machine;

/// <summary>What the machine gives a PCI device kind when it builds one from the spec.</summary>
/// <remarks>
/// Everything here lives as long as the machine: a guest reboot resets the VM in place (same
/// <see cref="Vm"/>, same <see cref="Memory"/>, zeroed), so ioeventfds, irqfds and MSI routes
/// registered once stay valid, and a device only has to return to its power-on state in its
/// lifecycle <see cref="ILifecycle.Reset"/> (the PCI function's own <see cref="PciDevice.Reset"/>
/// is called for it unless the function implements <see cref="ILifecycle"/> itself).
/// </remarks>
/// <param name="Slot">Where the function sits (bus/device/function) and its spec.</param>
/// <param name="Memory">Guest RAM, for DMA (descriptor rings, PRPs, data).</param>
/// <param name="Vm">The hypervisor VM: ioeventfd and irqfd registration, MSI routes.</param>
/// <param name="Msi">Delivers MSI/MSI-X messages (KVM_SIGNAL_MSI); the same sink the PCI bus
/// gives every function for its MSI and MSI-X capabilities.</param>
/// <param name="LoggerFactory">For the device's loggers (name them after <see cref="DeviceName"/>).</param>
internal sealed record PciDeviceContext(PciSlotSpec Slot, GuestMemory Memory, IVm Vm, IMsiSink Msi, ILoggerFactory LoggerFactory)
{
    /// <summary>The device's name from the configuration (<c>[dev.NAME]</c>), for logs.</summary>
    public string DeviceName => PciDeviceFactory.NameOf(Slot.Device);

    /// <summary>The <c>[cloudinit]</c> section, for a disk whose block_dev is of type cloudinit.</summary>
    public CloudInitConfig? CloudInit { get; init; }

    /// <summary>The machine's board (VM name, vCPU count), for devices that size or name
    /// themselves after it (virtio-net: a queue pair per vCPU, a MAC derived from the VM name).</summary>
    public BoardSpec? Board { get; init; }
}

/// <summary>A PCI function built for a slot, with whatever else of it takes part in the
/// machine's lifecycle (a block backend to flush and stop on halt, a worker to pause).</summary>
/// <param name="Function">Attached by the machine at the slot's device/function; INTx (if the
/// function declares it) is routed through the PIIX3 PIRQ links with propolis's formula, and its
/// BARs are assigned by the machine for a direct kernel boot or left to the firmware.</param>
/// <param name="Lifecycle">Extra lifecycle participants, started after the function and halted
/// before it (in reverse order).</param>
internal sealed record PciFunctionParts(PciDevice Function, IReadOnlyList<ILifecycle> Lifecycle)
{
    public PciFunctionParts(PciDevice function) : this(function, []) { }
}

/// <summary>The one place that turns a spec'd PCI device into a Core PCI function.</summary>
/// <remarks>
/// To add a device kind: add one case to <see cref="Builder"/> returning a function that builds
/// it from a <see cref="PciDeviceContext"/>. That is all: the kind stops being refused by
/// <see cref="UnsupportedDevices"/>, the machine attaches it at its slot, gives it INTx, MSI and
/// BARs, adds it to the ACPI <c>_PRT</c>, resets it on reboot, and names it in the firmware's
/// <c>bootorder</c> file when <c>boot_order</c> lists it (virtio disk:
/// <c>/pci@i0cf8/scsi@D,F/disk@0,0</c>; NVMe: <c>/pci@i0cf8/pci8086,5845@D,F/namespace@1,0</c>;
/// others: <c>/pci@i0cf8/device@D,F</c>, from <see cref="BootDeviceKind"/>).
/// </remarks>
internal static class PciDeviceFactory
{
    /// <summary>How to build the device in a spec'd slot, or null when this build cannot.</summary>
    private static Func<PciDeviceContext, PciFunctionParts>? Builder(PciDeviceSpec device) => device switch
    {
        // One case per device kind.
        NvmeSpec => StorageDevices.CreateParts,
        VirtioBlockSpec => StorageDevices.CreateParts,
        VirtioNetSpec v => ctx => VirtioNetDevice.Build(ctx, v),
        _ => null,
    };

    /// <summary>True if this build can put <paramref name="device"/> in the machine (the chipset's
    /// own functions always can: the machine builds those itself).</summary>
    public static bool IsSupported(PciDeviceSpec device) => device.IsChipset || Builder(device) is not null;

    /// <summary>Builds the function for <paramref name="context"/>'s slot.</summary>
    /// <exception cref="InvalidOperationException">The kind is not supported (check <see cref="IsSupported"/> first).</exception>
    public static PciFunctionParts Create(PciDeviceContext context)
    {
        var builder = Builder(context.Slot.Device)
            ?? throw new InvalidOperationException($"{Describe(context.Slot.Device)} has no builder");
        return builder(context);
    }

    /// <summary>The configuration name of a device ("nvme0" for [dev.nvme0]).</summary>
    public static string NameOf(PciDeviceSpec device) => device switch
    {
        NvmeSpec n => n.Name,
        VirtioBlockSpec b => b.Name,
        VirtioNetSpec v => v.Config.Name,
        VirtioSocketSpec s => s.Config.Name,
        HostBridgeSpec => "i440fx-host-bridge",
        LpcSpec => "piix3-lpc",
        PowerManagementSpec => "piix4-pm",
        _ => device.GetType().Name,
    };

    /// <summary>"[dev.NAME] (driver D, …)" for messages.</summary>
    public static string Describe(PciDeviceSpec device) => device switch
    {
        NvmeSpec n => $"[dev.{n.Name}] (driver pci-nvme, block_dev type {n.Backend.Type})",
        VirtioBlockSpec b => $"[dev.{b.Name}] (driver pci-virtio-block, block_dev type {b.Backend.Type})",
        VirtioNetSpec v => $"[dev.{v.Config.Name}] (driver pci-virtio-viona)",
        VirtioSocketSpec s => $"[dev.{s.Config.Name}] (driver pci-virtio-socket)",
        _ => NameOf(device),
    };
}

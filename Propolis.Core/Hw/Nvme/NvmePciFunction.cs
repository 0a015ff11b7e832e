using Microsoft.Extensions.Logging;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Nvme;

/// <summary>The PCI function of an NVMe controller: class 01h/08h/02h (mass storage,
/// non-volatile memory, NVM Express I/O controller), BAR0/1 the 64-bit controller registers
/// (<see cref="NvmeController.Bar0Size"/>), BAR4 the MSI-X table and PBA with one vector per
/// queue pair plus the admin queue.</summary>
/// <remarks>Completions are signalled with MSI-X only: no INTx pin is offered, and while the
/// guest has MSI-X disabled, interrupts are not delivered (drivers enable MSI-X before
/// creating queues; Linux does). A function reset resets the controller.</remarks>
public sealed class NvmePciFunction : PciDevice, INvmeInterrupts
{
    /// <summary>Device ID used under the Oxide vendor ID for this controller.</summary>
    public const ushort NvmeDeviceId = 0x0000;

    public const int RegistersBar = 0;
    public const int MsixBar = 4;
    private const ulong MsixBarSize = 0x1000;
    private const uint MsixTableOffset = 0x000;
    private const uint MsixPbaOffset = 0x800;

    public NvmePciFunction(GuestMemory memory, INvmeBlockBackend backend, NvmeControllerOptions options, ILogger? logger = null)
        : base(new PciIdentity(options.VendorId, NvmeDeviceId, ClassCode: 0x01, Subclass: 0x08, ProgIf: 0x02,
            SubsystemVendorId: options.SubsystemVendorId, SubsystemId: NvmeDeviceId))
    {
        DefineBar(RegistersBar, PciBarKind.Memory64, NvmeController.Bar0Size);
        DefineBar(MsixBar, PciBarKind.Memory32, MsixBarSize);
        AddMsix(options.InterruptVectorCount, MsixBar, MsixTableOffset, MsixBar, MsixPbaOffset);
        Controller = new NvmeController(memory, backend, this, options, logger);
    }

    public NvmeController Controller { get; }

    public override string Name => "nvme";

    void INvmeInterrupts.Raise(ushort vector) => Msix!.Notify(vector);

    protected override void BarRead(int bar, ulong offset, Span<byte> data)
    {
        if (bar == RegistersBar)
        {
            Controller.MmioRead(offset, data);
        }
        else
        {
            data.Clear();
        }
    }

    protected override void BarWrite(int bar, ulong offset, ReadOnlySpan<byte> data)
    {
        if (bar == RegistersBar)
        {
            Controller.MmioWrite(offset, data);
        }
    }

    protected override void OnReset() => Controller.Reset();
}

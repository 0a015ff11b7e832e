using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Virtio;

/// <summary>A virtio block device on PCI, as propolis-standalone exposes it: vendor 0x1AF4, the
/// transitional device id 0x1001, subsystem id 2 (the virtio device id, §4.1.2.1), class 01/00.</summary>
/// <remarks>
/// BAR 0 is the legacy I/O register block (§4.1.4.8) and BAR 1 holds the MSI-X table (offset 0)
/// and PBA (offset 0x800); INTx is used while MSI-X is disabled (§4.1.5.3). Vector 0 is meant for
/// configuration changes and vector 1 for the request queue; the driver assigns them. Like
/// propolis, the function offers the legacy interface only: a Linux driver binds it through
/// virtio_pci's legacy path (the modern virtio_pci_cap list would need vendor-specific capabilities
/// from Hw/Pci; <see cref="VirtioPciTransport"/> already implements the modern register regions).
/// </remarks>
public sealed class PciVirtioBlock : PciDevice, IVirtioInterrupts
{
    /// <summary>Vectors in the MSI-X table: configuration and the request queue.</summary>
    public const int MsixVectors = 2;

    /// <summary>0x18 bytes of registers (with MSI-X) + 0x3C of virtio_blk_config, rounded up.</summary>
    public const ulong LegacyBarSize = 0x80;

    public const int MsixBar = 1;
    public const uint MsixTableOffset = 0, MsixPbaOffset = 0x800;

    private readonly MsixCapability _msix;

    public PciVirtioBlock(GuestMemory memory, IBlockBackend backend, VirtioBlockOptions? options = null, ILogger? logger = null)
        : base(new PciIdentity(VirtioPciLayout.VendorId, VirtioPciLayout.TransitionalDeviceId(VirtioBlockSpec.DeviceId),
            ClassCode: 0x01, Subclass: 0x00, SubsystemVendorId: VirtioPciLayout.VendorId, SubsystemId: VirtioBlockSpec.DeviceId))
    {
        DefineBar(0, PciBarKind.Io, LegacyBarSize);
        DefineBar(MsixBar, PciBarKind.Memory32, 0x1000);
        UseIntx();
        _msix = AddMsix(MsixVectors, MsixBar, MsixTableOffset, MsixBar, MsixPbaOffset);
        Transport = new VirtioPciTransport(events => new VirtioBlock(memory, backend, events, options, logger), this, logger);
        if ((ulong)Transport.LegacyBarSize > LegacyBarSize)
        {
            throw new InvalidOperationException("the legacy register block outgrew BAR 0");
        }
    }

    public VirtioPciTransport Transport { get; }

    public VirtioBlock Block => (VirtioBlock)Transport.Device;

    public override string Name => "virtio-block";

    /// <summary>Function reset (machine reset): the virtio device too, as if the driver wrote status 0.</summary>
    protected override void OnReset() => Transport.Reset();

    protected override void BarRead(int bar, ulong offset, Span<byte> data)
    {
        if (bar == 0 && offset < LegacyBarSize)
        {
            Transport.LegacyRead((int)offset, data);
            return;
        }
        data.Fill(0xFF);
    }

    protected override void BarWrite(int bar, ulong offset, ReadOnlySpan<byte> data)
    {
        if (bar == 0 && offset < LegacyBarSize)
        {
            Transport.LegacyWrite((int)offset, data);
        }
    }

    bool IVirtioInterrupts.MsixEnabled => _msix.Enabled;

    int IVirtioInterrupts.MsixVectorCount => MsixVectors;

    void IVirtioInterrupts.SendMsix(ushort vector) => _msix.Notify(vector);

    void IVirtioInterrupts.SetIntx(bool asserted) => SetIntx(asserted);
}

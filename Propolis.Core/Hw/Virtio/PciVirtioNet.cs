using Microsoft.Extensions.Logging;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Net;

namespace Propolis.Core.Hw.Virtio;

/// <summary>A virtio network device on PCI, as propolis exposes viona: vendor 0x1AF4, the
/// transitional device id 0x1000, subsystem id 1 (the virtio device id, §4.1.2.1), class 02/00
/// (Ethernet controller).</summary>
/// <remarks>
/// BAR 0 is the legacy I/O register block (§4.1.4.8) and BAR 1 holds the MSI-X table (offset 0)
/// and PBA (offset 0x800); INTx is used while MSI-X is disabled (§4.1.5.3). The MSI-X table has
/// one vector for configuration changes and one per queue (2 per pair and the control queue), as
/// Linux's virtio_net asks for. Like <see cref="PciVirtioBlock"/>, the function offers the legacy
/// interface that a Linux driver binds through virtio_pci's legacy path.
/// </remarks>
public sealed class PciVirtioNet : PciDevice, IVirtioInterrupts, IDisposable
{
    /// <summary>0x18 bytes of registers (with MSI-X) + 12 of virtio_net_config, rounded up.</summary>
    public const ulong LegacyBarSize = 0x40;

    public const int MsixBar = 1;
    public const uint MsixTableOffset = 0, MsixPbaOffset = 0x800;

    private readonly MsixCapability _msix;
    private readonly int _vectors;

    /// <param name="backend">Owned by the caller, which disposes it after this device.</param>
    public PciVirtioNet(GuestMemory memory, INetBackend backend, VirtioNetOptions? options = null, ILogger? logger = null)
        : base(new PciIdentity(VirtioPciLayout.VendorId, VirtioPciLayout.TransitionalDeviceId(VirtioNetSpec.DeviceId),
            ClassCode: 0x02, Subclass: 0x00, SubsystemVendorId: VirtioPciLayout.VendorId, SubsystemId: VirtioNetSpec.DeviceId))
    {
        options ??= new VirtioNetOptions();
        var pairs = Math.Min(options.MaxQueuePairs, backend.QueueCount);
        // The table (16 bytes a vector) must end before the PBA.
        _vectors = Math.Min(2 * pairs + 2, (int)(MsixPbaOffset / 16));
        DefineBar(0, PciBarKind.Io, LegacyBarSize);
        DefineBar(MsixBar, PciBarKind.Memory32, 0x1000);
        UseIntx();
        _msix = AddMsix(_vectors, MsixBar, MsixTableOffset, MsixBar, MsixPbaOffset);
        Transport = new VirtioPciTransport(events => new VirtioNet(memory, backend, events, options, logger), this, logger);
        if ((ulong)Transport.LegacyBarSize > LegacyBarSize)
        {
            throw new InvalidOperationException("the legacy register block outgrew BAR 0");
        }
    }

    public VirtioPciTransport Transport { get; }

    public VirtioNet Net => (VirtioNet)Transport.Device;

    public override string Name => "virtio-net";

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

    int IVirtioInterrupts.MsixVectorCount => _vectors;

    void IVirtioInterrupts.SendMsix(ushort vector) => _msix.Notify(vector);

    void IVirtioInterrupts.SetIntx(bool asserted) => SetIntx(asserted);

    /// <summary>Stops the packet I/O threads.</summary>
    public void Dispose() => Net.Dispose();
}

using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Virtio;

/// <summary>A virtio block device on PCI, transitional (virtio 1.2 §4.1.2.3): vendor 0x1AF4, device
/// id 0x1001, subsystem id 2 (the virtio device id, §4.1.2.1), class 01/00. The BARs, capabilities
/// and doorbells are those of every <see cref="PciVirtioFunction"/>.</summary>
/// <remarks>Every request queue's doorbells signal that queue's eventfd; one dedicated thread
/// polls them all and drains whichever queue was notified
/// (<see cref="VirtioPciTransport.NotifyQueue"/>), handing each request to the backend's worker
/// pool, so a request costs the guest no exit to userspace and draining never waits for I/O.
/// With <see cref="VirtioBlockOptions.NumQueues"/> above one (VIRTIO_BLK_F_MQ) the MSI-X table
/// has a vector per queue besides the configuration vector, and a completion interrupts through
/// its own queue's vector.</remarks>
public sealed class PciVirtioBlock : PciVirtioFunction
{
    private readonly ILogger? _logger;
    private EventFdWaiter? _notifier;

    public PciVirtioBlock(GuestMemory memory, IBlockBackend backend, VirtioBlockOptions? options = null, ILogger? logger = null)
        : base(new PciIdentity(VirtioPciLayout.VendorId, VirtioPciLayout.TransitionalDeviceId(VirtioBlockSpec.DeviceId),
            ClassCode: 0x01, Subclass: 0x00, SubsystemVendorId: VirtioPciLayout.VendorId, SubsystemId: VirtioBlockSpec.DeviceId),
            events => new VirtioBlock(memory, backend, events, options, logger), logger)
    {
        _logger = logger;
    }

    public VirtioBlock Block => (VirtioBlock)Transport.Device;

    public override string Name => "virtio-block";

    protected override string DoorbellConsumer => "one notification thread drains the queues into the backend's workers";

    /// <summary>The notification thread starts with the first doorbell registered.</summary>
    protected override EventFd DoorbellEventFd(int queue)
    {
        _notifier ??= new EventFdWaiter($"{Name} notify", Transport.Device.Queues.Length, Transport.NotifyQueue, _logger);
        return _notifier[queue];
    }

    protected override void DisposeDevice()
    {
        _notifier?.Dispose();
        _notifier = null;
    }
}

using Microsoft.Extensions.Logging;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Virtio;

/// <summary>A virtio network device on PCI, as propolis exposes viona: vendor 0x1AF4, the
/// transitional device id 0x1000, subsystem id 1 (the virtio device id, §4.1.2.1), class 02/00
/// (Ethernet controller). The BARs, capabilities and doorbells are those of every
/// <see cref="PciVirtioFunction"/>: a legacy driver uses BAR 0, a modern one (Linux by default)
/// the capabilities into BAR 4.</summary>
/// <remarks>
/// <para>The MSI-X table has one vector for configuration changes and one per queue (2 per pair
/// and the control queue), as Linux's virtio_net asks for.</para>
/// <para>Doorbells. Both doorbells of a data queue (the legacy port with the queue number as
/// datamatch, and the modern notify address) are ioeventfds on that queue's
/// <see cref="KickEventFd"/>, which its queue pair's packet thread polls: a notification goes from
/// the guest to the packet thread inside KVM, never through a vCPU thread. The control queue's
/// doorbell traps (it carries a few commands, no packets) and is answered on the vCPU. Which queue
/// number is the control queue depends on VIRTIO_NET_F_MQ, so the doorbells are registered again
/// after feature negotiation and device reset.</para>
/// <para>Hooks for an in-kernel data path (vhost-net), per data queue: <see cref="KickEventFd"/>
/// (the kick), <see cref="PciVirtioFunction.VectorIrqFd"/> of the queue's
/// <see cref="VirtQueue.MsixVector"/> (the call), <see cref="VirtioNet.StopQueue"/> /
/// <see cref="VirtioNet.StartQueue"/> (hand the queue over and take it back), and
/// <see cref="VirtQueue.Ring"/> / <see cref="VirtQueue.RestoreLastAvailIndex"/> (the vring
/// addresses, size and base).</para>
/// </remarks>
public sealed class PciVirtioNet : PciVirtioFunction
{
    /// <param name="backend">Owned by the caller, which disposes it after this device.</param>
    public PciVirtioNet(GuestMemory memory, INetBackend backend, VirtioNetOptions? options = null, ILogger? logger = null)
        : base(new PciIdentity(VirtioPciLayout.VendorId, VirtioPciLayout.TransitionalDeviceId(VirtioNetSpec.DeviceId),
            ClassCode: 0x02, Subclass: 0x00, SubsystemVendorId: VirtioPciLayout.VendorId, SubsystemId: VirtioNetSpec.DeviceId),
            events => new VirtioNet(memory, backend, events, options, logger), logger)
    {
        _logger = logger;
        Net.ControlQueueMoved = RefreshDoorbells;
    }

    private readonly ILogger? _logger;

    public VirtioNet Net => (VirtioNet)Transport.Device;

    /// <summary>The in-kernel data path, once <see cref="AttachVhost"/> was called.</summary>
    public VirtioNetVhost? Vhost => Net.Vhost;

    /// <summary>From the next DRIVER_OK on, the data queues of every pair the driver enables go to
    /// <paramref name="vhost"/> (kick: <see cref="KickEventFd"/>, call: the irqfd of the queue's
    /// MSI-X vector, backend: the pair's queue of <paramref name="backend"/>, which must be the
    /// backend this function was built with). Call before the guest runs; the caller keeps
    /// ownership of <paramref name="vhost"/> and disposes it after this function.</summary>
    public VirtioNetVhost AttachVhost(IVhostNetBackend vhost, INetBackend backend)
    {
        if (Net.Vhost is not null)
        {
            throw new InvalidOperationException("vhost-net is attached already");
        }
        var attached = new VirtioNetVhost(Net, vhost, backend, KickEventFd, v => VectorIrqFd(v), () => ((IVirtioInterrupts)this).MsixEnabled, _logger);
        Net.Vhost = attached;
        return attached;
    }

    public override string Name => "virtio-net";

    protected override string DoorbellConsumer => "data queues wake their packet threads directly, the control queue traps";

    /// <summary>The eventfd that both doorbells of data queue <paramref name="queue"/> (receiveq
    /// 2i, transmitq 2i+1) signal, through KVM when registered as ioeventfds and through
    /// <see cref="VirtioNet.QueueNotify"/> when they trap: vhost's kick. Null for the control
    /// queue and beyond the data queues.</summary>
    public EventFd? KickEventFd(int queue) => Net.NotifyEventFd(queue);

    protected override EventFd? DoorbellEventFd(int queue) => queue == Net.ControlQueueIndex ? null : Net.NotifyEventFd(queue);

    /// <summary>Stops the packet I/O threads.</summary>
    protected override void DisposeDevice() => Net.Dispose();
}

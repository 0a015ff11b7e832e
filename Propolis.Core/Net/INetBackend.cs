namespace Propolis.Core.Net;

/// <summary>Offloads the guest can receive, as the TUN driver names them (&lt;linux/if_tun.h&gt;
/// TUN_F_*): what the host may hand over without computing a checksum or segmenting.</summary>
[Flags]
public enum NetOffloads : uint
{
    None = 0,
    /// <summary>Frames may carry a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM).</summary>
    Checksum = 0x01,
    Tso4 = 0x02,
    Tso6 = 0x04,
    TsoEcn = 0x08,
    Ufo = 0x10,
}

/// <summary>Where a virtio-net device's frames go: a set of non-blocking descriptors, one per
/// queue pair, each carrying one Ethernet frame per read or write, prefixed by a
/// struct virtio_net_hdr of the size set with <see cref="Configure"/> (a Linux TAP with IFF_VNET_HDR).</summary>
public interface INetBackend : IDisposable
{
    /// <summary>What the backend is, for logs (e.g. <c>tap vnic0 (created, 2 queues)</c>).</summary>
    string Description { get; }

    /// <summary>Queue pairs the backend can serve (≥ 1).</summary>
    int QueueCount { get; }

    /// <summary>The backend's MTU: the largest IP packet the host side sends without segmentation offload.</summary>
    int Mtu { get; }

    /// <summary>The descriptor of queue <paramref name="queue"/>: non-blocking, one frame per readv/writev.</summary>
    int QueueDescriptor(int queue);

    /// <summary>Sets the virtio-net header size both directions use (10 or 12 bytes) and the offloads
    /// the guest accepted for received frames. Called when the driver has negotiated its features.</summary>
    void Configure(int vnetHeaderSize, NetOffloads guestOffloads);

    /// <summary>Only queues below <paramref name="count"/> receive frames from now on (virtio-net
    /// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET); the others are detached and must not be read or polled.</summary>
    void SetActiveQueues(int count);
}

/// <summary>The network backend could not be set up: the message says what and what to do.</summary>
public sealed class NetBackendException(string message, Exception? inner = null) : Exception(message, inner);

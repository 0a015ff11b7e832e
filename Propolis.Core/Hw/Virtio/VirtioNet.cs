using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Virtio;

/// <summary>Options for a <see cref="VirtioNet"/>.</summary>
public sealed record VirtioNetOptions
{
    /// <summary>Size of each receive queue (power of two).</summary>
    public ushort RxQueueSize { get; init; } = 256;

    /// <summary>Size of each transmit queue (power of two).</summary>
    public ushort TxQueueSize { get; init; } = 256;

    /// <summary>Queue pairs offered (VIRTIO_NET_F_MQ when more than 1); at most the backend's queues.</summary>
    public int MaxQueuePairs { get; init; } = 1;

    /// <summary>The guest's MAC address (6 bytes, unicast).</summary>
    public byte[] Mac { get; init; } = [0x02, 0, 0, 0, 0, 1];
}

/// <summary>The virtio-net device (virtio 1.2 §5.1) over an <see cref="INetBackend"/> (a TAP):
/// receive and transmit queue pairs, the control queue, and the checksum and segmentation
/// offloads passed through the virtio-net header that the TAP reads and writes itself.</summary>
/// <remarks>
/// <para>Queues (§5.1.2): receiveq<i>i</i> is 2i, transmitq<i>i</i> is 2i+1; the control queue is 2
/// unless VIRTIO_NET_F_MQ is negotiated, then 2 × max_virtqueue_pairs. Until the driver sends
/// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET only pair 0 is used; the backend's other queues are detached
/// so the host never steers a frame to a queue nobody reads.</para>
/// <para>Threads. Packet I/O runs on one thread per queue pair, never on a vCPU: it sleeps in
/// poll(2) on the pair's notify eventfds (signalled by <see cref="QueueNotify"/>, or by KVM
/// directly when they are registered as ioeventfds) and on the backend descriptor. Transmit
/// writes each chain with one writev straight from guest memory. Receive reads each frame with
/// one readv straight into the driver's buffers once it holds buffers for the largest frame the
/// negotiated offloads allow; with fewer buffers available it reads into a bounce buffer and
/// copies, keeping the frame until the driver posts enough buffers. With VIRTIO_NET_F_MRG_RXBUF a
/// frame spans several chains, published with one used.idx update (num_buffers, §5.1.6.4).
/// The control queue is answered on the thread that notified it (it touches no packets).</para>
/// <para>Errors. Every chain is validated by <see cref="VirtQueue"/>; a receive chain with a
/// device-readable buffer or smaller than the header, or a transmit chain shorter than the
/// header, is refused (counted, returned with 0 bytes). A frame the backend refuses is counted
/// in <see cref="TxErrors"/>; a received frame that fits no buffer is counted in <see cref="RxDropped"/>.
/// Nothing the guest or the network sends ends a thread.</para>
/// </remarks>
public sealed class VirtioNet : IVirtioDevice, IDisposable
{
    /// <summary>Most descriptors one chain may have (Linux uses at most MAX_SKB_FRAGS + 2).</summary>
    public const int MaxChainSegments = 64;

    /// <summary>The largest frame the TAP hands over with segmentation offload: a 64 KiB IP packet,
    /// an Ethernet header and a VLAN tag.</summary>
    public const int MaxGsoFrame = 65536 + 18;

    private readonly GuestMemory _memory;
    private readonly INetBackend _backend;
    private readonly IVirtQueueEvents _transport;
    private readonly ILogger? _logger;
    private readonly VirtQueue[] _queues;
    private readonly NetQueuePair[] _pairs;
    private readonly byte[] _config = new byte[VirtioNetSpec.Config.Size];
    private readonly ChainSegment[] _ctrlSegments = new ChainSegment[MaxChainSegments];
    private readonly byte[] _ctrlBuffer = new byte[4096];
    private readonly Lock _ctrlLock = new();
    private volatile int _ctrlIndex = 2;
    private volatile int _activePairs = 1;
    private bool _disposed;

    /// <param name="transport">Receives queue interrupts and needs-reset requests (the transport).</param>
    /// <param name="backend">Owned by the caller; must outlive <see cref="Dispose"/>.</param>
    public VirtioNet(GuestMemory memory, INetBackend backend, IVirtQueueEvents transport, VirtioNetOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(transport);
        options ??= new VirtioNetOptions();
        if (options.Mac is not { Length: 6 } mac || (mac[0] & 1) != 0)
        {
            throw new ArgumentException("the MAC address is 6 bytes and unicast", nameof(options));
        }
        var pairs = Math.Min(options.MaxQueuePairs, backend.QueueCount);
        if (pairs < 1 || pairs > VirtioNetSpec.MaxQueuePairsLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxQueuePairs, "queue pairs are 1 to 0x8000 (and the backend must have one queue)");
        }
        _memory = memory;
        _backend = backend;
        _transport = transport;
        _logger = logger;
        Mac = (byte[])mac.Clone();
        MaxQueuePairs = pairs;

        var events = transport;
        _queues = new VirtQueue[2 * pairs + 1];
        for (var i = 0; i < pairs; i++)
        {
            _queues[2 * i] = new VirtQueue(memory, (ushort)(2 * i), options.RxQueueSize, events, logger);
            _queues[2 * i + 1] = new VirtQueue(memory, (ushort)(2 * i + 1), options.TxQueueSize, events, logger);
        }
        _queues[2 * pairs] = new VirtQueue(memory, (ushort)(2 * pairs), 64, events, logger);

        var mtu = Math.Clamp(backend.Mtu, 68, 65535);
        Mtu = (ushort)mtu;
        var features = VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx | VirtioFeatures.AnyLayout
            | VirtioNetSpec.FeatureMac | VirtioNetSpec.FeatureStatus | VirtioNetSpec.FeatureMtu
            | VirtioNetSpec.FeatureCsum | VirtioNetSpec.FeatureGuestCsum
            | VirtioNetSpec.FeatureHostTso4 | VirtioNetSpec.FeatureHostTso6 | VirtioNetSpec.FeatureGuestTso4 | VirtioNetSpec.FeatureGuestTso6
            | VirtioNetSpec.FeatureMrgRxbuf | VirtioNetSpec.FeatureCtrlVq | VirtioNetSpec.FeatureCtrlRx;
        if (pairs > 1)
        {
            features |= VirtioNetSpec.FeatureMq;
        }
        DeviceFeatures = features;

        var c = _config.AsSpan();
        Mac.CopyTo(c[VirtioNetSpec.Config.Mac..]);
        BinaryPrimitives.WriteUInt16LittleEndian(c[VirtioNetSpec.Config.Status..], VirtioNetSpec.StatusLinkUp);
        BinaryPrimitives.WriteUInt16LittleEndian(c[VirtioNetSpec.Config.MaxVirtqueuePairs..], (ushort)pairs);
        BinaryPrimitives.WriteUInt16LittleEndian(c[VirtioNetSpec.Config.Mtu..], Mtu);

        backend.SetActiveQueues(1);
        _pairs = new NetQueuePair[pairs];
        for (var i = 0; i < pairs; i++)
        {
            _pairs[i] = new NetQueuePair(this, memory, i, _queues[2 * i], _queues[2 * i + 1], backend.QueueDescriptor(i), logger);
        }
        foreach (var p in _pairs)
        {
            p.StartThread();
        }
    }

    public ushort DeviceId => VirtioNetSpec.DeviceId;

    public ulong DeviceFeatures { get; }

    /// <summary>Features the driver accepted (0 until negotiated).</summary>
    public ulong NegotiatedFeatures { get; private set; }

    public ReadOnlySpan<VirtQueue> Queues => _queues;

    public int ConfigSize => _config.Length;

    public byte[] Mac { get; }

    public ushort Mtu { get; }

    public int MaxQueuePairs { get; }

    /// <summary>Queue pairs in use (1 until VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET).</summary>
    public int ActiveQueuePairs => _activePairs;

    /// <summary>The control queue's index under the negotiated features (§5.1.2).</summary>
    public int ControlQueueIndex => _ctrlIndex;

    /// <summary>VIRTIO_NET_CTRL_RX_PROMISC as last set by the driver. A TAP hands the guest every
    /// frame the host sends it, so this changes nothing on the host side.</summary>
    public bool Promiscuous { get; private set; }

    public bool AllMulticast { get; private set; }

    /// <summary>Unicast and multicast entries of the last VIRTIO_NET_CTRL_MAC_TABLE_SET.</summary>
    public (int Unicast, int Multicast) MacTable { get; private set; }

    /// <summary>Size of the virtio-net header in use: 12 with VERSION_1 or MRG_RXBUF, else 10 (§5.1.6).</summary>
    public int HeaderSize { get; private set; } = VirtioNetSpec.Header.Size;

    public bool MergeableRxBuffers { get; private set; }

    /// <summary>Frames sent by the guest and written to the backend.</summary>
    public long TxFrames => Sum(static p => p.TxFrames);

    /// <summary>Frames the backend refused (a bad GSO header, a frame too large).</summary>
    public long TxErrors => Sum(static p => p.TxErrors);

    /// <summary>Frames read from the backend and given to the guest.</summary>
    public long RxFrames => Sum(static p => p.RxFrames);

    /// <summary>Frames read from the backend that fit no buffer the driver offers.</summary>
    public long RxDropped => Sum(static p => p.RxDropped);

    /// <summary>Chains refused by any queue (malformed, or unusable for their queue's direction).</summary>
    public long MalformedChains
    {
        get
        {
            long n = 0;
            foreach (var q in _queues)
            {
                n += q.MalformedChains;
            }
            return n;
        }
    }

    private long Sum(Func<NetQueuePair, long> counter)
    {
        long n = 0;
        foreach (var p in _pairs)
        {
            n += counter(p);
        }
        return n;
    }

    /// <summary>The eventfd that wakes queue <paramref name="queue"/>'s I/O thread, for registering
    /// as a KVM ioeventfd on its notify address; null for the control queue (answered inline).</summary>
    public EventFd? NotifyEventFd(int queue)
    {
        if ((uint)queue >= (uint)(2 * MaxQueuePairs))
        {
            return null;
        }
        var p = _pairs[queue / 2];
        return queue % 2 == 0 ? p.RxNotify : p.TxNotify;
    }

    public void ReadConfig(int offset, Span<byte> data) => VirtioConfigSpace.Read(_config, offset, data);

    /// <summary>Every field is read-only (the MAC is writable only by a legacy driver without
    /// VIRTIO_NET_F_MAC, which this device always offers): writes are ignored (§5.1.4).</summary>
    public void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
    }

    public void FeaturesNegotiated(ulong features)
    {
        NegotiatedFeatures = features;
        foreach (var q in _queues)
        {
            q.ApplyRingFeatures(features);
        }
        var mrg = (features & VirtioNetSpec.FeatureMrgRxbuf) != 0;
        var header = mrg || (features & VirtioFeatures.Version1) != 0 ? VirtioNetSpec.Header.Size : VirtioNetSpec.Header.LegacySize;
        var offloads = NetOffloads.None;
        if ((features & VirtioNetSpec.FeatureGuestCsum) != 0)
        {
            offloads |= NetOffloads.Checksum;
            // §5.1.3.1: the TSO features depend on GUEST_CSUM.
            if ((features & VirtioNetSpec.FeatureGuestTso4) != 0) { offloads |= NetOffloads.Tso4; }
            if ((features & VirtioNetSpec.FeatureGuestTso6) != 0) { offloads |= NetOffloads.Tso6; }
        }
        var maxFrame = header + ((offloads & (NetOffloads.Tso4 | NetOffloads.Tso6)) != 0 ? MaxGsoFrame : Mtu + 18);
        _backend.Configure(header, offloads);
        HeaderSize = header;
        MergeableRxBuffers = mrg;
        SetControlQueueIndex((features & VirtioNetSpec.FeatureMq) != 0 ? 2 * MaxQueuePairs : 2);
        foreach (var p in _pairs)
        {
            p.Configure(header, mrg, maxFrame);
        }
        SetActivePairs(1);
    }

    /// <summary>Called when the control queue's number changes (negotiation of
    /// VIRTIO_NET_F_MQ, device reset), under the transport's lock: the PCI function registers the
    /// doorbells again.</summary>
    internal Action? ControlQueueMoved { get; set; }

    private void SetControlQueueIndex(int index)
    {
        if (_ctrlIndex != index)
        {
            _ctrlIndex = index;
            ControlQueueMoved?.Invoke();
        }
    }

    /// <summary>The driver notified <paramref name="queue"/>: wakes its pair's I/O thread, or
    /// answers the control queue. Never does packet I/O on the calling (vCPU) thread.</summary>
    public void QueueNotify(int queue)
    {
        if (queue == _ctrlIndex)
        {
            ProcessControlQueue();
            return;
        }
        if ((uint)queue < (uint)(2 * MaxQueuePairs))
        {
            var p = _pairs[queue / 2];
            (queue % 2 == 0 ? p.RxNotify : p.TxNotify).Signal();
        }
    }

    /// <summary>The in-kernel data path the data queues are handed to at DRIVER_OK, if any
    /// (<see cref="PciVirtioNet.AttachVhost"/>).</summary>
    internal VirtioNetVhost? Vhost { get; set; }

    /// <summary>DRIVER_OK: the data queues go to vhost-net when it is attached, else stay with
    /// the packet threads; the log says which, at Information.</summary>
    public void DriverOk()
    {
        if (Vhost is { } vhost)
        {
            vhost.DriverOk();
            return;
        }
        var pairs = 0;
        var usable = (NegotiatedFeatures & VirtioNetSpec.FeatureMq) != 0 ? MaxQueuePairs : 1;
        for (var i = 0; i < usable; i++)
        {
            if (_queues[2 * i].IsEnabled && _queues[2 * i + 1].IsEnabled)
            {
                pairs++;
            }
        }
        _logger?.LogInformation("userspace packet threads: {Pairs} queue pair(s)", pairs);
    }

    public void Reset()
    {
        // The kernel lets go of the rings first: nothing may write them once they are reset. The
        // packet threads stay off the queues it had until they are reset (ResetDone below): the
        // driver is discarding those rings, and the status still reads DRIVER_OK here.
        Vhost?.Reset();
        NegotiatedFeatures = 0;
        foreach (var p in _pairs)
        {
            p.Quiesce();
        }
        foreach (var q in _queues)
        {
            q.Reset();
        }
        // Only now may the packet threads look at the queues the kernel had (they are reset).
        Vhost?.ResetDone();
        SetControlQueueIndex(2);
        Promiscuous = AllMulticast = false;
        MacTable = (0, 0);
        SetActivePairs(1);
    }

    private void SetActivePairs(int count)
    {
        if (count == _activePairs)
        {
            return;
        }
        _backend.SetActiveQueues(count);
        _activePairs = count;
        foreach (var p in _pairs)
        {
            p.Wake();
        }
    }

    /// <summary>Pair <paramref name="pair"/> is in use and the driver has set DRIVER_OK: its
    /// thread is woken by ioeventfds directly, so it checks the device status itself.</summary>
    internal bool IsPairActive(int pair) => pair < _activePairs && _transport.DriverOk;

    // ---- control queue (§5.1.6.5) ----

    private void ProcessControlQueue()
    {
        lock (_ctrlLock)
        {
            var q = _queues[_ctrlIndex];
            q.DisableNotification();
            while (true)
            {
                PopResult r;
                while ((r = q.TryPop(_ctrlSegments, out var chain)) == PopResult.Chain)
                {
                    HandleControl(q, chain);
                }
                if (r == PopResult.Broken || !q.EnableNotification())
                {
                    return;
                }
            }
        }
    }

    private void HandleControl(VirtQueue q, DescriptorChain chain)
    {
        var generation = q.Generation;
        // struct virtio_net_ctrl: u8 class, u8 command, command-specific data (device-readable),
        // u8 ack (device-writable).
        if (chain.ReadableLength < 2 || chain.WritableLength < 1)
        {
            q.RefuseChain(chain.Head, ChainError.DeviceRejected);
            return;
        }
        var segments = _ctrlSegments.AsSpan(0, chain.SegmentCount);
        byte ack;
        if (chain.ReadableLength > _ctrlBuffer.Length)
        {
            ack = VirtioNetSpec.Ctrl.Err;
        }
        else
        {
            var command = _ctrlBuffer.AsSpan(0, (int)chain.ReadableLength);
            var pos = 0;
            foreach (var s in segments)
            {
                if (s.Writable)
                {
                    break;
                }
                _memory.TryRead(s.Address, command.Slice(pos, (int)s.Length));
                pos += (int)s.Length;
            }
            ack = Execute(command[0], command[1], command[2..]);
        }
        foreach (var s in segments)
        {
            if (s.Writable)
            {
                _memory.TryWriteByte(s.Address, ack);
                break;
            }
        }
        q.PushUsed(chain.Head, 1, generation);
    }

    private byte Execute(byte cls, byte cmd, ReadOnlySpan<byte> data)
    {
        var f = NegotiatedFeatures;
        switch (cls)
        {
            case VirtioNetSpec.Ctrl.ClassRx when (f & VirtioNetSpec.FeatureCtrlRx) != 0 && data.Length == 1:
                if (cmd == VirtioNetSpec.Ctrl.RxPromisc)
                {
                    Promiscuous = data[0] != 0;
                    return VirtioNetSpec.Ctrl.Ok;
                }
                if (cmd == VirtioNetSpec.Ctrl.RxAllMulti)
                {
                    AllMulticast = data[0] != 0;
                    return VirtioNetSpec.Ctrl.Ok;
                }
                return VirtioNetSpec.Ctrl.Err;
            case VirtioNetSpec.Ctrl.ClassMac when cmd == VirtioNetSpec.Ctrl.MacTableSet && (f & VirtioNetSpec.FeatureCtrlRx) != 0:
            {
                // Two struct virtio_net_ctrl_mac: le32 entries, then entries × 6 bytes (unicast, multicast).
                if (!TryMacTable(data, out var unicast, out var rest) || !TryMacTable(rest, out var multicast, out rest) || !rest.IsEmpty)
                {
                    return VirtioNetSpec.Ctrl.Err;
                }
                MacTable = (unicast, multicast);
                return VirtioNetSpec.Ctrl.Ok;
            }
            case VirtioNetSpec.Ctrl.ClassMq when cmd == VirtioNetSpec.Ctrl.MqVqPairsSet && (f & VirtioNetSpec.FeatureMq) != 0 && data.Length == 2:
            {
                var n = BinaryPrimitives.ReadUInt16LittleEndian(data);
                if (n < 1 || n > MaxQueuePairs)
                {
                    return VirtioNetSpec.Ctrl.Err;
                }
                SetActivePairs(n);
                _logger?.LogDebug("virtio-net: {Pairs} queue pair(s) in use", n);
                return VirtioNetSpec.Ctrl.Ok;
            }
            default:
                return VirtioNetSpec.Ctrl.Err;
        }
    }

    private static bool TryMacTable(ReadOnlySpan<byte> data, out int entries, out ReadOnlySpan<byte> rest)
    {
        entries = 0;
        rest = default;
        if (data.Length < 4)
        {
            return false;
        }
        var n = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (n > (uint)(data.Length - 4) / 6)
        {
            return false;
        }
        entries = (int)n;
        rest = data[(4 + 6 * entries)..];
        return true;
    }

    // ---- handing data queues to another data path (vhost-net) ----

    /// <summary>Stops this process's packet thread from touching data queue <paramref name="queue"/>
    /// (receiveq 2i or transmitq 2i+1) until <see cref="StartQueue"/>: it no longer polls the
    /// queue's <see cref="NotifyEventFd"/>, pops its chains, or reads (receive) or writes
    /// (transmit) the backend descriptor of the pair. Returns once the thread has let go; chains it
    /// had taken and not completed are given back (last_avail_idx moves back over them, see
    /// <see cref="VirtQueue.LastAvailIndex"/>), a received frame waiting for buffers is dropped.
    /// A device reset does not restart a stopped queue. False for the control queue or a queue
    /// number the device does not have.</summary>
    public bool StopQueue(int queue)
    {
        if ((uint)queue >= (uint)(2 * MaxQueuePairs))
        {
            return false;
        }
        _pairs[queue / 2].Stop(receive: queue % 2 == 0);
        return true;
    }

    /// <summary>Gives data queue <paramref name="queue"/> back to the packet thread, which resumes
    /// from the queue's <see cref="VirtQueue.LastAvailIndex"/> (restore it first with
    /// <see cref="VirtQueue.RestoreLastAvailIndex"/> to where the other data path stopped).</summary>
    public bool StartQueue(int queue)
    {
        if ((uint)queue >= (uint)(2 * MaxQueuePairs))
        {
            return false;
        }
        _pairs[queue / 2].Start(receive: queue % 2 == 0);
        return true;
    }

    /// <summary>True while <see cref="StopQueue"/> keeps the packet thread away from <paramref name="queue"/>.</summary>
    public bool IsQueueStopped(int queue) =>
        (uint)queue < (uint)(2 * MaxQueuePairs) && _pairs[queue / 2].IsStopped(receive: queue % 2 == 0);

    /// <summary>Lifecycle pause: no frame moves and no interrupt is raised until <see cref="Resume"/>;
    /// returns when every queue pair's thread has finished its batch.</summary>
    public void Pause()
    {
        // Queues with vhost-net come back first, then every packet thread is paused.
        Vhost?.Pause();
        foreach (var p in _pairs)
        {
            p.Pause();
        }
    }

    public void Resume()
    {
        foreach (var p in _pairs)
        {
            p.Resume();
        }
        Vhost?.Resume();
    }

    /// <summary>Stops the I/O threads (the backend stays open: its owner closes it).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Vhost?.Dispose();
        foreach (var p in _pairs)
        {
            p.Dispose();
        }
    }
}

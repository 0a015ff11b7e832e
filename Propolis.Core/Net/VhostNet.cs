using Microsoft.Extensions.Logging;
using Propolis.Core.Interop;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;
using Vhost = Propolis.Core.Interop.Interop.Vhost;

namespace Propolis.Core.Net;

/// <summary>One virtqueue as vhost needs it: its size and guest-physical ring addresses, the
/// index of the next available entry to process, the eventfd the driver's notifications signal
/// (a KVM ioeventfd) and the eventfd that interrupts the guest (a KVM irqfd), or none.</summary>
public readonly record struct VhostQueue(ushort Size, ulong DescriptorTable, ulong AvailRing, ulong UsedRing, ushort NextAvail, EventFd Kick, EventFd? Call);

/// <summary>An in-kernel data path for a virtio-net device's queue pairs (vhost-net; a fake in tests).</summary>
public interface IVhostNetBackend
{
    /// <summary>Queue pairs it can serve.</summary>
    int Pairs { get; }

    /// <summary>Called with the device's queue index (2 × pair + ring) when the kernel reports an
    /// error on that ring (a descriptor or ring outside guest RAM).</summary>
    Action<int>? RingError { get; set; }

    /// <summary>Null if it can process rings negotiated with <paramref name="negotiated"/>, else why not.</summary>
    string? CannotServe(ulong negotiated, ulong ringFeatures);

    /// <summary>Takes over pair <paramref name="pair"/>'s receive and transmit rings, moving frames
    /// between them and the backend descriptor <paramref name="tapQueueFd"/>.</summary>
    /// <exception cref="NetBackendException">Refused; nothing was taken over.</exception>
    void Start(int pair, ulong negotiatedFeatures, in VhostQueue rx, in VhostQueue tx, int tapQueueFd);

    /// <summary>Gives pair <paramref name="pair"/>'s rings back: each one's next avail index, or
    /// null if the pair was not running.</summary>
    /// <exception cref="NetBackendException">The rings' state is unknown.</exception>
    (ushort Rx, ushort Tx)? Stop(int pair);
}

/// <summary>The kernel's virtio-net data path (drivers/vhost/net.c) for the receive and transmit
/// queues of a virtio-net device whose frames go to a TAP: one /dev/vhost-net descriptor per queue
/// pair, owned by this process, with a memory table mapping guest RAM to this process's mapping of it.</summary>
/// <remarks>
/// <para>Per pair the device's receiveq is vhost ring 0 and its transmitq ring 1. <see cref="Start"/>
/// hands a pair's rings to the kernel (features, size, base, addresses, kick and call eventfds,
/// then the TAP queue's descriptor as backend); from then on the kernel reads the kick eventfds,
/// moves frames between the rings and the TAP, and signals the call eventfds. <see cref="Stop"/>
/// unbinds the backend and reads back where each ring stopped, so that the device can process the
/// rings itself again (device reset, pause, teardown).</para>
/// <para>The virtio-net header is read and written by the TAP (IFF_VNET_HDR, its size set with
/// TUNSETVNETHDRSZ to 12 bytes with VIRTIO_NET_F_MRG_RXBUF or VIRTIO_F_VERSION_1, else 10):
/// VHOST_NET_F_VIRTIO_NET_HDR is never acked, so vhost passes the header through untouched.</para>
/// <para>Errors the kernel reports on a ring (a descriptor out of the memory table, a ring it
/// cannot read) signal that ring's error eventfd; they are logged and passed to
/// <see cref="RingError"/> with the device's queue index.</para>
/// </remarks>
public sealed unsafe class VhostNet : IVhostNetBackend, IDisposable
{
    /// <summary>vhost-net's ring indexes within one descriptor (VHOST_NET_VQ_RX, VHOST_NET_VQ_TX).</summary>
    public const int RxRing = 0, TxRing = 1;

    /// <summary>The hint every "cannot use vhost-net" message ends with.</summary>
    public const string LoadHint = "load the module with `sudo modprobe vhost_net` and give this user read/write access to " + Vhost.DevicePath;

    private const ulong HeaderFeature = 1UL << Vhost.VHOST_NET_F_VIRTIO_NET_HDR;
    private const ulong LogAllFeature = 1UL << Vhost.VHOST_F_LOG_ALL;

    private readonly SafeFdHandle[] _fds;
    private readonly bool[] _running;
    private readonly EventFdWaiter _errors;
    private readonly ILogger? _logger;
    private readonly GuestMemory _memory;
    private readonly Lock _lock = new();
    private bool _disposed;

    private VhostNet(SafeFdHandle[] fds, ulong features, GuestMemory memory, ILogger? logger)
    {
        _fds = fds;
        _running = new bool[fds.Length];
        Features = features;
        _memory = memory;
        _logger = logger;
        _errors = new EventFdWaiter("vhost-net errors", 2 * fds.Length, OnError, logger);
    }

    /// <summary>The features the kernel's vhost-net offers (VHOST_GET_FEATURES).</summary>
    public ulong Features { get; }

    /// <summary>Queue pairs this object can serve (one vhost-net descriptor each).</summary>
    public int Pairs => _fds.Length;

    /// <summary>Called (on a dedicated thread) with the device's queue index (2 × pair + ring)
    /// when the kernel reports an error on that ring; the error is logged either way.</summary>
    public Action<int>? RingError { get; set; }

    /// <summary>Whether pair <paramref name="pair"/>'s rings are with the kernel.</summary>
    public bool IsRunning(int pair)
    {
        lock (_lock)
        {
            return _running[pair];
        }
    }

    /// <summary>Null if <see cref="Vhost.DevicePath"/> can be opened, else why not (a sentence
    /// naming the device and what to do). Opens and closes it; nothing else.</summary>
    public static string? Unavailable()
    {
        using var fd = OpenDevice(out var reason);
        return reason;
    }

    private static SafeFdHandle OpenDevice(out string? reason)
    {
        var fd = Interop.Interop.Sys.Open(Vhost.DevicePath, Interop.Interop.Sys.O_RDWR | Interop.Interop.Sys.O_CLOEXEC, 0);
        if (!fd.IsInvalid)
        {
            reason = null;
            return fd;
        }
        var errno = Interop.Interop.LastErrno;
        reason = errno switch
        {
            (int)Errno.ENOENT or (int)Errno.ENODEV or (int)Errno.ENXIO => $"{Vhost.DevicePath} does not exist: {LoadHint}",
            (int)Errno.EACCES or (int)Errno.EPERM => $"{Vhost.DevicePath} cannot be opened (permission denied): give this user read/write access to it",
            _ => $"{Vhost.DevicePath} cannot be opened ({new ErrnoException("open", errno).Message}): {LoadHint}",
        };
        return fd;
    }

    /// <summary>Opens one vhost-net descriptor per pair, makes this process its owner and gives
    /// each the memory table of <paramref name="memory"/>'s RAM regions.</summary>
    /// <exception cref="NetBackendException">The message names /dev/vhost-net, the step that failed and what to do.</exception>
    public static VhostNet Open(GuestMemory memory, int pairs, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfLessThan(pairs, 1);
        var fds = new SafeFdHandle[pairs];
        try
        {
            ulong features = 0;
            for (var i = 0; i < pairs; i++)
            {
                fds[i] = OpenDevice(out var reason);
                if (reason is not null)
                {
                    throw new NetBackendException(reason);
                }
                Check(Vhost.Ioctl(fds[i], Vhost.VHOST_SET_OWNER, 0), "VHOST_SET_OWNER", "making this process its owner");
                ulong f;
                Check(Vhost.Ioctl(fds[i], Vhost.VHOST_GET_FEATURES, &f), "VHOST_GET_FEATURES", "reading its features");
                features = i == 0 ? f : features & f;
                SetMemoryTable(fds[i], memory);
            }
            return new VhostNet(fds, features, memory, logger);
        }
        catch
        {
            foreach (var fd in fds)
            {
                fd?.Dispose();
            }
            throw;
        }
    }

    private static void SetMemoryTable(SafeFdHandle fd, GuestMemory memory)
    {
        var regions = memory.Layout.RamRegions;
        var size = sizeof(Vhost.vhost_memory) + regions.Length * sizeof(Vhost.vhost_memory_region);
        var buffer = stackalloc byte[size];
        var header = (Vhost.vhost_memory*)buffer;
        *header = new Vhost.vhost_memory { nregions = (uint)regions.Length };
        var table = (Vhost.vhost_memory_region*)(buffer + sizeof(Vhost.vhost_memory));
        for (var i = 0; i < regions.Length; i++)
        {
            var r = regions[i];
            table[i] = new Vhost.vhost_memory_region
            {
                guest_phys_addr = r.GuestAddress,
                memory_size = r.Size,
                userspace_addr = (ulong)(memory.HostBase + (nint)r.HostOffset),
            };
        }
        Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_MEM_TABLE, buffer), "VHOST_SET_MEM_TABLE", $"giving it the guest's {regions.Length} memory region(s)");
    }

    /// <summary>The features to ack for a driver that negotiated <paramref name="negotiated"/>:
    /// those the kernel offers, without VHOST_NET_F_VIRTIO_NET_HDR (the TAP does the header) and
    /// without VHOST_F_LOG_ALL (no dirty logging).</summary>
    public ulong AckedFeatures(ulong negotiated) => negotiated & Features & ~(HeaderFeature | LogAllFeature);

    /// <summary>Null if the kernel can process rings the way the driver negotiated them, else
    /// which negotiated ring features (of <paramref name="ringFeatures"/>) it lacks.</summary>
    public string? CannotServe(ulong negotiated, ulong ringFeatures)
    {
        var missing = negotiated & ringFeatures & ~Features;
        return missing == 0 ? null : $"the driver negotiated feature bits 0x{missing:X} that this kernel's vhost-net does not offer (it offers 0x{Features:X})";
    }

    /// <summary>Hands pair <paramref name="pair"/>'s rings to the kernel, with the TAP queue
    /// <paramref name="tapQueueFd"/> as the backend.</summary>
    /// <exception cref="NetBackendException">A ring is not in guest RAM or the kernel refused a step;
    /// the pair is left stopped (its rings still belong to the caller).</exception>
    public void Start(int pair, ulong negotiatedFeatures, in VhostQueue rx, in VhostQueue tx, int tapQueueFd)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_running[pair])
            {
                throw new InvalidOperationException($"vhost-net pair {pair} is already running");
            }
            var fd = _fds[pair];
            try
            {
                var features = AckedFeatures(negotiatedFeatures);
                Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_FEATURES, &features), "VHOST_SET_FEATURES", $"acking features 0x{features:X}");
                SetRing(fd, pair, RxRing, rx);
                SetRing(fd, pair, TxRing, tx);
                SetBackend(fd, RxRing, tapQueueFd);
                SetBackend(fd, TxRing, tapQueueFd);
                _running[pair] = true;
            }
            catch
            {
                // Leave nothing half-bound: the caller keeps processing the rings itself.
                _ = Unbind(fd, RxRing);
                _ = Unbind(fd, TxRing);
                throw;
            }
        }
    }

    private void SetRing(SafeFdHandle fd, int pair, int ring, in VhostQueue q)
    {
        var queue = 2 * pair + ring;
        var name = ring == RxRing ? "receive" : "transmit";
        if (q.Size == 0 || (q.Size & (q.Size - 1)) != 0)
        {
            throw new NetBackendException($"vhost-net: {name} queue {queue} has size {q.Size}, not a power of two");
        }
        // virtio 1.2 §2.7: descriptor table 16 bytes an entry; avail ring 6 + 2 × size; used ring 6 + 8 × size.
        if (!_memory.TryTranslate(q.DescriptorTable, 16UL * q.Size, out var desc)
            || !_memory.TryTranslate(q.AvailRing, 6UL + 2UL * q.Size, out var avail)
            || !_memory.TryTranslate(q.UsedRing, 6UL + 8UL * q.Size, out var used))
        {
            throw new NetBackendException($"vhost-net: {name} queue {queue}'s rings (descriptors 0x{q.DescriptorTable:X}, avail 0x{q.AvailRing:X}, used 0x{q.UsedRing:X}) are not in guest RAM");
        }
        var num = new Vhost.vhost_vring_state { index = (uint)ring, num = q.Size };
        Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_VRING_NUM, &num), "VHOST_SET_VRING_NUM", $"setting {name} queue {queue}'s size to {q.Size}");
        var state = new Vhost.vhost_vring_state { index = (uint)ring, num = q.NextAvail };
        Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_VRING_BASE, &state), "VHOST_SET_VRING_BASE", $"setting {name} queue {queue}'s next avail index to {q.NextAvail}");
        var addr = new Vhost.vhost_vring_addr
        {
            index = (uint)ring,
            desc_user_addr = (ulong)desc,
            avail_user_addr = (ulong)avail,
            used_user_addr = (ulong)used,
        };
        Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_VRING_ADDR, &addr), "VHOST_SET_VRING_ADDR", $"giving it {name} queue {queue}'s ring addresses");
        var kick = new Vhost.vhost_vring_file { index = (uint)ring, fd = q.Kick.Handle.Fd };
        Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_VRING_KICK, &kick), "VHOST_SET_VRING_KICK", $"giving it {name} queue {queue}'s notify eventfd");
        var call = new Vhost.vhost_vring_file { index = (uint)ring, fd = q.Call?.Handle.Fd ?? Vhost.VHOST_FILE_UNBIND };
        Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_VRING_CALL, &call), "VHOST_SET_VRING_CALL", $"giving it {name} queue {queue}'s interrupt eventfd");
        var err = new Vhost.vhost_vring_file { index = (uint)ring, fd = _errors[queue].Handle.Fd };
        Check(Vhost.Ioctl(fd, Vhost.VHOST_SET_VRING_ERR, &err), "VHOST_SET_VRING_ERR", $"giving it {name} queue {queue}'s error eventfd");
    }

    private static void SetBackend(SafeFdHandle fd, int ring, int tapQueueFd)
    {
        var backend = new Vhost.vhost_vring_file { index = (uint)ring, fd = tapQueueFd };
        Check(Vhost.Ioctl(fd, Vhost.VHOST_NET_SET_BACKEND, &backend), "VHOST_NET_SET_BACKEND", "attaching the TAP queue (it must be a TAP opened with IFF_VNET_HDR)");
    }

    /// <summary>Takes pair <paramref name="pair"/>'s rings back from the kernel: unbinds the TAP
    /// (the kernel finishes the frame in hand and stops) and returns each ring's next avail index,
    /// from which the device goes on processing. Returns null if the pair was not running.</summary>
    /// <exception cref="NetBackendException">The kernel refused; the rings' state is unknown (reset the device).</exception>
    public (ushort Rx, ushort Tx)? Stop(int pair)
    {
        lock (_lock)
        {
            if (!_running[pair] || _disposed)
            {
                return null;
            }
            _running[pair] = false;
            var fd = _fds[pair];
            Check(Unbind(fd, RxRing), "VHOST_NET_SET_BACKEND", "detaching the TAP from the receive ring");
            Check(Unbind(fd, TxRing), "VHOST_NET_SET_BACKEND", "detaching the TAP from the transmit ring");
            var rxBase = new Vhost.vhost_vring_state { index = RxRing };
            var txBase = new Vhost.vhost_vring_state { index = TxRing };
            Check(Vhost.Ioctl(fd, Vhost.VHOST_GET_VRING_BASE, &rxBase), "VHOST_GET_VRING_BASE", "reading where the receive ring stopped");
            Check(Vhost.Ioctl(fd, Vhost.VHOST_GET_VRING_BASE, &txBase), "VHOST_GET_VRING_BASE", "reading where the transmit ring stopped");
            return ((ushort)rxBase.num, (ushort)txBase.num);
        }
    }

    private static int Unbind(SafeFdHandle fd, int ring)
    {
        var file = new Vhost.vhost_vring_file { index = (uint)ring, fd = Vhost.VHOST_FILE_UNBIND };
        return Vhost.Ioctl(fd, Vhost.VHOST_NET_SET_BACKEND, &file);
    }

    private void OnError(int queue)
    {
        _logger?.LogError("vhost-net reported an error on {Kind} queue {Queue} (a ring or buffer outside guest RAM, or a ring it cannot read)",
            queue % 2 == RxRing ? "receive" : "transmit", queue);
        RingError?.Invoke(queue);
    }

    private static void Check(int result, string ioctl, string step)
    {
        if (result < 0)
        {
            var error = new ErrnoException(ioctl, Interop.Interop.LastErrno);
            throw new NetBackendException($"vhost-net: {error.Message} while {step}", error);
        }
    }

    /// <summary>Stops every running pair and closes the descriptors (the kernel drops its worker threads).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            for (var i = 0; i < _fds.Length; i++)
            {
                if (_running[i])
                {
                    _ = Unbind(_fds[i], RxRing);
                    _ = Unbind(_fds[i], TxRing);
                    _running[i] = false;
                }
            }
            _disposed = true;
        }
        _errors.Dispose();
        foreach (var fd in _fds)
        {
            fd.Dispose();
        }
    }
}

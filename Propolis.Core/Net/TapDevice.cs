using Microsoft.Extensions.Logging;
using Propolis.Core.Interop;
using Tun = Propolis.Core.Interop.Interop.Tun;

namespace Propolis.Core.Net;

/// <summary>A Linux TAP interface as a virtio-net backend (Documentation/networking/tuntap.rst):
/// one /dev/net/tun descriptor per queue (IFF_MULTI_QUEUE when the interface has it), opened
/// with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR so every frame carries a virtio-net header and the
/// checksum and segmentation offloads pass through both ways.</summary>
/// <remarks>
/// <para>An interface that exists is attached as it is and left behind at teardown (its state and
/// addresses are the host's business; a warning says if it is down). One that does not exist is
/// created (this needs CAP_NET_ADMIN), brought up, and, not being persistent, disappears when the
/// last descriptor is closed by <see cref="Dispose"/> (or by the kernel when the process dies).</para>
/// <para>Threads: the descriptors are used by the device's I/O threads; <see cref="Configure"/> and
/// <see cref="SetActiveQueues"/> are quick ioctls called from the vCPU thread that negotiated.</para>
/// </remarks>
public sealed unsafe class TapDevice : INetBackend
{
    private readonly SafeFdHandle[] _queues;
    private readonly bool[] _attached;
    private readonly ILogger? _logger;
    private readonly Lock _lock = new();

    private TapDevice(string name, SafeFdHandle[] queues, bool created, bool multiQueue, int mtu, ILogger? logger)
    {
        Name = name;
        _queues = queues;
        _attached = new bool[queues.Length];
        Array.Fill(_attached, true);
        Created = created;
        MultiQueue = multiQueue;
        Mtu = mtu;
        _logger = logger;
    }

    public string Name { get; }

    /// <summary>True if this process created the interface (it is removed at teardown).</summary>
    public bool Created { get; }

    public bool MultiQueue { get; }

    public int Mtu { get; }

    public int QueueCount => _queues.Length;

    public string Description => $"tap {Name} ({(Created ? "created for this VM" : "existing")}, {QueueCount} queue{(QueueCount == 1 ? "" : "s")})";

    public int QueueDescriptor(int queue) => _queues[queue].Fd;

    /// <summary>How to create the interface by hand, for error messages.</summary>
    public static string CreateHint(string name) =>
        $"create it once with `sudo ip tuntap add dev {name} mode tap multi_queue user $USER` and `sudo ip link set {name} up`";

    /// <summary>A valid interface name (IFNAMSIZ - 1 bytes, no '/', ':' or whitespace), or why not.</summary>
    public static string? ValidateName(string name)
    {
        if (name.Length == 0 || name.Length >= Tun.IFNAMSIZ)
        {
            return $"an interface name has 1 to {Tun.IFNAMSIZ - 1} characters, '{name}' has {name.Length}";
        }
        foreach (var c in name)
        {
            if (c <= ' ' || c >= 0x7F || c == '/' || c == ':')
            {
                return $"'{name}' is not a valid interface name (ASCII without spaces, '/' or ':')";
            }
        }
        return name is "." or ".." ? $"'{name}' is not a valid interface name" : null;
    }

    /// <summary>Attaches to TAP <paramref name="name"/> with up to <paramref name="queues"/> queues
    /// (fewer if it exists without multi_queue), or creates it if it does not exist.</summary>
    /// <exception cref="NetBackendException">The message names the interface and says what to do.</exception>
    public static TapDevice Open(string name, int queues, ILogger? logger = null)
    {
        if (ValidateName(name) is { } bad)
        {
            throw new NetBackendException(bad);
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 1);
        using var ctl = ControlSocket();
        var exists = TryGetFlags(ctl, name, out var ifFlags);
        var multiQueue = queues > 1;
        if (exists && ReadSysfsTunFlags(name) is { } tunFlags)
        {
            if ((tunFlags & Tun.IFF_TAP) == 0)
            {
                throw new NetBackendException($"interface '{name}' is a TUN (layer 3) device; pci-virtio-viona needs a TAP: recreate it with `ip tuntap add dev {name} mode tap multi_queue`");
            }
            if ((tunFlags & Tun.IFF_MULTI_QUEUE) == 0 && multiQueue)
            {
                logger?.LogInformation("tap {Name} was created without multi_queue: the guest gets one queue pair instead of {Queues}", name, queues);
                multiQueue = false;
            }
        }
        var count = multiQueue ? queues : 1;
        var fds = new SafeFdHandle[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                fds[i] = OpenQueue(name, multiQueue, exists, i == 0 ? null : fds[0], ref multiQueue);
                if (!multiQueue && i == 0 && count > 1)
                {
                    // The interface turned out to be single-queue (no sysfs to tell us before).
                    Array.Resize(ref fds, 1);
                    count = 1;
                    logger?.LogInformation("tap {Name} was created without multi_queue: the guest gets one queue pair instead of {Queues}", name, queues);
                }
            }
            int mtu = GetMtu(ctl, name);
            if (!exists)
            {
                SetUp(ctl, name);
                logger?.LogInformation("created tap {Name} ({Count} queue(s)); it is removed when the VM ends", name, count);
            }
            else if ((ifFlags & Tun.IFF_UP) == 0)
            {
                logger?.LogWarning("tap {Name} is down: the guest's frames go nowhere until `ip link set {Name} up`", name, name);
            }
            return new TapDevice(name, fds, created: !exists, multiQueue, mtu, logger);
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

    private static SafeFdHandle OpenQueue(string name, bool multiQueue, bool exists, SafeFdHandle? first, ref bool multiQueueOut)
    {
        var fd = Interop.Interop.Sys.Open(Tun.DevicePath, Interop.Interop.Sys.O_RDWR | Interop.Interop.Sys.O_CLOEXEC | Tun.O_NONBLOCK, 0);
        if (fd.IsInvalid)
        {
            var errno = Interop.Interop.LastErrno;
            fd.Dispose();
            throw new NetBackendException(errno switch
            {
                (int)Errno.ENOENT or (int)Errno.ENODEV or (int)Errno.ENXIO => $"{Tun.DevicePath} is missing: load the TUN/TAP driver (`sudo modprobe tun`) to use tap '{name}'",
                (int)Errno.EACCES or (int)Errno.EPERM => $"cannot open {Tun.DevicePath} (permission denied) to attach tap '{name}': give this user read/write access to it",
                _ => $"cannot open {Tun.DevicePath} for tap '{name}': {new ErrnoException("open", errno).Message}",
            });
        }
        var req = Tun.ifreq.ForName(name);
        req.ifr_flags = (short)(Tun.IFF_TAP | Tun.IFF_NO_PI | Tun.IFF_VNET_HDR | (multiQueue ? Tun.IFF_MULTI_QUEUE : 0));
        if (Tun.Ioctl(fd, Tun.TUNSETIFF, &req) < 0)
        {
            var errno = Interop.Interop.LastErrno;
            if (errno == (int)Errno.EINVAL && multiQueue && first is null && exists)
            {
                // An existing single-queue TAP refuses IFF_MULTI_QUEUE; take it with one queue.
                fd.Dispose();
                multiQueueOut = false;
                return OpenQueue(name, multiQueue: false, exists, first, ref multiQueueOut);
            }
            fd.Dispose();
            throw new NetBackendException(errno switch
            {
                (int)Errno.EPERM or (int)Errno.EACCES when !exists =>
                    $"tap '{name}' does not exist and creating it needs CAP_NET_ADMIN (run as root), or {CreateHint(name)}",
                (int)Errno.EPERM or (int)Errno.EACCES =>
                    $"tap '{name}' exists but this user may not attach to it: recreate it for this user with `sudo ip tuntap del dev {name} mode tap` and then {CreateHint(name)}",
                (int)Errno.EINVAL =>
                    $"interface '{name}' exists and is not a TAP device this process can attach to (a TUN, another kind of link, or a TAP created by another process without multi_queue): use another vnic name, or {CreateHint(name)}",
                (int)Errno.EBUSY =>
                    $"tap '{name}' is already attached by another process (it was created without multi_queue); stop that process or use another vnic",
                _ => $"cannot attach tap '{name}': {new ErrnoException("TUNSETIFF", errno).Message}",
            });
        }
        return fd;
    }

    private static SafeFdHandle ControlSocket()
    {
        var s = Tun.Socket(Tun.AF_INET, Tun.SOCK_DGRAM | Tun.SOCK_CLOEXEC, 0);
        if (s.IsInvalid)
        {
            var errno = Interop.Interop.LastErrno;
            s.Dispose();
            throw new NetBackendException($"cannot create a socket to configure network interfaces: {new ErrnoException("socket", errno).Message}");
        }
        return s;
    }

    private static bool TryGetFlags(SafeFdHandle ctl, string name, out short flags)
    {
        var req = Tun.ifreq.ForName(name);
        if (Tun.Ioctl(ctl, Tun.SIOCGIFFLAGS, &req) < 0)
        {
            flags = 0;
            return false;
        }
        flags = req.ifr_flags;
        return true;
    }

    private static int GetMtu(SafeFdHandle ctl, string name)
    {
        var req = Tun.ifreq.ForName(name);
        return Tun.Ioctl(ctl, Tun.SIOCGIFMTU, &req) < 0 ? 1500 : req.ifr_mtu;
    }

    private static void SetUp(SafeFdHandle ctl, string name)
    {
        var req = Tun.ifreq.ForName(name);
        if (Tun.Ioctl(ctl, Tun.SIOCGIFFLAGS, &req) < 0)
        {
            throw new NetBackendException($"cannot read the flags of the tap '{name}' just created: {new ErrnoException("SIOCGIFFLAGS", Interop.Interop.LastErrno).Message}");
        }
        req.ifr_flags |= Tun.IFF_UP;
        if (Tun.Ioctl(ctl, Tun.SIOCSIFFLAGS, &req) < 0)
        {
            throw new NetBackendException($"cannot bring up the tap '{name}' just created: {new ErrnoException("SIOCSIFFLAGS", Interop.Interop.LastErrno).Message}");
        }
    }

    /// <summary>/sys/class/net/NAME/tun_flags (hex), when sysfs shows this namespace's interfaces.</summary>
    private static short? ReadSysfsTunFlags(string name)
    {
        try
        {
            var text = File.ReadAllText($"/sys/class/net/{name}/tun_flags").Trim();
            if (text.StartsWith("0x", StringComparison.Ordinal))
            {
                text = text[2..];
            }
            return short.TryParse(text, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Configure(int vnetHeaderSize, NetOffloads guestOffloads)
    {
        if (vnetHeaderSize is not (10 or 12))
        {
            throw new ArgumentOutOfRangeException(nameof(vnetHeaderSize), vnetHeaderSize, "virtio_net_hdr is 10 or 12 bytes");
        }
        lock (_lock)
        {
            // TUNSETVNETHDRSZ and TUNSETOFFLOAD apply to the interface, whichever queue carries them.
            var size = vnetHeaderSize;
            if (Tun.Ioctl(_queues[0], Tun.TUNSETVNETHDRSZ, &size) < 0)
            {
                throw new ErrnoException("TUNSETVNETHDRSZ", Interop.Interop.LastErrno);
            }
            if (Tun.Ioctl(_queues[0], Tun.TUNSETOFFLOAD, (nuint)(uint)guestOffloads) < 0)
            {
                var errno = Interop.Interop.LastErrno;
                _logger?.LogWarning("tap {Name}: TUNSETOFFLOAD 0x{Offloads:X} failed ({Error}); the host segments and checksums frames for the guest",
                    Name, (uint)guestOffloads, new ErrnoException("TUNSETOFFLOAD", errno).Message);
                Tun.Ioctl(_queues[0], Tun.TUNSETOFFLOAD, (nuint)0);
            }
        }
    }

    public void SetActiveQueues(int count)
    {
        if (!MultiQueue)
        {
            return;
        }
        count = Math.Clamp(count, 1, _queues.Length);
        lock (_lock)
        {
            for (var i = 0; i < _queues.Length; i++)
            {
                var want = i < count;
                if (_attached[i] == want)
                {
                    continue;
                }
                var req = default(Tun.ifreq);
                req.ifr_flags = want ? Tun.IFF_ATTACH_QUEUE : Tun.IFF_DETACH_QUEUE;
                if (Tun.Ioctl(_queues[i], Tun.TUNSETQUEUE, &req) < 0)
                {
                    _logger?.LogWarning("tap {Name}: {What} queue {Queue} failed: {Error}", Name, want ? "attaching" : "detaching", i,
                        new ErrnoException("TUNSETQUEUE", Interop.Interop.LastErrno).Message);
                    continue;
                }
                _attached[i] = want;
            }
        }
    }

    /// <summary>Closes the queues; an interface this process created goes away with the last one.</summary>
    public void Dispose()
    {
        foreach (var fd in _queues)
        {
            fd.Dispose();
        }
        if (Created)
        {
            _logger?.LogInformation("tap {Name} removed", Name);
        }
    }
}

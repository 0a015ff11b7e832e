using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using Propolis.Core.Tests.Hw.Virtio;
using static Propolis.Core.Hw.Virtio.VirtioNetSpec;

namespace Propolis.Core.Tests.Net;

/// <summary>Runs only where a private network namespace can be made (root, and /dev/net/tun):
/// the TAP tests create interfaces there, never in the host's namespace.</summary>
public sealed class NetNamespaceFactAttribute : FactAttribute
{
    public NetNamespaceFactAttribute()
    {
        if (!File.Exists("/dev/net/tun"))
        {
            Skip = "no /dev/net/tun (load the tun module)";
        }
        else if (NetNamespace.geteuid() != 0)
        {
            Skip = "creating a network namespace and TAP interfaces needs root";
        }
    }
}

/// <summary>Runs code on a thread moved into a fresh network namespace (unshare(CLONE_NEWNET)
/// affects only the calling thread); descriptors opened there keep working from any thread.</summary>
internal static class NetNamespace
{
    private const int CLONE_NEWNET = 0x40000000;

    [DllImport("libc", SetLastError = true)]
    internal static extern uint geteuid();

    [DllImport("libc", SetLastError = true)]
    private static extern int unshare(int flags);

    public static T Run<T>(Func<T> body)
    {
        T result = default!;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                Assert.True(unshare(CLONE_NEWNET) == 0, $"unshare(CLONE_NEWNET) failed: errno {Marshal.GetLastPInvokeError()}");
                result = body();
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        t.Start();
        t.Join();
        if (error is not null)
        {
            throw new AggregateException(error);
        }
        return result;
    }
}

/// <summary>An AF_PACKET socket on one interface: sees every frame the kernel receives on it and
/// sends frames out through it (for a TAP: into the TAP's read side).</summary>
internal sealed class PacketSocket : IDisposable
{
    private const int AF_PACKET = 17, SOCK_RAW = 3, ETH_P_ALL = 0x0003, SOL_SOCKET = 1, SO_RCVTIMEO = 20;

    [DllImport("libc", SetLastError = true)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport("libc", SetLastError = true)]
    private static extern int bind(int fd, byte[] addr, int len);

    [DllImport("libc", SetLastError = true)]
    private static extern nint recv(int fd, byte[] buf, nint len, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern nint send(int fd, byte[] buf, nint len, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int setsockopt(int fd, int level, int name, long[] value, int len);

    [DllImport("libc", SetLastError = true)]
    private static extern uint if_nametoindex(string name);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    private readonly int _fd;

    /// <summary>Call on the namespace's thread.</summary>
    public PacketSocket(string ifname)
    {
        var index = if_nametoindex(ifname);
        Assert.True(index != 0, $"{ifname} not found");
        _fd = socket(AF_PACKET, SOCK_RAW, BinaryPrimitives.ReverseEndianness((ushort)ETH_P_ALL));
        Assert.True(_fd >= 0, $"socket(AF_PACKET) failed: errno {Marshal.GetLastPInvokeError()}");
        // struct sockaddr_ll: u16 family, be16 protocol, i32 ifindex, u16 hatype, u8 pkttype, u8 halen, u8 addr[8].
        var sll = new byte[20];
        BinaryPrimitives.WriteUInt16LittleEndian(sll, AF_PACKET);
        BinaryPrimitives.WriteUInt16BigEndian(sll.AsSpan(2), ETH_P_ALL);
        BinaryPrimitives.WriteInt32LittleEndian(sll.AsSpan(4), (int)index);
        Assert.Equal(0, bind(_fd, sll, sll.Length));
        Assert.Equal(0, setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, [20, 0], 16));   // struct timeval { 20 s }
    }

    /// <summary>The next frame of EtherType <paramref name="etherType"/> (others, such as IPv6
    /// router solicitations, are skipped).</summary>
    public byte[] Receive(ushort etherType)
    {
        var buf = new byte[70_000];
        while (true)
        {
            var n = recv(_fd, buf, buf.Length, 0);
            Assert.True(n >= 0, $"no frame arrived on the TAP (errno {Marshal.GetLastPInvokeError()})");
            if (n >= 14 && BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(12)) == etherType)
            {
                return buf[..(int)n];
            }
        }
    }

    public void Send(byte[] frame) => Assert.Equal(frame.Length, (int)send(_fd, frame, frame.Length, 0));

    public void Dispose() => close(_fd);
}

public sealed class TapDeviceTests
{
    private const ushort EtherType = 0x88B5;   // IEEE 802 local experimental

    private static bool InterfaceExists(string name) => File.Exists("/proc/self/net/dev")
        && File.ReadAllLines("/proc/thread-self/net/dev").Any(l => l.TrimStart().StartsWith(name + ":", StringComparison.Ordinal));

    [Fact]
    public void InterfaceNamesAreChecked()
    {
        Assert.Null(TapDevice.ValidateName("vnic_prop0"));
        Assert.NotNull(TapDevice.ValidateName(""));
        Assert.NotNull(TapDevice.ValidateName("sixteen-chars-xx"));
        Assert.NotNull(TapDevice.ValidateName("a/b"));
        Assert.NotNull(TapDevice.ValidateName("a b"));
        Assert.Contains("ip tuntap add dev vnic0 mode tap multi_queue user $USER", TapDevice.CreateHint("vnic0"));
    }

    [NetNamespaceFact]
    public void AMissingTapIsCreatedUpAndMultiQueueAndRemovedAtTeardownWhileAnExistingOneIsLeft()
    {
        NetNamespace.Run(() =>
        {
            Assert.False(InterfaceExists("ptest0"));
            using (var tap = TapDevice.Open("ptest0", 2))
            {
                Assert.True(tap.Created);
                Assert.True(tap.MultiQueue);
                Assert.Equal(2, tap.QueueCount);
                Assert.Equal(1500, tap.Mtu);
                Assert.True(InterfaceExists("ptest0"));
                Assert.Equal("UP", FlagsOf("ptest0"));

                // Attaching while it exists: found, not created, so not ours to remove.
                using var second = TapDevice.Open("ptest0", 2);
                Assert.False(second.Created);
                Assert.Equal(2, second.QueueCount);
            }
            Assert.False(InterfaceExists("ptest0"));
            return 0;
        });
    }

    /// <summary>The IFF_UP bit of an interface (SIOCGIFFLAGS on a socket of the calling thread's namespace).</summary>
    private static string FlagsOf(string name)
    {
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        var req = new byte[40];
        System.Text.Encoding.ASCII.GetBytes(name).CopyTo(req, 0);
        Assert.Equal(0, ioctl((int)s.Handle, 0x8913, req));   // SIOCGIFFLAGS
        return (BinaryPrimitives.ReadInt16LittleEndian(req.AsSpan(16)) & 1) != 0 ? "UP" : "DOWN";
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int ioctl(int fd, nuint request, byte[] arg);

    [NetNamespaceFact]
    public void FramesCrossBetweenTheGuestRingsAndTheHostThroughARealTap()
    {
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x40_0000)]));
        var events = new RecordingEvents();
        var (tap, packets) = NetNamespace.Run(() =>
        {
            var t = TapDevice.Open("ptest1", 2);
            return (t, new PacketSocket("ptest1"));
        });
        using var tapOwner = tap;
        using var packetOwner = packets;
        using var net = new VirtioNet(mem, tap, events, new VirtioNetOptions { RxQueueSize = 64, TxQueueSize = 64, MaxQueuePairs = 2 });
        net.FeaturesNegotiated(VirtioFeatures.Version1 | FeatureMac | FeatureMrgRxbuf | FeatureCsum | FeatureGuestCsum | FeatureHostTso4 | FeatureGuestTso4 | FeatureCtrlVq | FeatureMq);
        var rx = new NetDriver(mem, net.Queues[0], 0x1_0000, 64);
        var tx = new NetDriver(mem, net.Queues[1], 0x2_0000, 64);
        byte[] guestMac = net.Mac;

        // Guest -> host.
        var payload = Enumerable.Range(0, 200).Select(i => (byte)i).ToArray();
        byte[] frame = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, .. guestMac, 0x88, 0xB5, .. payload];
        var txBuf = 0x10_0000UL;
        Assert.True(mem.TryFill(txBuf, Header.Size, 0));
        Assert.True(mem.TryWrite(txBuf + Header.Size, frame));
        tx.Publish(tx.AddChain((txBuf, (uint)(Header.Size + frame.Length), false)));
        net.QueueNotify(1);
        Assert.Equal(frame, packets.Receive(EtherType));
        tx.WaitUsed(1);

        // Host -> guest: 16 mergeable buffers of 4 KiB (enough for the largest frame with guest TSO).
        var heads = new ushort[16];
        for (var i = 0; i < heads.Length; i++)
        {
            heads[i] = rx.AddChain((0x20_0000UL + (ulong)i * 4096, 4096, true));
            rx.Publish(heads[i]);
        }
        net.QueueNotify(0);
        byte[] reply = [.. guestMac, 0x02, 0, 0, 0, 0, 0x99, 0x88, 0xB5, .. payload.Reverse()];
        packets.Send(reply);
        // The kernel may send its own frames (IPv6 router solicitations) first: skip them.
        while (true)
        {
            var (id, len) = rx.WaitUsed(1)[0];
            var buffer = 0x20_0000UL + (ulong)Array.IndexOf(heads, (ushort)id) * 4096;
            var got = MockDriver.Bytes(mem, buffer, (int)len);
            if (BinaryPrimitives.ReadUInt16BigEndian(got.AsSpan(Header.Size + 12)) != EtherType)
            {
                continue;
            }
            Assert.Equal(reply, got[Header.Size..]);
            Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(got.AsSpan(Header.NumBuffers)));
            break;
        }
        Assert.Equal(0, net.MalformedChains);
    }
}

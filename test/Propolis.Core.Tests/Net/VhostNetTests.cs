using System.Buffers.Binary;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using Propolis.Core.Tests.Hw.Virtio;
using Propolis.Core.Vmm;
using static Propolis.Core.Hw.Virtio.VirtioNetSpec;

namespace Propolis.Core.Tests.Net;

/// <summary>Runs where vhost-net can be used with a TAP in a private network namespace: root,
/// /dev/net/tun and /dev/vhost-net (the e2e sandbox loads vhost_net).</summary>
public sealed class VhostNetFactAttribute : FactAttribute
{
    public VhostNetFactAttribute()
    {
        if (new NetNamespaceFactAttribute().Skip is { } skip)
        {
            Skip = skip;
        }
        else if (VhostNet.Unavailable() is { } why)
        {
            Skip = why;
        }
    }
}

public sealed class VhostNetTests
{
    private const ushort EtherType = 0x88B5;   // IEEE 802 local experimental

    [Fact]
    public void WithoutTheDeviceTheReasonNamesItAndTheModule()
    {
        if (File.Exists("/dev/vhost-net"))
        {
            return;   // nothing to check here: the device exists
        }
        var why = VhostNet.Unavailable();
        Assert.Equal("/dev/vhost-net does not exist: load the module with `sudo modprobe vhost_net` and give this user read/write access to /dev/vhost-net", why);
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x40_0000)]));
        Assert.Equal(why, Assert.Throws<NetBackendException>(() => VhostNet.Open(mem, 1)).Message);
    }

    /// <summary>The kernel moves frames between rings laid out in guest memory and a real TAP, then
    /// gives the rings back with the index it stopped at.</summary>
    [VhostNetFact]
    public void TheKernelMovesFramesBetweenTheRingsAndATapAndGivesTheRingsBack()
    {
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x40_0000)]));
        var events = new RecordingEvents();
        var (tap, packets) = NetNamespace.Run(() =>
        {
            var t = TapDevice.Open("pvhost0", 1);
            return (t, new PacketSocket("pvhost0"));
        });
        using var tapOwner = tap;
        using var packetOwner = packets;
        const ulong features = VirtioFeatures.Version1 | FeatureMrgRxbuf;
        tap.Configure(Header.Size, NetOffloads.None);
        var rx = new NetDriver(mem, new VirtQueue(mem, 0, 64, events), 0x1_0000, 64);
        var tx = new NetDriver(mem, new VirtQueue(mem, 1, 64, events), 0x2_0000, 64);
        using var rxKick = EventFd.Create();
        using var txKick = EventFd.Create();
        using var rxCall = EventFd.Create();
        using var txCall = EventFd.Create();
        using var vhost = VhostNet.Open(mem, 1);
        Assert.Equal(1, vhost.Pairs);
        Assert.NotEqual(0UL, vhost.Features & VirtioFeatures.Version1);
        Assert.Equal(features, vhost.AckedFeatures(features | FeatureMac | (1UL << 27 /* VHOST_NET_F_VIRTIO_NET_HDR */)) & ~VirtioFeatures.AnyLayout);

        // A ring outside guest RAM is refused before the kernel sees it.
        var bad = new VhostQueue(64, 0x4000_0000, 0x4000_1000, 0x4000_2000, 0, rxKick, rxCall);
        var e = Assert.Throws<NetBackendException>(() => vhost.Start(0, features, bad, bad, tap.QueueDescriptor(0)));
        Assert.Contains("not in guest RAM", e.Message);
        Assert.False(vhost.IsRunning(0));

        vhost.Start(0, features,
            new VhostQueue(rx.Size, rx.Desc, rx.Avail, rx.Used, 0, rxKick, rxCall),
            new VhostQueue(tx.Size, tx.Desc, tx.Avail, tx.Used, 0, txKick, txCall),
            tap.QueueDescriptor(0));
        Assert.True(vhost.IsRunning(0));

        // Guest -> host.
        var payload = Enumerable.Range(0, 200).Select(i => (byte)i).ToArray();
        byte[] mac = [0x02, 0, 0, 0, 0, 0x15];
        byte[] frame = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, .. mac, 0x88, 0xB5, .. payload];
        var txBuf = 0x10_0000UL;
        Assert.True(mem.TryFill(txBuf, Header.Size, 0));
        Assert.True(mem.TryWrite(txBuf + Header.Size, frame));
        tx.Publish(tx.AddChain((txBuf, (uint)(Header.Size + frame.Length), false)));
        txKick.Signal();
        Assert.Equal(frame, packets.Receive(EtherType));
        tx.WaitUsed(1);

        // Host -> guest, into mergeable buffers.
        var heads = new ushort[8];
        for (var i = 0; i < heads.Length; i++)
        {
            heads[i] = rx.AddChain((0x20_0000UL + (ulong)i * 4096, 4096, true));
            rx.Publish(heads[i]);
        }
        rxKick.Signal();
        byte[] reply = [.. mac, 0x02, 0, 0, 0, 0, 0x99, 0x88, 0xB5, .. payload.Reverse()];
        packets.Send(reply);
        var received = 0;
        while (true)
        {
            var (id, len) = rx.WaitUsed(1)[0];
            received++;
            var got = MockDriver.Bytes(mem, 0x20_0000UL + (ulong)Array.IndexOf(heads, (ushort)id) * 4096, (int)len);
            if (BinaryPrimitives.ReadUInt16BigEndian(got.AsSpan(Header.Size + 12)) != EtherType)
            {
                continue;   // the kernel's own frames (IPv6 router solicitations)
            }
            Assert.Equal(reply, got[Header.Size..]);
            Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(got.AsSpan(Header.NumBuffers)));
            break;
        }
        Assert.True(rxCall.TryConsume(out _) | txCall.TryConsume(out _), "the kernel never signalled a call eventfd");

        // Given back: each ring's next avail index is where the kernel stopped.
        Assert.Equal(((ushort)received, (ushort)1), vhost.Stop(0));
        Assert.False(vhost.IsRunning(0));
        Assert.Null(vhost.Stop(0));
    }
}

using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using static Propolis.Core.Hw.Virtio.VirtioNetSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>A network backend made of AF_UNIX datagram socket pairs: the device gets one end of
/// each queue (one datagram = virtio-net header + frame, as a TAP with IFF_VNET_HDR), the test
/// holds the other end as "the host network".</summary>
internal sealed class SocketPairBackend : INetBackend
{
    private const int AF_UNIX = 1, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0x80000;

    [DllImport("libc", SetLastError = true)]
    private static extern int socketpair(int domain, int type, int protocol, int[] sv);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    private const int F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0x800;

    private readonly int[] _deviceEnds;

    public SocketPairBackend(int queues, int mtu = 1500)
    {
        Mtu = mtu;
        _deviceEnds = new int[queues];
        Host = new Socket[queues];
        for (var i = 0; i < queues; i++)
        {
            var sv = new int[2];
            Assert.Equal(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
            // The device's end is non-blocking, as a TAP queue opened with O_NONBLOCK.
            Assert.Equal(0, fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL, 0) | O_NONBLOCK));
            _deviceEnds[i] = sv[0];
            Host[i] = new Socket(new SafeSocketHandle(sv[1], ownsHandle: true)) { Blocking = true, ReceiveTimeout = 20_000, SendBufferSize = 1 << 20 };
        }
    }

    /// <summary>The test's ends, one per queue.</summary>
    public Socket[] Host { get; }

    public string Description => "socketpair";
    public int QueueCount => _deviceEnds.Length;
    public int Mtu { get; }
    public int QueueDescriptor(int queue) => _deviceEnds[queue];

    public List<(int Header, NetOffloads Offloads)> Configured { get; } = [];
    public List<int> ActiveQueues { get; } = [];

    public void Configure(int vnetHeaderSize, NetOffloads guestOffloads) => Configured.Add((vnetHeaderSize, guestOffloads));

    public void SetActiveQueues(int count) => ActiveQueues.Add(count);

    /// <summary>The next datagram the device wrote on queue <paramref name="queue"/>.</summary>
    public byte[] Receive(int queue = 0)
    {
        var buf = new byte[70_000];
        var n = Host[queue].Receive(buf);
        return buf[..n];
    }

    public void Send(byte[] datagram, int queue = 0) => Assert.Equal(datagram.Length, Host[queue].Send(datagram));

    public void Dispose()
    {
        foreach (var fd in _deviceEnds) { close(fd); }
        foreach (var s in Host) { s.Dispose(); }
    }
}

/// <summary>The driver side of the device's virtqueues (like <see cref="MockDriver"/>, with one
/// ring area per queue) and the waits a test needs for the device's I/O threads.</summary>
internal sealed class NetDriver
{
    private readonly GuestMemory _mem;
    private readonly VirtQueue _q;
    private ushort _nextDesc;
    private ushort _availIdx;
    private ushort _usedSeen;

    /// <param name="configure">False when the test configures the queue itself (through the transport's registers).</param>
    public NetDriver(GuestMemory mem, VirtQueue q, ulong ringBase, ushort size, bool configure = true)
    {
        _mem = mem;
        _q = q;
        Size = size;
        Desc = ringBase;
        Avail = ringBase + 16UL * size;
        Used = (Avail + 6 + 2UL * size + 4095) & ~4095UL;
        if (configure)
        {
            Assert.True(q.TrySetSize(size));
            q.SetAddresses(Desc, Avail, Used);
            Assert.True(q.TryEnable());
        }
    }

    public ushort Size { get; }
    public ulong Desc { get; }
    public ulong Avail { get; }
    public ulong Used { get; }

    public void WriteDescriptor(int index, ulong addr, uint len, DescriptorFlags flags, ushort next) =>
        MockDriver.WriteDescriptor(_mem, Desc, index, addr, len, flags, next);

    public ushort AddChain(params (ulong Addr, uint Len, bool Write)[] buffers)
    {
        var head = _nextDesc;
        for (var i = 0; i < buffers.Length; i++)
        {
            var index = (ushort)((head + i) % Size);
            var next = (ushort)((head + i + 1) % Size);
            var flags = (buffers[i].Write ? DescriptorFlags.Write : 0) | (i + 1 < buffers.Length ? DescriptorFlags.Next : 0);
            WriteDescriptor(index, buffers[i].Addr, buffers[i].Len, flags, next);
        }
        _nextDesc = (ushort)((head + buffers.Length) % Size);
        return head;
    }

    /// <summary>Takes one table slot for a hand-made descriptor.</summary>
    public ushort TakeSlot() => _nextDesc++;

    public void Publish(ushort head)
    {
        Assert.True(_mem.TryWriteUInt16(Avail + 4 + 2UL * (ushort)(_availIdx % Size), head));
        _availIdx++;
        Assert.True(_mem.TryWriteUInt16(Avail + 2, _availIdx));
    }

    public ushort UsedIdx
    {
        get
        {
            Assert.True(_mem.TryReadUInt16(Used + 2, out var v));
            return v;
        }
    }

    /// <summary>Waits (the device works on its own thread) until <paramref name="count"/> more used entries are published.</summary>
    public List<(uint Id, uint Len)> WaitUsed(int count)
    {
        var deadline = Environment.TickCount64 + 20_000;
        while ((ushort)(UsedIdx - _usedSeen) < count)
        {
            Assert.True(Environment.TickCount64 < deadline, $"queue {_q.Index}: {count} used entries expected, {(ushort)(UsedIdx - _usedSeen)} arrived");
            Thread.Sleep(1);
        }
        var list = new List<(uint, uint)>();
        for (var i = 0; i < count; i++)
        {
            var e = Used + 4 + 8UL * (ushort)(_usedSeen % Size);
            Assert.True(_mem.TryReadUInt32(e, out var id));
            Assert.True(_mem.TryReadUInt32(e + 4, out var len));
            list.Add((id, len));
            _usedSeen++;
        }
        return list;
    }

    /// <summary>No used entry beyond those taken (checked after the device has answered a later request).</summary>
    public void AssertNoMoreUsed() => Assert.Equal(_usedSeen, UsedIdx);
}

public sealed class VirtioNetTests : IDisposable
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | FeatureMac | FeatureStatus | FeatureMtu
        | FeatureCsum | FeatureGuestCsum | FeatureHostTso4 | FeatureGuestTso4 | FeatureCtrlVq | FeatureCtrlRx;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x40_0000)]));
    private readonly RecordingEvents _events = new();
    private readonly SocketPairBackend _backend;
    private readonly VirtioNet _net;
    private ulong _bump = 0x10_0000;

    public VirtioNetTests() : this(pairs: 1) { }

    private VirtioNetTests(int pairs)
    {
        _backend = new SocketPairBackend(pairs);
        _net = new VirtioNet(_mem, _backend, _events, new VirtioNetOptions { RxQueueSize = 64, TxQueueSize = 64, MaxQueuePairs = pairs, Mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55] });
    }

    public void Dispose()
    {
        _net.Dispose();
        _backend.Dispose();
        _mem.Dispose();
    }

    private ulong Alloc(uint length, byte fill = 0)
    {
        var a = _bump;
        _bump = (_bump + length + 15) & ~15UL;
        Assert.True(_mem.TryFill(a, (int)length, fill));
        return a;
    }

    private (NetDriver Rx, NetDriver Tx, NetDriver Ctrl) Start(ulong features = Features)
    {
        _net.FeaturesNegotiated(features);
        var rx = new NetDriver(_mem, _net.Queues[0], 0x1_0000, 64);
        var tx = new NetDriver(_mem, _net.Queues[1], 0x2_0000, 64);
        var ctrl = new NetDriver(_mem, _net.Queues[_net.ControlQueueIndex], 0x3_0000, 64);
        return (rx, tx, ctrl);
    }

    private static byte[] Frame(int length, byte seed)
    {
        var f = new byte[length];
        for (var i = 0; i < length; i++) { f[i] = (byte)(seed + i * 7); }
        return f;
    }

    private static byte[] WithHeader(byte[] frame, int header = Header.Size, byte flags = 0)
    {
        var d = new byte[header + frame.Length];
        d[Header.Flags] = flags;
        frame.CopyTo(d, header);
        return d;
    }

    private byte[] Read(ulong gpa, int length) => MockDriver.Bytes(_mem, gpa, length);

    [Fact]
    public void ConfigurationSpaceHoldsMacLinkUpPairsAndMtu()
    {
        var config = new byte[Config.Size];
        _net.ReadConfig(0, config);
        Assert.Equal("02-11-22-33-44-55-01-00-01-00-DC-05", Convert.ToHexString(config).Insert(0, "").Chunk(2).Select(c => new string(c)).Aggregate((a, b) => a + "-" + b));
        Assert.Equal(0x1000, VirtioPciLayout.TransitionalDeviceId(DeviceId));
        Assert.Equal(0UL, _net.DeviceFeatures & FeatureMq);   // one pair: no MQ
        Assert.NotEqual(0UL, _net.DeviceFeatures & FeatureMrgRxbuf);
        Assert.Equal(3, _net.Queues.Length);
    }

    [Fact]
    public void FeaturesSetHeaderSizeAndGuestOffloadsOnTheBackend()
    {
        _net.FeaturesNegotiated(Features | FeatureMrgRxbuf);
        Assert.Equal((12, NetOffloads.Checksum | NetOffloads.Tso4), _backend.Configured[^1]);
        // A legacy driver without MRG_RXBUF uses the 10-byte header and no offloads it did not take.
        _net.FeaturesNegotiated(FeatureMac | FeatureCsum);
        Assert.Equal((10, NetOffloads.None), _backend.Configured[^1]);
        Assert.Equal(10, _net.HeaderSize);
    }

    [Fact]
    public void TransmitWritesHeaderAndFrameAsOneDatagram()
    {
        var (_, tx, _) = Start();
        var frame = Frame(1000, 1);
        var hdr = Alloc(Header.Size, 0);
        Assert.True(_mem.TryWriteByte(hdr, 1));   // VIRTIO_NET_HDR_F_NEEDS_CSUM passes through as is
        var data = Alloc(1000);
        Assert.True(_mem.TryWrite(data, frame));
        tx.Publish(tx.AddChain((hdr, Header.Size, false), (data, 1000, false)));
        _net.QueueNotify(1);

        var got = _backend.Receive();
        Assert.Equal(WithHeader(frame, flags: 1), got);
        Assert.Equal([(0u, 0u)], tx.WaitUsed(1));
        Assert.Equal(1, _net.TxFrames);
    }

    [Fact]
    public void WorkArrivingWhilePausedIsDoneAfterResume()
    {
        var (rx, tx, _) = Start();
        _net.Pause();
        var frame = Frame(80, 4);
        var buf = Alloc(Header.Size + 80);
        Assert.True(_mem.TryWrite(buf + Header.Size, frame));
        tx.Publish(tx.AddChain((buf, Header.Size + 80, false)));
        _net.QueueNotify(1);
        var rxBuf = Alloc(2048);
        var h = rx.AddChain((rxBuf, 2048, true));
        rx.Publish(h);
        _net.QueueNotify(0);
        _backend.Send(WithHeader(frame));
        Assert.Equal(0, _net.TxFrames + _net.RxFrames);   // Pause returned: nothing moves now

        _net.Resume();
        Assert.Equal(WithHeader(frame), _backend.Receive());
        Assert.Equal([(h, (uint)(Header.Size + 80))], rx.WaitUsed(1));
    }

    [Fact]
    public void MalformedTransmitChainsAreDroppedAndCountedAndTheQueueKeepsWorking()
    {
        var (_, tx, _) = Start();
        var buf = Alloc(64);

        // Shorter than the virtio-net header.
        tx.Publish(tx.AddChain((buf, 8, false)));
        // A loop: the descriptor names itself as next.
        var loop = tx.TakeSlot();
        tx.WriteDescriptor(loop, buf, 64, DescriptorFlags.Next, loop);
        tx.Publish(loop);
        // next beyond the table.
        var oor = tx.TakeSlot();
        tx.WriteDescriptor(oor, buf, 64, DescriptorFlags.Next, 1000);
        tx.Publish(oor);
        // A buffer outside guest RAM.
        var outside = tx.TakeSlot();
        tx.WriteDescriptor(outside, 0x4000_0000, 64, DescriptorFlags.None, 0);
        tx.Publish(outside);
        // Too long: an indirect table of 65 descriptors (more than the device takes in one chain).
        var table = Alloc(16 * (VirtioNet.MaxChainSegments + 1));
        for (var i = 0; i <= VirtioNet.MaxChainSegments; i++)
        {
            MockDriver.WriteDescriptor(_mem, table, i, buf, 16, i < VirtioNet.MaxChainSegments ? DescriptorFlags.Next : 0, (ushort)(i + 1));
        }
        var indirect = tx.TakeSlot();
        tx.WriteDescriptor(indirect, table, 16u * (VirtioNet.MaxChainSegments + 1), DescriptorFlags.Indirect, 0);
        tx.Publish(indirect);
        _net.QueueNotify(1);

        var used = tx.WaitUsed(5);
        Assert.All(used, u => Assert.Equal(0u, u.Len));
        Assert.Equal(5, _net.MalformedChains);
        Assert.Equal(0, _net.TxFrames);

        // The thread is alive: a good frame still goes out.
        var frame = Frame(100, 9);
        var good = Alloc(Header.Size + 100);
        Assert.True(_mem.TryWrite(good + Header.Size, frame));
        tx.Publish(tx.AddChain((good, (uint)(Header.Size + 100), false)));
        _net.QueueNotify(1);
        Assert.Equal(WithHeader(frame), _backend.Receive());
        tx.WaitUsed(1);
    }

    [Fact]
    public void ReceiveWithoutMergeableBuffersFillsOneChainAndSetsNumBuffersToOne()
    {
        var (rx, _, _) = Start();
        var hdr = Alloc(Header.Size, 0xEE);
        var data = Alloc(1518, 0xEE);
        var head = rx.AddChain((hdr, Header.Size, true), (data, 1518, true));
        rx.Publish(head);
        _net.QueueNotify(0);

        var frame = Frame(1514, 3);
        var datagram = WithHeader(frame);
        datagram[Header.NumBuffers] = 0x77;   // whatever the host wrote there, the device sets it
        _backend.Send(datagram);

        Assert.Equal([(head, (uint)datagram.Length)], rx.WaitUsed(1));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(Read(hdr + Header.NumBuffers, 2)));
        Assert.Equal(frame, Read(data, frame.Length));
        Assert.Equal(1, _net.RxFrames);
    }

    [Fact]
    public void MergeableReceiveSpreadsAFrameOverSeveralChainsPublishedTogether()
    {
        var (rx, _, _) = Start(Features | FeatureMrgRxbuf);
        var bufs = Enumerable.Range(0, 4).Select(_ => Alloc(512, 0xEE)).ToArray();
        var heads = bufs.Select(b => rx.AddChain((b, 512, true))).ToArray();
        foreach (var h in heads) { rx.Publish(h); }
        _net.QueueNotify(0);

        var frame = Frame(1400, 5);
        _backend.Send(WithHeader(frame));

        var used = rx.WaitUsed(3);
        Assert.Equal([(heads[0], 512u), (heads[1], 512u), (heads[2], (uint)(Header.Size + 1400 - 1024))], used);
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(Read(bufs[0] + Header.NumBuffers, 2)));
        var got = Read(bufs[0], 512).Concat(Read(bufs[1], 512)).Concat(Read(bufs[2], Header.Size + 1400 - 1024)).ToArray();
        Assert.Equal(frame, got[Header.Size..]);

        // The fourth chain is kept for the next frame.
        var small = Frame(60, 7);
        _backend.Send(WithHeader(small));
        Assert.Equal([(heads[3], (uint)(Header.Size + 60))], rx.WaitUsed(1));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(Read(bufs[3] + Header.NumBuffers, 2)));
        Assert.Equal(small, Read(bufs[3] + Header.Size, 60));
    }

    [Fact]
    public void AFrameWaitsForBuffersUntilTheDriverPostsEnough()
    {
        var (rx, _, _) = Start(Features | FeatureMrgRxbuf);
        var first = Alloc(1024, 0xEE);
        var h0 = rx.AddChain((first, 1024, true));
        rx.Publish(h0);
        _net.QueueNotify(0);

        var frame = Frame(1400, 11);
        _backend.Send(WithHeader(frame));
        // Nothing can be published yet: 1024 bytes of buffers for 1412 bytes.
        var second = Alloc(1024, 0xEE);
        var h1 = rx.AddChain((second, 1024, true));
        rx.Publish(h1);
        _net.QueueNotify(0);

        Assert.Equal([(h0, 1024u), (h1, (uint)(Header.Size + 1400 - 1024))], rx.WaitUsed(2));
        Assert.Equal(frame, Read(first, 1024).Concat(Read(second, 1024)).Skip(Header.Size).Take(1400).ToArray());
        Assert.Equal(0, _net.RxDropped);
    }

    [Fact]
    public void ReceiveChainsWithADeviceReadableBufferOrTooSmallForTheHeaderAreRefused()
    {
        var (rx, _, _) = Start();
        var a = Alloc(2048);
        var readable = rx.AddChain((a, 16, false), (a + 16, 1600, true));
        var tiny = rx.AddChain((a + 1700, 4, true));
        var good = Alloc(Header.Size + 1518);
        var goodHead = rx.AddChain((good, Header.Size + 1518, true));
        rx.Publish(readable);
        rx.Publish(tiny);
        rx.Publish(goodHead);
        _net.QueueNotify(0);
        var frame = Frame(200, 1);
        _backend.Send(WithHeader(frame));

        var used = rx.WaitUsed(3);
        Assert.Equal([(readable, 0u), (tiny, 0u), (goodHead, (uint)(Header.Size + 200))], used);
        Assert.Equal(2, _net.MalformedChains);
        Assert.Equal(frame, Read(good + Header.Size, 200));
    }

    [Fact]
    public void OversizedFrameForTheDriversOnlyBufferIsDroppedAndCounted()
    {
        // Without MRG_RXBUF every frame goes into one chain. The driver took guest TSO (frames up to
        // 64 KiB) but posted a buffer of header + 1518 bytes: a 4000-byte frame fits nowhere.
        var (rx, _, _) = Start();
        var small = Alloc(Header.Size + 1518);
        var h = rx.AddChain((small, Header.Size + 1518, true));
        rx.Publish(h);
        _net.QueueNotify(0);
        _backend.Send(WithHeader(Frame(4000, 1)));
        var frame = Frame(64, 2);
        _backend.Send(WithHeader(frame));
        Assert.Equal([(h, (uint)(Header.Size + 64))], rx.WaitUsed(1));
        Assert.Equal(frame, Read(small + Header.Size, 64));
        Assert.True(_net.RxDropped >= 1);
    }

    private byte Control(NetDriver ctrl, byte cls, byte cmd, byte[] data)
    {
        var cmdBuf = Alloc((uint)(2 + data.Length));
        Assert.True(_mem.TryWrite(cmdBuf, [cls, cmd, .. data]));
        var ack = Alloc(1, 0xFF);
        var head = ctrl.AddChain((cmdBuf, (uint)(2 + data.Length), false), (ack, 1, true));
        ctrl.Publish(head);
        _net.QueueNotify(_net.ControlQueueIndex);
        Assert.Equal([(head, 1u)], ctrl.WaitUsed(1));
        return Read(ack, 1)[0];
    }

    [Fact]
    public void ControlQueueAnswersRxModeAndMacTableCommands()
    {
        var (_, _, ctrl) = Start();
        Assert.Equal(2, _net.ControlQueueIndex);
        Assert.Equal(Ctrl.Ok, Control(ctrl, Ctrl.ClassRx, Ctrl.RxPromisc, [1]));
        Assert.True(_net.Promiscuous);
        Assert.Equal(Ctrl.Ok, Control(ctrl, Ctrl.ClassRx, Ctrl.RxAllMulti, [1]));
        Assert.True(_net.AllMulticast);
        Assert.Equal(Ctrl.Err, Control(ctrl, Ctrl.ClassRx, 9, [1]));

        // One unicast entry, two multicast entries.
        byte[] table = [1, 0, 0, 0, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0, 0x5E, 0, 0, 1, 1, 0, 0x5E, 0, 0, 2];
        Assert.Equal(Ctrl.Ok, Control(ctrl, Ctrl.ClassMac, Ctrl.MacTableSet, table));
        Assert.Equal((1, 2), _net.MacTable);
        // A table whose counts run past the data.
        Assert.Equal(Ctrl.Err, Control(ctrl, Ctrl.ClassMac, Ctrl.MacTableSet, [9, 0, 0, 0, 0, 0, 0, 0]));
        // MAC_ADDR_SET needs VIRTIO_NET_F_CTRL_MAC_ADDR, which the device does not offer; MQ was not negotiated.
        Assert.Equal(Ctrl.Err, Control(ctrl, Ctrl.ClassMac, Ctrl.MacAddrSet, [2, 0, 0, 0, 0, 1]));
        Assert.Equal(Ctrl.Err, Control(ctrl, Ctrl.ClassMq, Ctrl.MqVqPairsSet, [1, 0]));
        Assert.Equal(Ctrl.Err, Control(ctrl, 77, 0, []));
    }

    [Fact]
    public void ControlChainWithoutAnAckByteIsRefused()
    {
        var (_, _, ctrl) = Start();
        var cmd = Alloc(3);
        var head = ctrl.AddChain((cmd, 3, false));
        ctrl.Publish(head);
        _net.QueueNotify(2);
        Assert.Equal([(head, 0u)], ctrl.WaitUsed(1));
        Assert.Equal(1, _net.MalformedChains);
    }

    [Fact]
    public void MultiqueueUsesPairZeroUntilTheDriverSetsThePairCount()
    {
        using var t = new MultiQueue();
        t.Run();
    }

    /// <summary>Two queue pairs: the control queue moves to 2 × max_virtqueue_pairs with MQ,
    /// VQ_PAIRS_SET attaches the backend's second queue and frames flow on pair 1.</summary>
    private sealed class MultiQueue : IDisposable
    {
        private readonly VirtioNetTests _t = new(pairs: 2);

        public void Run()
        {
            var net = _t._net;
            Assert.NotEqual(0UL, net.DeviceFeatures & FeatureMq);
            Assert.Equal(5, net.Queues.Length);
            net.FeaturesNegotiated(Features | FeatureMq);
            Assert.Equal(4, net.ControlQueueIndex);
            Assert.Equal(1, net.ActiveQueuePairs);
            var ctrl = new NetDriver(_t._mem, net.Queues[4], 0x3_0000, 64);
            var rx1 = new NetDriver(_t._mem, net.Queues[2], 0x4_0000, 64);
            var tx1 = new NetDriver(_t._mem, net.Queues[3], 0x5_0000, 64);

            Assert.Equal(Ctrl.Err, _t.Control(ctrl, Ctrl.ClassMq, Ctrl.MqVqPairsSet, [3, 0]));
            Assert.Equal(Ctrl.Ok, _t.Control(ctrl, Ctrl.ClassMq, Ctrl.MqVqPairsSet, [2, 0]));
            Assert.Equal(2, net.ActiveQueuePairs);
            Assert.Equal(2, _t._backend.ActiveQueues[^1]);

            var buf = _t.Alloc(2048);
            var h = rx1.AddChain((buf, 2048, true));
            rx1.Publish(h);
            net.QueueNotify(2);
            var frame = Frame(300, 4);
            _t._backend.Send(WithHeader(frame), queue: 1);
            Assert.Equal([(h, (uint)(Header.Size + 300))], rx1.WaitUsed(1));

            var txBuf = _t.Alloc(Header.Size + 50);
            tx1.Publish(tx1.AddChain((txBuf, Header.Size + 50, false)));
            net.QueueNotify(3);
            Assert.Equal(Header.Size + 50, _t._backend.Receive(queue: 1).Length);

            net.Reset();
            Assert.Equal(1, net.ActiveQueuePairs);
            Assert.Equal(1, _t._backend.ActiveQueues[^1]);
        }

        public void Dispose() => _t.Dispose();
    }

    [Fact]
    public void ResetDropsHeldBuffersAndTheNextDriverStartsClean()
    {
        var (rx, _, _) = Start(Features | FeatureMrgRxbuf);
        var a = Alloc(256);
        rx.Publish(rx.AddChain((a, 256, true)));
        _net.QueueNotify(0);
        _net.Reset();

        var (rx2, _, _) = Start(Features | FeatureMrgRxbuf);
        var b = Alloc(4096, 0xEE);
        var h = rx2.AddChain((b, 4096, true));
        rx2.Publish(h);
        _net.QueueNotify(0);
        var frame = Frame(500, 8);
        _backend.Send(WithHeader(frame));
        Assert.Equal([(h, (uint)(Header.Size + 500))], rx2.WaitUsed(1));
        Assert.Equal(frame, Read(b + Header.Size, 500));
    }
}

using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using Propolis.Core.Vmm;
using static Propolis.Core.Hw.Virtio.VirtioNetSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>The hand-over of virtio-net's data queues to an in-kernel data path, with the kernel
/// side faked (the device, its queues, packet threads and backend are real).</summary>
public sealed class VirtioNetVhostTests : IDisposable
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx | FeatureMac | FeatureMrgRxbuf | FeatureCtrlVq | FeatureMq;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x40_0000)]));
    private readonly RecordingEvents _events = new();
    private readonly SocketPairBackend _backend = new(2);
    private readonly VirtioNet _net;
    private readonly FakeVhost _vhost = new(2);
    private readonly Dictionary<ushort, EventFd> _irqFds = [];
    private bool _msix = true;
    private readonly VirtioNetVhost _handoff;
    private readonly NetDriver[] _drivers = new NetDriver[4];

    public VirtioNetVhostTests()
    {
        _net = new VirtioNet(_mem, _backend, _events, new VirtioNetOptions { RxQueueSize = 64, TxQueueSize = 64, MaxQueuePairs = 2 });
        _handoff = new VirtioNetVhost(_net, _vhost, _backend, q => _net.NotifyEventFd(q),
            v => _irqFds.TryGetValue(v, out var fd) ? fd : null, () => _msix);
        for (ushort v = 1; v <= 4; v++)
        {
            _irqFds[v] = EventFd.Create();
        }
    }

    public void Dispose()
    {
        _handoff.Dispose();
        _net.Dispose();
        _backend.Dispose();
        foreach (var fd in _irqFds.Values) { fd.Dispose(); }
        _mem.Dispose();
    }

    /// <summary>The driver negotiates, sets up both pairs with vectors 1 to 4, and sets DRIVER_OK.</summary>
    private void StartDriver(ulong features = Features)
    {
        _net.FeaturesNegotiated(features);
        for (var q = 0; q < 4; q++)
        {
            _drivers[q] = new NetDriver(_mem, _net.Queues[q], 0x1_0000 + 0x1_0000UL * (ulong)q, 64);
            _net.Queues[q].MsixVector = (ushort)(q + 1);
        }
        _handoff.DriverOk();
    }

    [Fact]
    public void DriverOkHandsEveryEnabledPairToTheKernelWithItsRingsKickAndCall()
    {
        StartDriver();

        Assert.Equal(2, _handoff.RunningPairs);
        Assert.Null(_handoff.FallbackReason);
        Assert.Equal([0, 1], _vhost.Started.Select(s => s.Pair));
        for (var pair = 0; pair < 2; pair++)
        {
            var s = _vhost.Started[pair];
            Assert.Equal(Features, s.Features);
            Assert.Equal(_backend.QueueDescriptor(pair), s.TapFd);
            foreach (var (q, ring) in new[] { (2 * pair, s.Rx), (2 * pair + 1, s.Tx) })
            {
                var d = _drivers[q];
                Assert.Equal((d.Size, d.Desc, d.Avail, d.Used, (ushort)0), (ring.Size, ring.DescriptorTable, ring.AvailRing, ring.UsedRing, ring.NextAvail));
                Assert.Same(_net.NotifyEventFd(q), ring.Kick);
                Assert.Same(_irqFds[(ushort)(q + 1)], ring.Call);
                Assert.True(_net.IsQueueStopped(q), $"queue {q} is still with the packet thread");
            }
        }
        // The control queue stays here.
        Assert.False(_net.IsQueueStopped(_net.ControlQueueIndex));
    }

    [Fact]
    public void PauseTakesTheQueuesBackWhereTheKernelStoppedAndResumeHandsThemOverFromThere()
    {
        StartDriver();
        // While the kernel has pair 0 the driver makes 5 receive and 3 transmit buffers
        // available, and the kernel takes them all.
        for (var i = 0; i < 5; i++)
        {
            _drivers[0].Publish(_drivers[0].AddChain((Alloc(2048, 0), 2048, true)));
        }
        for (var i = 0; i < 3; i++)
        {
            _drivers[1].Publish(_drivers[1].AddChain((Alloc(Header.Size + 60, 0), Header.Size + 60, false)));
        }
        _vhost.Bases[0] = (5, 3);
        _vhost.Bases[1] = (0, 0);

        _handoff.Pause();

        Assert.Equal(0, _handoff.RunningPairs);
        Assert.Equal([0, 1], _vhost.Stopped);
        Assert.Equal((ushort)5, _net.Queues[0].LastAvailIndex);
        Assert.Equal((ushort)3, _net.Queues[1].LastAvailIndex);
        Assert.Equal((ushort)0, _net.Queues[2].LastAvailIndex);
        for (var q = 0; q < 4; q++)
        {
            Assert.False(_net.IsQueueStopped(q), $"queue {q} was not given back to the packet thread");
        }

        _handoff.Resume();

        Assert.Equal(2, _handoff.RunningPairs);
        Assert.Equal(((ushort)5, (ushort)3), (_vhost.Started[2].Rx.NextAvail, _vhost.Started[2].Tx.NextAvail));
    }

    [Fact]
    public void ADeviceResetKeepsThePacketThreadsOffTheKernelsRingsUntilTheQueuesAreReset()
    {
        StartDriver();
        // A transmit buffer the kernel had not taken when the driver reset the device: the driver
        // is discarding it, so no packet thread may send it in the meantime.
        _drivers[1].Publish(_drivers[1].AddChain((Alloc(Header.Size + 60, 0xCC), Header.Size + 60, false)));
        _vhost.Bases[0] = (0, 0);
        _vhost.Bases[1] = (0, 0);

        _handoff.Reset();

        Assert.Equal([0, 1], _vhost.Stopped);
        Assert.Equal(0, _handoff.RunningPairs);
        for (var q = 0; q < 4; q++)
        {
            Assert.True(_net.IsQueueStopped(q), $"queue {q} went back to its packet thread before the queues were reset");
        }

        _handoff.ResetDone();

        for (var q = 0; q < 4; q++)
        {
            Assert.False(_net.IsQueueStopped(q), $"queue {q} was not given back to its packet thread after the reset");
        }
        // DRIVER_OK went with the reset: nothing goes to the kernel before the next one.
        _handoff.Resume();
        Assert.Equal(0, _handoff.RunningPairs);
    }

    [Fact]
    public void AfterTheKernelGivesATransmitQueueBackThePacketThreadSendsOnlyWhatItHadNotSent()
    {
        StartDriver();
        var tx = _drivers[1];
        // The kernel sent chain A (and published it as used); chain B arrives after it let go.
        var a = Alloc(Header.Size + 60, 0xAA);
        var headA = tx.AddChain((a, Header.Size + 60, false));
        tx.Publish(headA);
        Assert.True(_mem.TryWriteUInt32(tx.Used + 4, headA));
        Assert.True(_mem.TryWriteUInt32(tx.Used + 8, Header.Size + 60));
        Assert.True(_mem.TryWriteUInt16(tx.Used + 2, 1));
        _vhost.Bases[0] = (0, 1);

        _handoff.Pause();   // the kernel lets go (the device itself is not paused: its packet thread runs)
        Assert.False(_net.IsQueueStopped(1));
        var b = Alloc(Header.Size + 60, 0xBB);
        tx.Publish(tx.AddChain((b, Header.Size + 60, false)));
        _net.QueueNotify(1);

        var sent = _backend.Receive(0);
        Assert.Equal(0xBB, sent[^1]);
        Assert.Equal(1, _net.TxFrames);
    }

    [Fact]
    public void AKernelRefusalLeavesEveryQueueWithThePacketThreadsAndSaysWhy()
    {
        _vhost.FailOnPair = 1;

        StartDriver();

        Assert.Equal(0, _handoff.RunningPairs);
        Assert.Contains("VHOST_SET_VRING_ADDR", _handoff.FallbackReason);
        Assert.Equal([0], _vhost.Stopped);   // pair 0 had been started: it was stopped again
        for (var q = 0; q < 4; q++)
        {
            Assert.False(_net.IsQueueStopped(q));
        }
    }

    [Fact]
    public void WithoutMsixOrWithARingFeatureTheKernelLacksNothingIsHandedOver()
    {
        _msix = false;
        StartDriver();
        Assert.Empty(_vhost.Started);
        Assert.Contains("INTx", _handoff.FallbackReason);

        _msix = true;
        _handoff.Reset();
        _vhost.Offered = Features & ~VirtioFeatures.RingEventIdx;
        _handoff.DriverOk();
        Assert.Empty(_vhost.Started);
        Assert.Contains("0x20000000", _handoff.FallbackReason);
    }

    [Fact]
    public void OnlyPairsTheDriverEnabledAreHandedOver()
    {
        _net.FeaturesNegotiated(Features & ~FeatureMq);
        _ = new NetDriver(_mem, _net.Queues[0], 0x1_0000, 64);
        _ = new NetDriver(_mem, _net.Queues[1], 0x2_0000, 64);

        _handoff.DriverOk();

        Assert.Equal(1, _handoff.RunningPairs);
        Assert.Null(_vhost.Started[0].Rx.Call);   // NO_VECTOR: the driver wants no interrupt
        Assert.False(_net.IsQueueStopped(2));
    }

    [Fact]
    public void AnErrorTheKernelReportsOnARingAsksTheDriverForAReset()
    {
        StartDriver();

        _vhost.RingError!(3);

        Assert.True(_net.Queues[3].IsBroken);
        Assert.Equal(1, _events.NeedsReset);
    }

    private ulong _bump = 0x20_0000;

    private ulong Alloc(uint length, byte fill)
    {
        var a = _bump;
        _bump = (_bump + length + 15) & ~15UL;
        Assert.True(_mem.TryFill(a, (int)length, fill));
        return a;
    }
}

/// <summary>The kernel side, recorded: what it was given, and the bases it hands back.</summary>
internal sealed class FakeVhost(int pairs) : IVhostNetBackend
{
    public int Pairs => pairs;
    public ulong Offered { get; set; } = ~0UL;
    public Action<int>? RingError { get; set; }
    public int? FailOnPair { get; set; }
    public List<(int Pair, ulong Features, VhostQueue Rx, VhostQueue Tx, int TapFd)> Started { get; } = [];
    public List<int> Stopped { get; } = [];
    public Dictionary<int, (ushort Rx, ushort Tx)> Bases { get; } = [];
    private readonly HashSet<int> _running = [];

    public string? CannotServe(ulong negotiated, ulong ringFeatures)
    {
        var missing = negotiated & ringFeatures & ~Offered;
        return missing == 0 ? null : $"missing 0x{missing:X}";
    }

    public void Start(int pair, ulong negotiatedFeatures, in VhostQueue rx, in VhostQueue tx, int tapQueueFd)
    {
        if (pair == FailOnPair)
        {
            throw new NetBackendException("vhost-net: VHOST_SET_VRING_ADDR failed: Invalid argument (EINVAL) while giving it the rings");
        }
        Started.Add((pair, negotiatedFeatures, rx, tx, tapQueueFd));
        _running.Add(pair);
    }

    public (ushort Rx, ushort Tx)? Stop(int pair)
    {
        if (!_running.Remove(pair))
        {
            return null;
        }
        Stopped.Add(pair);
        return Bases.TryGetValue(pair, out var b) ? b : (Started.Last(s => s.Pair == pair).Rx.NextAvail, Started.Last(s => s.Pair == pair).Tx.NextAvail);
    }
}

/// <summary>The hand-over driven through the PCI function as Linux's virtio_pci_modern drives it:
/// DRIVER_OK gives the kernel the doorbell eventfds and the irqfds of the vectors the driver
/// chose; status 0 takes the queues back.</summary>
public sealed class PciVirtioNetVhostTests : IDisposable
{
    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x40_0000)]));
    private readonly VirtioPciHarness _h = new();
    private readonly SocketPairBackend _backend = new(queues: 2);
    private readonly PciVirtioNet _dev;
    private readonly FakeVhost _vhost = new(2);

    public PciVirtioNetVhostTests()
    {
        _dev = new PciVirtioNet(_mem, _backend, new VirtioNetOptions { MaxQueuePairs = 2, RxQueueSize = 64, TxQueueSize = 64 });
        _h.Attach(_dev, 5);
        _dev.AttachVhost(_vhost, _backend);
    }

    public void Dispose()
    {
        _dev.Dispose();
        foreach (var r in _h.Sink.Routes) { r.Dispose(); }
        _backend.Dispose();
        _mem.Dispose();
    }

    private void W(ulong offset, int width, uint value) => _h.W(offset, width, value);

    [Fact]
    public void DriverOkHandsTheDataQueuesOverAndDeviceResetTakesThemBack()
    {
        const ulong features = VirtioFeatures.Version1 | FeatureMac | FeatureCtrlVq;
        _dev.ConfigWrite(_dev.Msix!.Offset + 2, [0x00, 0x80]);   // MSI-X enable
        for (var v = 1; v <= 2; v++)
        {
            _h.Msix32(16UL * (ulong)v, 0xFEE0_0000);
            _h.Msix32(16UL * (ulong)v + 8, 0x40u + (uint)v);
            _h.Msix32(16UL * (ulong)v + 12, 0);
        }
        W(0x14, 1, 1 | 2);
        W(0x08, 4, 0); W(0x0C, 4, unchecked((uint)features));
        W(0x08, 4, 1); W(0x0C, 4, (uint)(features >> 32));
        W(0x14, 1, 1 | 2 | 8);
        var drivers = new NetDriver[2];
        for (var q = 0; q < 2; q++)
        {
            W(0x16, 2, (uint)q);
            W(0x18, 2, 64);
            W(0x1A, 2, (uint)(q + 1));
            drivers[q] = new NetDriver(_mem, _dev.Net.Queues[q], 0x1_0000 + 0x1_0000UL * (ulong)q, 64, configure: false);
            W(0x20, 4, (uint)drivers[q].Desc); W(0x24, 4, 0);
            W(0x28, 4, (uint)drivers[q].Avail); W(0x2C, 4, 0);
            W(0x30, 4, (uint)drivers[q].Used); W(0x34, 4, 0);
            W(0x1C, 2, 1);
        }
        Assert.Empty(_vhost.Started);

        W(0x14, 1, 1 | 2 | 8 | 4);   // DRIVER_OK

        var s = Assert.Single(_vhost.Started);   // no MQ: one pair
        Assert.Equal(0, s.Pair);
        Assert.Equal(_backend.QueueDescriptor(0), s.TapFd);
        Assert.Same(_dev.KickEventFd(0), s.Rx.Kick);
        Assert.Same(_dev.KickEventFd(1), s.Tx.Kick);
        Assert.Same(_dev.VectorIrqFd(1), s.Rx.Call);
        Assert.Same(_dev.VectorIrqFd(2), s.Tx.Call);
        Assert.Equal((drivers[1].Desc, drivers[1].Avail, drivers[1].Used), (s.Tx.DescriptorTable, s.Tx.AvailRing, s.Tx.UsedRing));
        Assert.Equal(1, _dev.Vhost!.RunningPairs);
        Assert.True(_dev.Net.IsQueueStopped(0) && _dev.Net.IsQueueStopped(1));

        W(0x14, 1, 0);   // device reset

        Assert.Equal([0], _vhost.Stopped);
        Assert.Equal(0, _dev.Vhost.RunningPairs);
        Assert.False(_dev.Net.IsQueueStopped(0) || _dev.Net.IsQueueStopped(1));
    }
}

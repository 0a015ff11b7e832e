using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using Propolis.Core.Tests.Hw.TestDoubles;
using Propolis.Core.Vmm;
using static Propolis.Core.Hw.Virtio.VirtioNetSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>virtio-net's modern interface (virtio 1.2 §4.1.4) as Linux's virtio_pci_modern drives
/// it, its doorbells (ioeventfds straight to the packet threads), its irqfd interrupts, and the
/// hooks another data path (vhost-net) takes queues over with.</summary>
public sealed class PciVirtioNetModernTests : IDisposable
{
    private const ushort IoBase = VirtioPciHarness.IoBase;
    private const ulong ModernBase = VirtioPciHarness.ModernBase;
    private const ulong MsiAddress = 0xFEE0_0000;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x40_0000)]));
    private readonly VirtioPciHarness _h = new();
    private readonly SocketPairBackend _backend = new(queues: 2);
    private readonly PciVirtioNet _dev;
    private ulong _bump = 0x10_0000;

    public PciVirtioNetModernTests()
    {
        _dev = new PciVirtioNet(_mem, _backend, new VirtioNetOptions { MaxQueuePairs = 2, RxQueueSize = 64, TxQueueSize = 64, Mac = [0x02, 1, 2, 3, 4, 5] });
        _h.Attach(_dev, 5);
    }

    public void Dispose()
    {
        _dev.Dispose();
        foreach (var r in _h.Sink.Routes) { r.Dispose(); }
        _backend.Dispose();
        _mem.Dispose();
    }

    /// <summary>Every virtio_pci_cap in <paramref name="dev"/>'s capability list: (cfg_type, bar, offset, length).</summary>
    internal static List<(byte Type, byte Bar, uint Offset, uint Length)> VirtioCaps(PciDevice dev)
    {
        var caps = new List<(byte, byte, uint, uint)>();
        var at = (int)(dev.ConfigReadDword(PciHeader.CapabilitiesPointer) & 0xFF);
        while (at != 0)
        {
            var head = dev.ConfigReadDword(at);
            if ((head & 0xFF) == PciCapabilityId.VendorSpecific)
            {
                Assert.Equal((head >> 16) & 0xFF, (head >> 24) is VirtioPciLayout.CapNotifyCfg or VirtioPciLayout.CapPciCfg ? 20u : 16u);   // cap_len
                caps.Add(((byte)(head >> 24), (byte)dev.ConfigReadDword(at + 4), dev.ConfigReadDword(at + 8), dev.ConfigReadDword(at + 12)));
                if ((head >> 24) == VirtioPciLayout.CapNotifyCfg)
                    Assert.Equal(VirtioPciLayout.NotifyOffMultiplier, dev.ConfigReadDword(at + 16));
            }
            at = (int)((head >> 8) & 0xFF);
        }
        return caps;
    }

    private void W(ulong offset, int width, uint value) => _h.W(offset, width, value);

    private uint R(ulong offset, int width) => _h.R(offset, width);

    private void Msix32(ulong offset, uint value) => _h.Msix32(offset, value);

    private void EnableMsix() => _dev.ConfigWrite(_dev.Msix!.Offset + 2, [0x00, 0x80]);

    /// <summary>Table entry <paramref name="vector"/>: the local APIC address, data 0x40 + vector, unmasked.</summary>
    private void ProgramVector(int vector)
    {
        Msix32(16UL * (ulong)vector, (uint)MsiAddress);
        Msix32(16UL * (ulong)vector + 8, 0x40u + (uint)vector);
        Msix32(16UL * (ulong)vector + 12, 0);
    }

    /// <summary>§3.1.1 steps 1–6 through the common configuration structure (§4.1.4.3).</summary>
    private void Negotiate(ulong features)
    {
        W(0x14, 1, 0);
        W(0x14, 1, 1 | 2);
        W(0x08, 4, 0); W(0x0C, 4, (uint)features);
        W(0x08, 4, 1); W(0x0C, 4, (uint)(features >> 32));
        W(0x14, 1, 1 | 2 | 8);
        Assert.Equal(1u | 2 | 8, R(0x14, 1));   // FEATURES_OK accepted
    }

    /// <summary>Sets queue <paramref name="queue"/> up through queue_select/size/msix_vector/desc/driver/device/enable.</summary>
    private NetDriver Queue(int queue, ulong ringBase, ushort vector)
    {
        W(0x16, 2, (uint)queue);
        W(0x18, 2, 64);
        W(0x1A, 2, vector);
        Assert.Equal(vector, R(0x1A, 2));
        var d = new NetDriver(_mem, _dev.Net.Queues[queue], ringBase, 64, configure: false);
        W(0x20, 4, (uint)d.Desc); W(0x24, 4, 0);
        W(0x28, 4, (uint)d.Avail); W(0x2C, 4, 0);
        W(0x30, 4, (uint)d.Used); W(0x34, 4, 0);
        W(0x1C, 2, 1);
        Assert.Equal(1u, R(0x1C, 2));
        Assert.Equal((uint)queue, R(0x1E, 2));   // queue_notify_off: the doorbell is at 0x3000 + 4 × queue
        return d;
    }

    private void DriverOk() => W(0x14, 1, 1 | 2 | 8 | 4);

    private ulong Alloc(uint length, byte fill = 0)
    {
        var a = _bump;
        _bump = (_bump + length + 15) & ~15UL;
        Assert.True(_mem.TryFill(a, (int)length, fill));
        return a;
    }

    private static byte[] Frame(int length, byte seed)
    {
        var f = new byte[length];
        for (var i = 0; i < length; i++) { f[i] = (byte)(seed + i * 3); }
        return f;
    }

    /// <summary>Signals the eventfd registered for a queue's modern doorbell, as KVM does on the guest's write.</summary>
    private void Kick(int queue) => Assert.True(_h.Registrar.FdAt(IoEventSpace.Mmio, ModernBase + 0x3000 + 4UL * (ulong)queue).Signal());

    private static void WaitFor(Func<bool> condition, string what) =>
        Assert.True(SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(20)), what);

    [Fact]
    public void CapabilitiesNameTheModernRegionsAndTheDeviceConfigurationReadsThroughBar4()
    {
        Assert.Equal(
        [
            (VirtioPciLayout.CapCommonCfg, (byte)4, 0x0000u, 0x38u),
            (VirtioPciLayout.CapNotifyCfg, (byte)4, 0x3000u, 5 * 4u),   // 2 pairs + control
            (VirtioPciLayout.CapIsrCfg, (byte)4, 0x1000u, 1u),
            (VirtioPciLayout.CapDeviceCfg, (byte)4, 0x2000u, (uint)Config.Size),
            (VirtioPciLayout.CapPciCfg, (byte)0, 0u, 0u),
        ], VirtioCaps(_dev));
        Assert.Equal(0x40UL, _dev.GetBar(0)!.Size);
        Assert.Equal(6, _dev.Msix!.Vectors);

        Assert.Equal(5u, R(0x12, 2));                    // num_queues
        W(0x00, 4, 1);
        Assert.Equal(1u, R(0x04, 4) & 1);                // VIRTIO_F_VERSION_1 (bit 32)
        W(0x00, 4, 0);
        Assert.NotEqual(0u, R(0x04, 4) & (uint)FeatureMq);
        // struct virtio_net_config (§5.1.4), little-endian: mac, status, max_virtqueue_pairs, mtu.
        Assert.Equal(0x0302_0102u, R(0x2000, 4));
        Assert.Equal(0x0504u, R(0x2004, 2));
        Assert.Equal(StatusLinkUp, R(0x2006, 2));
        Assert.Equal(2u, R(0x2008, 2));
        Assert.Equal(1500u, R(0x200A, 2));
    }

    [Fact]
    public void Version1UsesTheTwelveByteHeaderBothWaysAndInterruptsThroughIrqfdRoutes()
    {
        EnableMsix();
        ProgramVector(1);
        ProgramVector(2);
        Negotiate(VirtioFeatures.Version1 | FeatureMac | FeatureCtrlVq);
        // No MRG_RXBUF: still the 12-byte header with num_buffers (§5.1.6), and the TAP is told so.
        Assert.Equal((12, NetOffloads.None), _backend.Configured[^1]);
        Assert.Equal(12, _dev.Net.HeaderSize);
        var rx = Queue(0, 0x1_0000, 1);
        var tx = Queue(1, 0x2_0000, 2);
        DriverOk();

        // Transmit: header and frame leave as one datagram with the 12-byte header.
        var frame = Frame(60, 1);
        var buf = Alloc(12 + 60);
        Assert.True(_mem.TryWrite(buf + 12, frame));
        tx.Publish(tx.AddChain((buf, 12 + 60, false)));
        Kick(1);
        Assert.Equal(new byte[12].Concat(frame), _backend.Receive());
        tx.WaitUsed(1);
        WaitFor(() => _h.Sink.RouteSignals.Contains((MsiAddress, 0x42u)), "the transmit queue's vector was signalled through its route");

        // Receive: num_buffers is 1 whatever the host wrote there.
        var rxBuf = Alloc(2048, 0xEE);
        var head = rx.AddChain((rxBuf, 2048, true));
        rx.Publish(head);
        Kick(0);
        var incoming = Frame(100, 9);
        var datagram = new byte[12 + 100];
        datagram[Header.NumBuffers] = 0x55;
        incoming.CopyTo(datagram, 12);
        _backend.Send(datagram);
        Assert.Equal([(head, 112u)], rx.WaitUsed(1));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(MockDriver.Bytes(_mem, rxBuf + Header.NumBuffers, 2)));
        Assert.Equal(incoming, MockDriver.Bytes(_mem, rxBuf + 12, 100));
        WaitFor(() => _h.Sink.RouteSignals.Contains((MsiAddress, 0x41u)), "the receive queue's vector was signalled through its route");
        Assert.Empty(_h.Sink.Direct);
    }

    [Fact]
    public void DataQueueDoorbellsSignalTheirKickEventFdAndTheControlQueueTraps()
    {
        // Before negotiation the control queue is 2: queues 0, 1 and 3 are watched, at both addresses.
        (IoEventSpace, ulong, int, ulong?)[] Doorbells(params int[] queues) =>
        [
            .. queues.Select(q => (IoEventSpace.Port, (ulong)IoBase + 0x10, 2, (ulong?)(ulong)q)),
            .. queues.Select(q => (IoEventSpace.Mmio, ModernBase + 0x3000 + 4UL * (ulong)q, 2, (ulong?)null)),
        ];
        Assert.Equal(Doorbells(0, 1, 3).Order(), _h.Registrar.Active.Order());
        foreach (var q in new[] { 0, 1, 3 })
        {
            Assert.Same(_dev.KickEventFd(q), _h.Registrar.FdAt(IoEventSpace.Port, IoBase + 0x10, (ulong)q));
            Assert.Same(_dev.KickEventFd(q), _h.Registrar.FdAt(IoEventSpace.Mmio, ModernBase + 0x3000 + 4UL * (ulong)q));
        }
        Assert.Null(_dev.KickEventFd(4));

        // With MQ the control queue moves to 4 and queue 2 is receiveq1.
        Negotiate(VirtioFeatures.Version1 | FeatureCtrlVq | FeatureMq);
        Assert.Equal(4, _dev.Net.ControlQueueIndex);
        Assert.Equal(Doorbells(0, 1, 2, 3).Order(), _h.Registrar.Active.Order());
        Assert.Equal(8, _dev.IoEventDoorbells);

        // Device reset: back to the layout without MQ.
        W(0x14, 1, 0);
        Assert.Equal(Doorbells(0, 1, 3).Order(), _h.Registrar.Active.Order());

        // The legacy BAR moves: its doorbells follow.
        _dev.ConfigWriteDword(PciHeader.Bar0, 0xD000);
        Assert.Equal(3, _h.Registrar.Active.Count(a => a.Space == IoEventSpace.Port && a.Address == 0xD010));
        _dev.Dispose();
        Assert.Empty(_h.Registrar.Active);
    }

    [Fact]
    public void VectorIrqFdFollowsTheTableEntryAndItsMask()
    {
        var fd = _dev.VectorIrqFd(1);
        Assert.NotNull(fd);
        Assert.Same(fd, _dev.VectorIrqFd(1));
        Assert.Null(_dev.VectorIrqFd(6));
        var route = Assert.Single(_h.Sink.Routes);
        Assert.True(route.Current!.Value.Masked);                    // MSI-X disabled

        EnableMsix();
        Assert.True(route.Current!.Value.Masked);                    // the entry is still masked (reset state)
        ProgramVector(1);
        Assert.Equal((MsiAddress, 0x41u, false), route.Current);
        Msix32(16 + 8, 0x77);                                        // the guest moves the vector
        Assert.Equal((MsiAddress, 0x77u, false), route.Current);
        Msix32(16 + 12, 1);                                          // masks it
        Assert.True(route.Current!.Value.Masked);
        Msix32(16 + 12, 0);
        Assert.False(route.Current!.Value.Masked);
        _dev.ConfigWrite(_dev.Msix!.Offset + 2, [0x00, 0xC0]);       // function mask
        Assert.True(route.Current!.Value.Masked);
        _dev.Reset();                                                // machine reset: MSI-X off
        Assert.True(route.Current!.Value.Masked);
    }

    [Fact]
    public void AStoppedTransmitQueueIsLeftAloneAndResumesFromTheRestoredBase()
    {
        Negotiate(VirtioFeatures.Version1);
        Queue(0, 0x1_0000, VirtioPciLayout.NoVector);
        var tx = Queue(1, 0x2_0000, VirtioPciLayout.NoVector);
        DriverOk();
        var q = _dev.Net.Queues[1];

        Assert.True(_dev.Net.StopQueue(1));
        Assert.True(_dev.Net.IsQueueStopped(1));
        Assert.False(_dev.Net.IsQueueStopped(0));
        Assert.False(_dev.Net.StopQueue(4));                          // the control queue (no MQ: 2) and beyond: not data queues
        _dev.KickEventFd(1)!.TryConsume(out _);                        // DRIVER_OK's own kick, if the thread had not taken it yet
        var a = Alloc(12 + 40);
        var headA = tx.AddChain((a, 12 + 40, false));
        tx.Publish(headA);
        Kick(1);
        // The packet thread no longer polls the kick: the signal waits there for the other data path.
        Assert.True(_dev.KickEventFd(1)!.TryConsume(out var kicks));
        Assert.Equal(1UL, kicks);
        Assert.Equal(new VirtQueueRing(64, tx.Desc, tx.Avail, tx.Used, 0), q.Ring);

        // The other data path sends chain A and completes it, then hands the queue back at base 1.
        Assert.True(_mem.TryWriteUInt32(tx.Used + 4, headA));
        Assert.True(_mem.TryWriteUInt32(tx.Used + 8, 0));
        Assert.True(_mem.TryWriteUInt16(tx.Used + 2, 1));
        Assert.True(q.RestoreLastAvailIndex(1));
        var b = Alloc(12 + 50);
        Assert.True(_mem.TryWrite(b + 12, Frame(50, 2)));
        var headB = tx.AddChain((b, 12 + 50, false));
        tx.Publish(headB);
        Assert.True(_dev.Net.StartQueue(1));

        Assert.Equal(new byte[12].Concat(Frame(50, 2)), _backend.Receive());   // only B: A is not sent twice
        Assert.Equal([(headA, 0u), (headB, 0u)], tx.WaitUsed(2));
        Assert.Equal(1, _dev.Net.TxFrames);
    }

    [Fact]
    public void StoppingTheReceiveQueueGivesHeldBuffersBackToTheRing()
    {
        Negotiate(VirtioFeatures.Version1);
        var rx = Queue(0, 0x1_0000, VirtioPciLayout.NoVector);
        Queue(1, 0x2_0000, VirtioPciLayout.NoVector);
        DriverOk();
        var q = _dev.Net.Queues[0];
        var buf = Alloc(2048);
        var head = rx.AddChain((buf, 2048, true));
        rx.Publish(head);
        Kick(0);
        // The thread takes the buffer and holds it for the next frame.
        WaitFor(() => q.LastAvailIndex == 1, "the packet thread took the receive buffer");

        Assert.True(_dev.Net.StopQueue(0));
        Assert.Equal(0, q.LastAvailIndex);                             // given back, not completed
        Assert.Equal(0, rx.UsedIdx);
        Assert.Equal(new VirtQueueRing(64, rx.Desc, rx.Avail, rx.Used, 0), q.Ring);
        var frame = Frame(200, 5);
        var datagram = new byte[12].Concat(frame).ToArray();
        _backend.Send(datagram);                                       // waits in the backend meanwhile

        Assert.True(_dev.Net.StartQueue(0));
        Assert.Equal([(head, (uint)datagram.Length)], rx.WaitUsed(1));
        Assert.Equal(frame, MockDriver.Bytes(_mem, buf + 12, 200));
    }

    [Fact]
    public void ARingRestoredElsewhereIsEnabledAtItsBase()
    {
        Negotiate(VirtioFeatures.Version1);
        var tx = Queue(1, 0x2_0000, VirtioPciLayout.NoVector);
        var q = _dev.Net.Queues[1];
        var ring = q.Ring!.Value;
        q.Reset();
        Assert.Null(q.Ring);
        Assert.True(_mem.TryWriteUInt16(tx.Used + 2, 7));
        Assert.True(q.TryRestoreRing(ring with { LastAvailIndex = 7 }));
        Assert.Equal(ring with { LastAvailIndex = 7 }, q.Ring);
        Assert.False(q.TryRestoreRing(ring with { Size = 3 }));        // not a power of two
        Assert.Null(q.Ring);
        Assert.False(q.TryRestoreRing(ring with { UsedRing = 0x40_0000 }));   // outside RAM
    }
}

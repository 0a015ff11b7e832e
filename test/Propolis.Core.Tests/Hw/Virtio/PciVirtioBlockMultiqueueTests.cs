using Propolis.Core.Block;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;
using static Propolis.Core.Hw.Virtio.VirtioBlockSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>VIRTIO_BLK_F_MQ (virtio 1.2 §5.2.2-§5.2.4) through the modern interface, as Linux's
/// virtio_blk sets up one request queue per vCPU: num_queues in the configuration space, the
/// feature negotiated or not, a doorbell and an MSI-X vector per queue.</summary>
public sealed class PciVirtioBlockMultiqueueTests : IDisposable
{
    private const ulong ModernBase = VirtioPciHarness.ModernBase;
    private const int Queues = 3;
    private const ushort QueueSize = 64;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000)]));
    private readonly VirtioPciHarness _h = new();
    private readonly FakeBlockBackend _backend = new(1 << 20);
    private readonly PciVirtioBlock _dev;

    public PciVirtioBlockMultiqueueTests()
    {
        _dev = new PciVirtioBlock(_mem, _backend, new VirtioBlockOptions { QueueSize = QueueSize, MaxChainDescriptors = 16, Serial = "mq-disk", NumQueues = Queues });
        _h.Attach(_dev, 4);
    }

    public void Dispose()
    {
        _dev.Dispose();
        _mem.Dispose();
    }

    private void W(ulong offset, int width, uint value) => _h.W(offset, width, value);

    private uint R(ulong offset, int width) => _h.R(offset, width);

    // Queue q's rings: descriptors, avail and used rings in their own 16 KiB.
    private static ulong Desc(int q) => 0x1_0000 + (ulong)q * 0x4000;
    private static ulong Avail(int q) => Desc(q) + 0x1000;
    private static ulong Used(int q) => Desc(q) + 0x2000;

    private ushort UsedIdx(int q) => _mem.TryReadUInt16(Used(q) + 2, out var v) ? v : (ushort)0xFFFF;

    /// <summary>MSI-X on, table entry v sends data 0x40 + v.</summary>
    private void EnableMsix()
    {
        _dev.ConfigWrite(_dev.Msix!.Offset + 2, [0x00, 0x80]);
        for (var v = 0; v < _dev.MsixVectors; v++)
        {
            _h.Msix32(16UL * (ulong)v, 0xFEE0_0000);
            _h.Msix32(16UL * (ulong)v + 8, 0x40u + (uint)v);
            _h.Msix32(16UL * (ulong)v + 12, 0);
        }
    }

    /// <summary>§3.1.1 through the common configuration (§4.1.4.3); the driver accepts
    /// VIRTIO_BLK_F_MQ when <paramref name="mq"/> and sets up <paramref name="queues"/> queues,
    /// queue q on vector q + 1 (the configuration change vector is 0).</summary>
    private void BringUp(bool mq, int queues)
    {
        W(0x14, 1, 0);
        W(0x14, 1, 1 | 2);
        W(0x00, 4, 0);
        var low = R(0x04, 4) & ~(uint)VirtioFeatures.RingEventIdx;
        if (!mq)
        {
            low &= ~(uint)FeatureMq;
        }
        W(0x08, 4, 0); W(0x0C, 4, low);
        W(0x08, 4, 1); W(0x0C, 4, 1);
        W(0x14, 1, 1 | 2 | 8);
        Assert.Equal(1u | 2 | 8, R(0x14, 1));                   // FEATURES_OK accepted
        W(0x10, 2, 0);                                          // config vector 0
        for (var q = 0; q < queues; q++)
        {
            W(0x16, 2, (uint)q);
            Assert.Equal(QueueSize, (ushort)R(0x18, 2));
            W(0x1A, 2, (uint)q + 1);
            Assert.Equal((uint)q + 1, R(0x1A, 2));
            W(0x20, 4, (uint)Desc(q)); W(0x24, 4, 0);
            W(0x28, 4, (uint)Avail(q)); W(0x2C, 4, 0);
            W(0x30, 4, (uint)Used(q)); W(0x34, 4, 0);
            W(0x1C, 2, 1);
            Assert.Equal((uint)q, R(0x1E, 2));                  // queue_notify_off
        }
        W(0x14, 1, 1 | 2 | 8 | 4);
    }

    /// <summary>A GET_ID request on queue <paramref name="q"/>, its serial written at 0x8_0000 + 0x1000 q.</summary>
    private ulong PublishGetId(int q, ushort availIdx)
    {
        ulong hdr = 0x7_0000 + 0x100UL * (ulong)q, data = 0x8_0000 + 0x1000UL * (ulong)q, st = 0x9_0000 + (ulong)q;
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeGetId, 0)));
        MockDriver.WriteDescriptor(_mem, Desc(q), 0, hdr, 16, DescriptorFlags.Next, 1);
        MockDriver.WriteDescriptor(_mem, Desc(q), 1, data, 20, DescriptorFlags.Next | DescriptorFlags.Write, 2);
        MockDriver.WriteDescriptor(_mem, Desc(q), 2, st, 1, DescriptorFlags.Write, 0);
        Assert.True(_mem.TryWriteUInt16(Avail(q) + 4 + 2UL * (ushort)(availIdx - 1) % QueueSize, 0));
        Assert.True(_mem.TryWriteUInt16(Avail(q) + 2, availIdx));
        return data;
    }

    /// <summary>The guest's write to queue <paramref name="q"/>'s notify address (trapped: the
    /// fake registrar does not deliver writes to its eventfds).</summary>
    private void Notify(int q) => W(0x3000 + 4UL * (ulong)q, 2, (uint)q);

    private static readonly byte[] SerialBytes = [.. "mq-disk"u8, .. new byte[13]];

    [Fact]
    public void ConfigSpaceOffersMqWithNumQueuesAndAVectorAndDoorbellPerQueue()
    {
        W(0x00, 4, 0);
        Assert.Equal((uint)FeatureMq, R(0x04, 4) & (uint)FeatureMq);
        Assert.Equal((ulong)Queues, R(0x2000 + Config.NumQueues, 2));    // virtio_blk_config.num_queues
        Assert.Equal((uint)Queues, R(0x12, 2));                          // common num_queues
        Assert.Equal(Queues + 1, _dev.MsixVectors);
        Assert.Equal(2 * Queues, _dev.IoEventDoorbells);                 // legacy and modern, per queue
        for (var q = 0; q < Queues; q++)
        {
            Assert.Contains((IoEventSpace.Mmio, ModernBase + 0x3000 + 4UL * (ulong)q, 2, (ulong?)null), _h.Registrar.Active);
            Assert.Contains((IoEventSpace.Port, (ulong)VirtioPciHarness.IoBase + 0x10, 2, (ulong?)(ulong)q), _h.Registrar.Active);
        }
        Assert.Equal((uint)Queues * 4, PciVirtioNetModernTests.VirtioCaps(_dev).Single(c => c.Type == VirtioPciLayout.CapNotifyCfg).Length);
    }

    [Fact]
    public void ASingleQueueDeviceOffersNoMqAndOneQueue()
    {
        using var dev = new PciVirtioBlock(_mem, new FakeBlockBackend(1 << 20), new VirtioBlockOptions { QueueSize = QueueSize, MaxChainDescriptors = 16 });
        Assert.Equal(0UL, dev.Block.DeviceFeatures & FeatureMq);
        Span<byte> n = stackalloc byte[2];
        dev.Block.ReadConfig(Config.NumQueues, n);
        Assert.Equal([1, 0], n.ToArray());
        Assert.Equal(2, dev.MsixVectors);
    }

    [Fact]
    public void WithMqARequestOnQueue1CompletesOnQueue1WithQueue1sVector()
    {
        EnableMsix();
        BringUp(mq: true, Queues);
        Assert.Equal(Queues, _dev.Block.UsableQueues);

        var data = PublishGetId(1, 1);
        Notify(1);
        Assert.Equal(1, UsedIdx(1));
        Assert.Equal(0, UsedIdx(0));
        Assert.Equal(0, UsedIdx(2));
        Assert.Equal(SerialBytes, MockDriver.Bytes(_mem, data, 20));
        Assert.Equal([(0xFEE0_0000UL, 0x42u)], _h.Sink.RouteSignals);    // vector 2 = queue 1's

        // Queue 2, then queue 0: each on its own ring and vector.
        PublishGetId(2, 1);
        Notify(2);
        PublishGetId(0, 1);
        Notify(0);
        Assert.Equal((1, 1, 1), (UsedIdx(0), UsedIdx(1), UsedIdx(2)));
        Assert.Equal([(0xFEE0_0000UL, 0x42u), (0xFEE0_0000UL, 0x43u), (0xFEE0_0000UL, 0x41u)], _h.Sink.RouteSignals);
    }

    [Fact]
    public void CompletionsOutOfOrderAcrossQueuesGoBackToTheQueueTheyCameFrom()
    {
        EnableMsix();
        BringUp(mq: true, Queues);
        _backend.Hold = true;
        // A 4 KiB read on each queue, same head (0) and same generation on every queue.
        var statuses = new ulong[Queues];
        for (var q = 0; q < Queues; q++)
        {
            ulong hdr = 0x7_0000 + 0x100UL * (ulong)q, buf = 0xA_0000 + 0x1000UL * (ulong)q, st = 0x9_0000 + (ulong)q;
            Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeIn, (ulong)q * 8)));
            MockDriver.WriteDescriptor(_mem, Desc(q), 0, hdr, 16, DescriptorFlags.Next, 1);
            MockDriver.WriteDescriptor(_mem, Desc(q), 1, buf, 4096, DescriptorFlags.Next | DescriptorFlags.Write, 2);
            MockDriver.WriteDescriptor(_mem, Desc(q), 2, st, 1, DescriptorFlags.Write, 0);
            Assert.True(_mem.TryWriteByte(st, 0xAA));
            Assert.True(_mem.TryWriteUInt16(Avail(q) + 4, 0));
            Assert.True(_mem.TryWriteUInt16(Avail(q) + 2, 1));
            statuses[q] = st;
            Notify(q);
        }
        Assert.Equal(Queues, _backend.Held.Count);
        Assert.Empty(_h.Sink.RouteSignals);
        // The backend finishes them last first.
        var held = _backend.Held.ToArray();
        _backend.Held.Clear();
        for (var i = held.Length - 1; i >= 0; i--)
        {
            _backend.Execute(held[i]);
        }
        for (var q = 0; q < Queues; q++)
        {
            Assert.Equal(1, UsedIdx(q));
            Assert.True(_mem.TryReadByte(statuses[q], out var s));
            Assert.Equal(StatusOk, s);
            Assert.True(_mem.TryReadUInt32(Used(q) + 8, out var len));
            Assert.Equal(4097u, len);
            Assert.Equal(_backend.Disk.AsSpan(q * 4096, 4096).ToArray(), MockDriver.Bytes(_mem, 0xA_0000 + 0x1000UL * (ulong)q, 4096));
        }
        Assert.Equal([(0xFEE0_0000UL, 0x43u), (0xFEE0_0000UL, 0x42u), (0xFEE0_0000UL, 0x41u)], _h.Sink.RouteSignals);
    }

    [Fact]
    public void WithoutMqOnlyQueue0IsServed()
    {
        EnableMsix();
        BringUp(mq: false, 2);
        Assert.Equal(0UL, _dev.Transport.DriverFeatures & FeatureMq);
        Assert.Equal(1, _dev.Block.UsableQueues);

        PublishGetId(1, 1);
        Notify(1);
        Assert.Equal(0, UsedIdx(1));
        Assert.Empty(_h.Sink.RouteSignals);
        Assert.Empty(_backend.Log);

        var data = PublishGetId(0, 1);
        Notify(0);
        Assert.Equal(1, UsedIdx(0));
        Assert.Equal(SerialBytes, MockDriver.Bytes(_mem, data, 20));
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], _h.Sink.RouteSignals);
        Assert.Equal(DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk | DeviceStatus.DriverOk, _dev.Transport.Status);

        // A reset forgets the negotiation; a driver that takes MQ next gets every queue.
        W(0x14, 1, 0);
        Assert.Equal(1, _dev.Block.UsableQueues);
        BringUp(mq: true, Queues);
        Assert.Equal(Queues, _dev.Block.UsableQueues);
    }

    [Fact]
    public void ABadQueueIndexIsRefused()
    {
        EnableMsix();
        BringUp(mq: true, Queues);
        // Notify addresses past the last queue (still inside the BAR), the legacy port with a
        // queue number the device does not have, and the device's own entry point.
        W(0x3000 + 4UL * Queues, 2, Queues);
        W(0x3FFC, 2, 0xFFFF);
        _h.Pio.Write((ushort)(VirtioPciHarness.IoBase + 0x10), [Queues, 0]);
        _h.Pio.Write((ushort)(VirtioPciHarness.IoBase + 0x10), [0xFF, 0xFF]);
        _dev.Block.QueueNotify(-1);
        _dev.Block.QueueNotify(VirtioBlockSpec.MaxQueues);
        Assert.Empty(_h.Sink.RouteSignals);
        Assert.Empty(_backend.Log);
        Assert.Equal(DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk | DeviceStatus.DriverOk, _dev.Transport.Status);
        // Selecting such a queue shows no queue (size 0) and takes no vector or address.
        W(0x16, 2, Queues);
        Assert.Equal(0u, R(0x18, 2));
        W(0x1A, 2, 1);
        Assert.Equal(VirtioPciLayout.NoVector, (ushort)R(0x1A, 2));
        // The real queues still work.
        PublishGetId(2, 1);
        Notify(2);
        Assert.Equal(1, UsedIdx(2));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(VirtioBlockSpec.MaxQueues + 1)]
    public void NumQueuesOutsideItsRangeIsRejected(int queues)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new VirtioBlock(_mem, new FakeBlockBackend(1 << 20), new RecordingEvents(), new VirtioBlockOptions { NumQueues = queues }));
        Assert.Contains("num_queues", e.Message);
    }

    [Fact]
    public void Queue1NotifyAndCompletionAllocateNothing()
    {
        BringUp(mq: true, Queues);
        _backend.Record = false;
        var q = 1;
        for (var i = 0; i < 8; i++)
        {
            ulong hdr = 0x7_0000 + 0x20UL * (ulong)i, buf = 0xA_0000 + 0x1000UL * (ulong)i, st = 0x9_0000 + (ulong)i;
            Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(i % 2 == 0 ? TypeIn : TypeOut, (ulong)i * 8)));
            MockDriver.WriteDescriptor(_mem, Desc(q), 3 * i, hdr, 16, DescriptorFlags.Next, (ushort)(3 * i + 1));
            MockDriver.WriteDescriptor(_mem, Desc(q), 3 * i + 1, buf, 4096, DescriptorFlags.Next | (i % 2 == 0 ? DescriptorFlags.Write : 0), (ushort)(3 * i + 2));
            MockDriver.WriteDescriptor(_mem, Desc(q), 3 * i + 2, st, 1, DescriptorFlags.Write, 0);
        }
        ushort avail = 0;
        void Round()
        {
            for (var i = 0; i < 8; i++)
            {
                Assert.True(_mem.TryWriteUInt16(Avail(q) + 4 + 2UL * (ulong)(avail % QueueSize), (ushort)(3 * i)));
                avail++;
            }
            Assert.True(_mem.TryWriteUInt16(Avail(q) + 2, avail));
            _dev.Transport.NotifyQueue(q);
        }
        Assert.Equal(0, VirtioBlockTests.LeastAllocated(Round, 50));
        Assert.Equal(avail, UsedIdx(q));
        Assert.Equal(0, _dev.Block.Queues[q].MalformedChains);
    }
}

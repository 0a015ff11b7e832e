using System.Buffers.Binary;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using static Propolis.Core.Hw.Virtio.VirtioBlockSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

internal sealed class FakeInterrupts : IVirtioInterrupts
{
    public bool MsixEnabled { get; set; }
    public int MsixVectorCount { get; set; } = 4;
    public List<ushort> Sent { get; } = [];
    public bool Intx { get; private set; }
    public int IntxAssertions { get; private set; }

    public void SendMsix(ushort vector) { lock (Sent) { Sent.Add(vector); } }

    public void SetIntx(bool asserted)
    {
        if (asserted) { IntxAssertions++; }
        Intx = asserted;
    }
}

public sealed class VirtioPciTransportTests : IDisposable
{
    // Legacy registers (§4.1.4.8) and modern common configuration (§4.1.4.3) offsets, from the spec.
    private const int LHostFeatures = 0x00, LGuestFeatures = 0x04, LQueuePfn = 0x08, LQueueSize = 0x0C, LQueueSelect = 0x0E,
        LQueueNotify = 0x10, LStatus = 0x12, LIsr = 0x13, LConfigVector = 0x14, LQueueVector = 0x16;
    private const ulong CDevFeatSel = 0x00, CDevFeat = 0x04, CDrvFeatSel = 0x08, CDrvFeat = 0x0C, CConfigVector = 0x10, CNumQueues = 0x12,
        CStatus = 0x14, CQueueSelect = 0x16, CQueueSize = 0x18, CQueueVector = 0x1A, CQueueEnable = 0x1C, CQueueNotifyOff = 0x1E,
        CQueueDesc = 0x20, CQueueDriver = 0x28, CQueueDevice = 0x30;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000)]));
    private readonly FakeInterrupts _irq = new();
    private readonly FakeBlockBackend _backend = new(64 * 1024);
    private readonly VirtioPciTransport _t;

    public VirtioPciTransportTests()
    {
        _t = new VirtioPciTransport(events => new VirtioBlock(_mem, _backend, events, new VirtioBlockOptions { QueueSize = 256, Serial = "s" }), _irq);
    }

    public void Dispose() => _mem.Dispose();

    private uint LRead(int offset, int width)
    {
        Span<byte> b = stackalloc byte[width];
        _t.LegacyRead(offset, b);
        return width switch { 1 => b[0], 2 => BinaryPrimitives.ReadUInt16LittleEndian(b), _ => BinaryPrimitives.ReadUInt32LittleEndian(b) };
    }

    private void LWrite(int offset, int width, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _t.LegacyWrite(offset, b[..width]);
    }

    private ulong MRead(ulong offset, int width)
    {
        Span<byte> b = stackalloc byte[8];
        _t.ModernRead(offset, b[..width]);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private void MWrite(ulong offset, int width, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        _t.ModernWrite(offset, b[..width]);
    }

    private ulong ReadRequest(MockDriver d, ushort head)
    {
        var hdr = d.Alloc(16); var data = d.Alloc(512); var st = d.Alloc(1, 0xAA);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeIn, 1)));
        MockDriver.WriteDescriptor(_mem, MockDriver.DescAddress, head, hdr, 16, DescriptorFlags.Next, (ushort)(head + 1));
        MockDriver.WriteDescriptor(_mem, MockDriver.DescAddress, head + 1, data, 512, DescriptorFlags.Next | DescriptorFlags.Write, (ushort)(head + 2));
        MockDriver.WriteDescriptor(_mem, MockDriver.DescAddress, head + 2, st, 1, DescriptorFlags.Write, 0);
        return st;
    }

    [Fact]
    public void TransitionalBlockIdentity()
    {
        Assert.Equal(0x1001, VirtioPciLayout.TransitionalDeviceId(DeviceId));
        Assert.Equal(0x80, _t.LegacyBarSize);   // 0x18 + 0x3C = 0x54, rounded up to a power of two
    }

    [Fact]
    public void LegacyDriverBringUpAndOneRead()
    {
        // The sequence of Linux virtio_pci_legacy + virtio core.
        LWrite(LStatus, 1, 0);
        LWrite(LStatus, 1, 1);
        LWrite(LStatus, 1, 1 | 2);
        var host = LRead(LHostFeatures, 4);
        Assert.Equal((uint)_t.Device.DeviceFeatures, host);
        LWrite(LGuestFeatures, 4, host & ~(uint)VirtioFeatures.RingEventIdx);
        LWrite(LQueueSelect, 2, 0);
        Assert.Equal(256u, LRead(LQueueSize, 2));
        LWrite(LQueuePfn, 4, 0x10);   // ring at 64 KiB
        Assert.Equal(0x10u, LRead(LQueuePfn, 4));
        LWrite(LStatus, 1, 1 | 2 | 4);
        Assert.Equal((byte)(DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.DriverOk), (byte)LRead(LStatus, 1));
        Assert.Equal(64 * 1024 / 512UL, LRead(LegacyConfig(0), 4));   // capacity (low half) at 0x14 without MSI-X

        // Drive the legacy ring: desc at 0x10000, avail at 0x11000, used at 0x12000.
        var (desc, avail, used) = VirtQueue.LegacyLayout(0x10, 256);
        var data = 0x4_0000UL; var hdr = 0x3_0000UL; var st = 0x3_0100UL;
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeIn, 2)));
        MockDriver.WriteDescriptor(_mem, desc, 0, hdr, 16, DescriptorFlags.Next, 1);
        MockDriver.WriteDescriptor(_mem, desc, 1, data, 512, DescriptorFlags.Next | DescriptorFlags.Write, 2);
        MockDriver.WriteDescriptor(_mem, desc, 2, st, 1, DescriptorFlags.Write, 0);
        Assert.True(_mem.TryWriteUInt16(avail + 4, 0));
        Assert.True(_mem.TryWriteUInt16(avail + 2, 1));
        LWrite(LQueueNotify, 2, 0);

        Assert.True(_mem.TryReadUInt16(used + 2, out var usedIdx));
        Assert.Equal(1, usedIdx);
        Assert.True(_mem.TryReadByte(st, out var status));
        Assert.Equal(StatusOk, status);
        Assert.Equal(_backend.Disk.AsSpan(1024, 512).ToArray(), MockDriver.Bytes(_mem, data, 512));
        Assert.True(_irq.Intx);
        Assert.Equal(VirtioPciLayout.IsrQueue, (byte)LRead(LIsr, 1));
        Assert.False(_irq.Intx);                    // reading the ISR de-asserts INTx (§4.1.4.5)
        Assert.Equal(0u, LRead(LIsr, 1));
    }

    private int LegacyConfig(int offset) => (_irq.MsixEnabled ? 0x18 : 0x14) + offset;

    [Fact]
    public void LegacyMsixRegistersMoveTheDeviceConfig()
    {
        _irq.MsixEnabled = true;
        Assert.Equal(64 * 1024 / 512UL, LRead(0x18, 4));
        LWrite(LConfigVector, 2, 1);
        Assert.Equal(1u, LRead(LConfigVector, 2));
        LWrite(LQueueSelect, 2, 0);
        LWrite(LQueueVector, 2, 3);
        Assert.Equal(3u, LRead(LQueueVector, 2));
        LWrite(LQueueVector, 2, 9);   // beyond the table: NO_VECTOR (§4.1.5.1.2)
        Assert.Equal(0xFFFFu, LRead(LQueueVector, 2));
        _irq.MsixEnabled = false;
        Assert.Equal(64 * 1024 / 512UL, LRead(0x14, 4));
    }

    private MockDriver ModernBringUp(ushort size = 64, ulong featureMask = ulong.MaxValue)
    {
        MWrite(CStatus, 1, 0);
        MWrite(CStatus, 1, 1 | 2);
        MWrite(CDevFeatSel, 4, 0);
        var lo = MRead(CDevFeat, 4);
        MWrite(CDevFeatSel, 4, 1);
        var hi = MRead(CDevFeat, 4);
        var features = (lo | hi << 32) & featureMask;
        Assert.Equal(_t.Device.DeviceFeatures, lo | hi << 32);
        MWrite(CDrvFeatSel, 4, 0);
        MWrite(CDrvFeat, 4, (uint)features);
        MWrite(CDrvFeatSel, 4, 1);
        MWrite(CDrvFeat, 4, features >> 32);
        MWrite(CStatus, 1, 1 | 2 | 8);
        Assert.NotEqual(0UL, MRead(CStatus, 1) & 8);

        Assert.Equal(1UL, MRead(CNumQueues, 2));
        MWrite(CQueueSelect, 2, 0);
        Assert.Equal(256UL, MRead(CQueueSize, 2));
        MWrite(CQueueSize, 2, size);
        MWrite(CQueueDesc, 4, MockDriver.DescAddress);      // 32-bit halves, as Linux writes them
        MWrite(CQueueDesc + 4, 4, 0);
        MWrite(CQueueDriver, 8, MockDriver.AvailAddress);   // and one 8-byte access
        MWrite(CQueueDevice, 4, MockDriver.UsedAddress);
        MWrite(CQueueDevice + 4, 4, 0);
        _irq.MsixEnabled = true;
        MWrite(CConfigVector, 2, 0);
        MWrite(CQueueVector, 2, 1);
        MWrite(CQueueEnable, 2, 1);
        Assert.Equal(1UL, MRead(CQueueEnable, 2));
        Assert.Equal(0UL, MRead(CQueueNotifyOff, 2));
        MWrite(CStatus, 1, 1 | 2 | 8 | 4);
        return new MockDriver(_mem, size);
    }

    [Fact]
    public void ModernDriverBringUpReadsThroughTheNotifyRegion()
    {
        var d = ModernBringUp();
        Assert.Equal(MockDriver.AvailAddress, MRead(CQueueDriver, 8));
        Assert.Equal(MockDriver.DescAddress, MRead(CQueueDesc, 4));
        Assert.Equal(64UL, MRead(CQueueSize, 2));
        var st = ReadRequest(d, 0);
        d.Publish(0);
        MWrite(VirtioPciTransport.NotifyAddressOffset(0), 2, 0);
        Assert.True(_mem.TryReadByte(st, out var status));
        Assert.Equal(StatusOk, status);
        Assert.Equal([(ushort)1], _irq.Sent);   // the queue's MSI-X vector
        Assert.False(_irq.Intx);
        Assert.Equal(64 * 1024 / 512UL, MRead(VirtioPciLayout.DeviceOffset, 8));   // capacity through the device cfg region
    }

    [Fact]
    public void FeaturesOkIsRefusedForUnofferedBitsOrWithoutVersion1()
    {
        MWrite(CStatus, 1, 1 | 2);
        MWrite(CDrvFeatSel, 4, 1);
        MWrite(CDrvFeat, 4, 1);            // VERSION_1
        MWrite(CDrvFeatSel, 4, 0);
        MWrite(CDrvFeat, 4, 1u << 7);     // legacy SCSI bit: not offered
        MWrite(CStatus, 1, 1 | 2 | 8);
        Assert.Equal(0UL, MRead(CStatus, 1) & 8);
        MWrite(CStatus, 1, 1 | 2 | 8 | 4);
        Assert.Equal(0UL, MRead(CStatus, 1) & 4);   // no DRIVER_OK without FEATURES_OK

        MWrite(CStatus, 1, 0);
        MWrite(CStatus, 1, 1 | 2);
        MWrite(CDrvFeatSel, 4, 0);
        MWrite(CDrvFeat, 4, (uint)FeatureFlush);   // no VERSION_1
        MWrite(CStatus, 1, 1 | 2 | 8);
        Assert.Equal(0UL, MRead(CStatus, 1) & 8);
    }

    [Fact]
    public void StatusBitsAreOnlyClearedByReset()
    {
        var d = ModernBringUp();
        MWrite(CStatus, 1, 1);   // tries to clear DRIVER, FEATURES_OK, DRIVER_OK
        Assert.Equal(15UL, MRead(CStatus, 1));
        Assert.True(_t.Device.Queues[0].IsEnabled);
        MWrite(CStatus, 1, 0);
        Assert.Equal(0UL, MRead(CStatus, 1));
        Assert.False(_t.Device.Queues[0].IsEnabled);
        Assert.Equal(0UL, _t.DriverFeatures);
        Assert.Equal(256UL, MRead(CQueueSize, 2));
        Assert.Equal(0xFFFFUL, MRead(CQueueVector, 2));

        // After a reset, a notification does nothing until the driver is set up again.
        var st = ReadRequest(d, 0);
        d.Publish(0);
        _t.NotifyQueue(0);
        Assert.True(_mem.TryReadByte(st, out var status));
        Assert.Equal(0xAA, status);
    }

    [Fact]
    public void BuffersMadeAvailableBeforeDriverOkAreServedAtDriverOk()
    {
        MWrite(CStatus, 1, 1 | 2);
        MWrite(CDrvFeatSel, 4, 1);
        MWrite(CDrvFeat, 4, 1);
        MWrite(CStatus, 1, 1 | 2 | 8);
        MWrite(CQueueSize, 2, 64);
        MWrite(CQueueDesc, 8, MockDriver.DescAddress);
        MWrite(CQueueDriver, 8, MockDriver.AvailAddress);
        MWrite(CQueueDevice, 8, MockDriver.UsedAddress);
        MWrite(CQueueEnable, 2, 1);
        var d = new MockDriver(_mem, 64);
        var st = ReadRequest(d, 0);
        d.Publish(0);
        _t.NotifyQueue(0);
        Assert.True(_mem.TryReadByte(st, out var status));
        Assert.Equal(0xAA, status);   // not consumed before DRIVER_OK (§3.1.1)
        MWrite(CStatus, 1, 1 | 2 | 8 | 4);
        Assert.True(_mem.TryReadByte(st, out status));
        Assert.Equal(StatusOk, status);
        Assert.True(_irq.Intx);
        Assert.Equal(VirtioPciLayout.IsrQueue, (byte)MRead(VirtioPciLayout.IsrOffset, 1));
    }

    [Fact]
    public void BrokenRingSetsNeedsResetAndSendsAConfigInterrupt()
    {
        var d = ModernBringUp();
        d.Publish(300);   // head index beyond the queue size
        _t.NotifyQueue(0);
        Assert.NotEqual(0UL, MRead(CStatus, 1) & (ulong)DeviceStatus.DeviceNeedsReset);
        Assert.Equal([(ushort)0], _irq.Sent);   // config vector
        // Further notifications are ignored until the driver resets the device.
        _t.NotifyQueue(0);
        Assert.Single(_irq.Sent);
        MWrite(CStatus, 1, 0);
        Assert.Equal(0UL, MRead(CStatus, 1));
    }

    [Fact]
    public void EnablingRingsOutsideRamSetsNeedsReset()
    {
        MWrite(CStatus, 1, 1 | 2);
        MWrite(CQueueDesc, 8, 0x20_0000);   // past the end of RAM
        MWrite(CQueueEnable, 2, 1);
        Assert.Equal(0UL, MRead(CQueueEnable, 2));
        Assert.NotEqual(0UL, MRead(CStatus, 1) & (ulong)DeviceStatus.DeviceNeedsReset);
    }

    [Fact]
    public void OddWidthsAndUnknownOffsetsAreHarmless()
    {
        Assert.Equal(0UL, MRead(CDevFeat, 2));      // 2-byte read of a 4-byte register
        MWrite(CQueueSize, 4, 16);                  // wrong width: ignored
        Assert.Equal(256UL, MRead(CQueueSize, 2));
        Assert.Equal(0UL, MRead(0x37, 1));
        Assert.Equal(0UL, MRead(0x0FFF, 4));
        MWrite(VirtioPciLayout.NotifyOffset + 2, 2, 0);
        MWrite(VirtioPciLayout.NotifyOffset + 400, 2, 0);   // queue 100: no such queue
        MWrite(CQueueSelect, 2, 7);
        Assert.Equal(0UL, MRead(CQueueSize, 2));    // no such queue reads as size 0
        MWrite(CQueueEnable, 2, 1);
        Assert.Equal(0u, LRead(0x11, 1));
        Assert.Equal(0u, LRead(0x100, 4));
    }

    [Fact]
    public void CapabilityBytes()
    {
        Span<byte> c = stackalloc byte[20];
        Assert.Equal(16, VirtioPciLayout.EncodeCapability(VirtioPciLayout.CapCommonCfg, 4, 0, 0x38, c));
        Assert.Equal("09001001040000000000000038000000", Convert.ToHexString(c[..16]));
        Assert.Equal(20, VirtioPciLayout.EncodeCapability(VirtioPciLayout.CapNotifyCfg, 4, 0x3000, 0x1000, c));
        Assert.Equal("0900140204000000003000000010000004000000", Convert.ToHexString(c));
    }
}

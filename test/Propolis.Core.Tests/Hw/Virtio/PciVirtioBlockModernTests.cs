using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.TestDoubles;
using Propolis.Core.Vmm;
using static Propolis.Core.Hw.Virtio.VirtioBlockSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>The transitional function's modern interface (virtio 1.2 §4.1.4), its doorbell
/// ioeventfds and its irqfd MSI-X delivery, driven as Linux's virtio_pci_modern does.</summary>
public sealed class PciVirtioBlockModernTests : IDisposable
{
    private const ushort IoBase = VirtioPciHarness.IoBase;
    private const ulong ModernBase = VirtioPciHarness.ModernBase;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000)]));
    private readonly VirtioPciHarness _h = new();
    private readonly FakeBlockBackend _backend = new(1 << 20);
    private readonly PciVirtioBlock _dev;

    public PciVirtioBlockModernTests()
    {
        _dev = new PciVirtioBlock(_mem, _backend, new VirtioBlockOptions { QueueSize = 128, Serial = "modern-disk" });
        _h.Attach(_dev, 4);
    }

    public void Dispose()
    {
        _dev.Dispose();
        _mem.Dispose();
    }

    [Fact]
    public void CapabilitiesNameTheModernRegionsInBar4()
    {
        Assert.Equal(
        [
            (VirtioPciLayout.CapCommonCfg, (byte)4, 0x0000u, 0x38u),
            (VirtioPciLayout.CapNotifyCfg, (byte)4, 0x3000u, 4u),
            (VirtioPciLayout.CapIsrCfg, (byte)4, 0x1000u, 1u),
            (VirtioPciLayout.CapDeviceCfg, (byte)4, 0x2000u, (uint)Config.Size),
            (VirtioPciLayout.CapPciCfg, (byte)0, 0u, 0u),
        ], PciVirtioNetModernTests.VirtioCaps(_dev));
        Assert.Equal(0x4000UL, _dev.GetBar(4)!.Size);
        // The MSI-X capability is still in the chain.
        Assert.NotNull(_dev.Msix);
    }

    private void W(ulong offset, int width, uint value) => _h.W(offset, width, value);

    private uint R(ulong offset, int width) => _h.R(offset, width);

    private void Msix32(ulong offset, uint value) => _h.Msix32(offset, value);

    private const ulong Desc = 0x1_0000, Avail = 0x1_1000, Used = 0x1_2000;

    /// <summary>§3.1.1 through the common configuration structure (§4.1.4.3).</summary>
    private void ModernBringUp()
    {
        W(0x14, 1, 0);
        W(0x14, 1, 1 | 2);
        W(0x00, 4, 1);
        Assert.Equal(1u, R(0x04, 4) & 1);                       // VIRTIO_F_VERSION_1 (bit 32)
        W(0x00, 4, 0);
        var low = R(0x04, 4);
        W(0x08, 4, 0); W(0x0C, 4, low & ~(uint)VirtioFeatures.RingEventIdx);
        W(0x08, 4, 1); W(0x0C, 4, 1);
        W(0x14, 1, 1 | 2 | 8);
        Assert.Equal(1u | 2 | 8, R(0x14, 1));                   // FEATURES_OK accepted
        Assert.Equal(Config.Size > 0 ? (ulong)(1 << 20) / 512 : 0, R(0x2000, 4));   // capacity via the device cap
        W(0x16, 2, 0);
        Assert.Equal(128u, R(0x18, 2));
        W(0x1A, 2, 1);                                          // queue vector 1
        W(0x20, 4, (uint)Desc); W(0x24, 4, 0);
        W(0x28, 4, (uint)Avail); W(0x2C, 4, 0);
        W(0x30, 4, (uint)Used); W(0x34, 4, 0);
        W(0x1C, 2, 1);
        Assert.Equal(0u, R(0x1E, 2));                           // queue_notify_off
        W(0x14, 1, 1 | 2 | 8 | 4);
    }

    private void PublishGetId(ushort availIdx)
    {
        ulong hdr = 0x4_0000, data = 0x4_1000, st = 0x4_2000;
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeGetId, 0)));
        MockDriver.WriteDescriptor(_mem, Desc, 0, hdr, 16, DescriptorFlags.Next, 1);
        MockDriver.WriteDescriptor(_mem, Desc, 1, data, 20, DescriptorFlags.Next | DescriptorFlags.Write, 2);
        MockDriver.WriteDescriptor(_mem, Desc, 2, st, 1, DescriptorFlags.Write, 0);
        Assert.True(_mem.TryWriteUInt16(Avail + 4 + 2UL * (ushort)(availIdx - 1) % 128, 0));
        Assert.True(_mem.TryWriteUInt16(Avail + 2, availIdx));
    }

    private ushort UsedIdx => _mem.TryReadUInt16(Used + 2, out var v) ? v : (ushort)0xFFFF;

    [Fact]
    public void ModernDriverServesARequestAndInterruptsThroughTheIrqfdRoute()
    {
        _dev.ConfigWrite(_dev.Msix!.Offset + 2, [0x00, 0x80]);
        Msix32(16, 0xFEE0_0000);
        Msix32(16 + 8, 0x41);
        Msix32(16 + 12, 0);
        ModernBringUp();

        PublishGetId(1);
        W(0x3000, 2, 0);    // trapped notify (the fake registrar does not deliver writes)

        Assert.Equal(1, UsedIdx);
        Assert.Equal("modern-disk"u8.ToArray().Concat(new byte[9]), MockDriver.Bytes(_mem, 0x4_1000, 20));
        // Delivered by the vector's route, not by a direct MSI.
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], _h.Sink.RouteSignals);
        Assert.Empty(_h.Sink.Direct);

        // The guest moves the vector: the next interrupt reprograms the route first.
        Msix32(16 + 8, 0x42);
        PublishGetId(2);
        W(0x3000, 2, 0);
        Assert.Equal(2, UsedIdx);
        Assert.Equal((0xFEE0_0000UL, 0x42u), _h.Sink.RouteSignals[^1]);
        Assert.Equal(1, _h.Sink.RoutesCreated);
    }

    [Fact]
    public void ThePciCfgWindowReachesTheModernBarThroughConfigSpace()
    {
        var at = (int)(_dev.ConfigReadDword(PciHeader.CapabilitiesPointer) & 0xFF);
        while ((_dev.ConfigReadDword(at) >> 24) != VirtioPciLayout.CapPciCfg || (_dev.ConfigReadDword(at) & 0xFF) != PciCapabilityId.VendorSpecific)
            at = (int)((_dev.ConfigReadDword(at) >> 8) & 0xFF);
        void Select(byte bar, uint offset, uint length)
        {
            _dev.ConfigWrite(at + 4, [bar]);
            _dev.ConfigWriteDword(at + 8, offset);
            _dev.ConfigWriteDword(at + 12, length);
        }

        // num_queues (common config 0x12, 16 bits) reads 1; device_status written through the window.
        Select(4, 0x12, 2);
        Assert.Equal(1u, _dev.ConfigReadDword(at + 16) & 0xFFFF);
        Select(4, 0x14, 1);
        _dev.ConfigWriteDword(at + 16, 1);
        Assert.Equal(DeviceStatus.Acknowledge, _dev.Transport.Status);
        Assert.Equal(1u, R(0x14, 1));
        // A misaligned, oversized or out-of-BAR selection reads zero and writes nothing.
        Select(4, 0x13, 2);
        Assert.Equal(0u, _dev.ConfigReadDword(at + 16));
        Select(4, 0x14, 3);
        _dev.ConfigWriteDword(at + 16, 0);
        Select(4, 0x4000, 4);
        Assert.Equal(0u, _dev.ConfigReadDword(at + 16));
        Assert.Equal(DeviceStatus.Acknowledge, _dev.Transport.Status);
        // The selection registers read back what was written.
        Assert.Equal(0x4000u, _dev.ConfigReadDword(at + 8));
    }

    [Fact]
    public void DoorbellsAreWatchedWhereTheBarsAreAndFollowThem()
    {
        Assert.Contains((IoEventSpace.Port, (ulong)IoBase + 0x10, 2, (ulong?)0), _h.Registrar.Active);
        Assert.Contains((IoEventSpace.Mmio, ModernBase + 0x3000, 2, (ulong?)null), _h.Registrar.Active);
        Assert.Equal(2, _dev.IoEventDoorbells);

        // Memory decoding off: the modern doorbell is no longer watched; the legacy one stays.
        _dev.ConfigWrite(PciHeader.Command, [(byte)(PciCommand.IoSpace | PciCommand.BusMaster), 0]);
        Assert.DoesNotContain(_h.Registrar.Active, a => a.Space == IoEventSpace.Mmio);
        Assert.Single(_h.Registrar.Active);

        // Moved and re-enabled: watched at the new address.
        _dev.ConfigWriteDword(PciHeader.Bar0 + 16, 0xC030_0000);
        _dev.ConfigWrite(PciHeader.Command, [(byte)(PciCommand.IoSpace | PciCommand.MemorySpace | PciCommand.BusMaster), 0]);
        Assert.Contains((IoEventSpace.Mmio, 0xC030_3000UL, 2, (ulong?)null), _h.Registrar.Active);
        Assert.Equal(2, _h.Registrar.Active.Count);
    }

    [Fact]
    public void AnIoEventFdSignalDrainsTheQueue()
    {
        ModernBringUp();
        PublishGetId(1);
        var fd = _h.Registrar.FdAt(IoEventSpace.Mmio, ModernBase + 0x3000);
        Assert.True(fd.Signal());   // what KVM does on the guest's notify write
        Assert.True(SpinWait.SpinUntil(() => UsedIdx == 1, TimeSpan.FromSeconds(30)));
        Assert.Equal("modern-disk"u8.ToArray().Concat(new byte[9]), MockDriver.Bytes(_mem, 0x4_1000, 20));
    }

    [Fact]
    public void WithoutARegistrarEveryDoorbellTraps()
    {
        var bus = new PciBus(new PortIoBus(), new MmioBus(), new FakeMsiSink());
        using var dev = new PciVirtioBlock(_mem, new FakeBlockBackend(1 << 20));
        bus.Attach(dev, 5, 0);
        dev.ConfigWriteDword(PciHeader.Bar0, 0xD000);
        dev.ConfigWrite(PciHeader.Command, [(byte)PciCommand.IoSpace, 0]);
        Assert.Equal(0, dev.IoEventDoorbells);
    }
}

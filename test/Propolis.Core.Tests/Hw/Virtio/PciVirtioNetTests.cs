using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>The PCI face of virtio-net, through the PCI bus and the legacy I/O BAR as a Linux
/// legacy virtio_pci driver sees it.</summary>
public sealed class PciVirtioNetTests : IDisposable
{
    private const ushort IoBase = 0xC000;
    private const ulong MsixBase = 0xC010_0000;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000)]));
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly SocketPairBackend _backend = new(queues: 2);
    private readonly PciVirtioNet _dev;

    public PciVirtioNetTests()
    {
        var bus = new PciBus(_pio, _mmio, new FakeMsiSink());
        _dev = new PciVirtioNet(_mem, _backend, new VirtioNetOptions { MaxQueuePairs = 2, RxQueueSize = 1024, Mac = [0x02, 1, 2, 3, 4, 5] });
        bus.Attach(_dev, 5, 0);
        _dev.ConfigWriteDword(PciHeader.Bar0, IoBase);
        _dev.ConfigWriteDword(PciHeader.Bar0 + 4, (uint)MsixBase);
        _dev.ConfigWrite(PciHeader.Command, [(byte)(PciCommand.IoSpace | PciCommand.MemorySpace | PciCommand.BusMaster), 0]);
    }

    public void Dispose()
    {
        _dev.Dispose();
        _backend.Dispose();
        _mem.Dispose();
    }

    private uint In(int offset, int width)
    {
        Span<byte> b = stackalloc byte[4];
        _pio.Read((ushort)(IoBase + offset), b[..width]);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private void Out(int offset, int width, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _pio.Write((ushort)(IoBase + offset), b[..width]);
    }

    [Fact]
    public void IdentityIsTheTransitionalNetworkDevice()
    {
        Assert.Equal(0x1000_1AF4u, _dev.ConfigReadDword(0x00));
        Assert.Equal(0x0001_1AF4u, _dev.ConfigReadDword(0x2C));   // subsystem id 1 (net), vendor 1af4
        Assert.Equal(0x0200_0000u, _dev.ConfigReadDword(0x08) & 0xFFFF_FF00);   // class 02 (network), subclass 00 (Ethernet)
        Assert.Equal(6, _dev.Msix!.Vectors);   // config + 2 pairs × (rx, tx) + control
    }

    [Fact]
    public void LegacyRegistersShowFeaturesQueuesAndTheMacInDeviceConfig()
    {
        var features = In(0x00, 4);
        Assert.NotEqual(0u, features & (1u << 5));    // MAC
        Assert.NotEqual(0u, features & (1u << 15));   // MRG_RXBUF
        Assert.NotEqual(0u, features & (1u << 22));   // MQ
        Out(0x0E, 2, 0);                               // queue 0: receiveq0
        Assert.Equal(1024u, In(0x0C, 2));
        Out(0x0E, 2, 1);                               // transmitq0
        Assert.Equal(256u, In(0x0C, 2));
        Out(0x0E, 2, 4);                               // controlq (2 × max_virtqueue_pairs)
        Assert.Equal(64u, In(0x0C, 2));
        Out(0x0E, 2, 5);                               // no such queue
        Assert.Equal(0u, In(0x0C, 2));
        // MSI-X disabled: device configuration at 0x14 (§4.1.4.8): mac, status, max_virtqueue_pairs.
        Assert.Equal(0x0302_0102u, In(0x14, 4));
        Assert.Equal(0x0504u, In(0x18, 2));
        Assert.Equal(1u, In(0x1A, 2));                 // VIRTIO_NET_S_LINK_UP
        Assert.Equal(2u, In(0x1C, 2));
    }
}

using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.TestDoubles;
using static Propolis.Core.Hw.Virtio.VirtioBlockSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

public sealed class PciVirtioBlockTests : IDisposable
{
    private const ushort IoBase = 0xC000;
    private const ulong MsixBase = 0xC010_0000;

    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000)]));
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly FakeMsiSink _sink = new();
    private readonly FakeBlockBackend _backend = new(1 << 20);
    private readonly PciVirtioBlock _dev;

    public PciVirtioBlockTests()
    {
        var bus = new PciBus(_pio, _mmio, _sink);
        _dev = new PciVirtioBlock(_mem, _backend, new VirtioBlockOptions { QueueSize = 128, Serial = "disk0" });
        bus.Attach(_dev, 4, 0);
        _dev.ConfigWriteDword(PciHeader.Bar0, IoBase);
        _dev.ConfigWriteDword(PciHeader.Bar0 + 4, (uint)MsixBase);
        _dev.ConfigWrite(PciHeader.Command, [(byte)(PciCommand.IoSpace | PciCommand.MemorySpace | PciCommand.BusMaster), 0]);
    }

    public void Dispose() => _mem.Dispose();

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

    private void Mmio32(ulong address, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _mmio.Write(address, b);
    }

    [Fact]
    public void IdentityIsTheTransitionalBlockDevice()
    {
        Assert.Equal(0x1001_1AF4u, _dev.ConfigReadDword(0x00));
        Assert.Equal(0x0002_1AF4u, _dev.ConfigReadDword(0x2C));   // subsystem id 2, subsystem vendor 1af4
        Assert.Equal(0x01u, _dev.ConfigReadDword(0x08) >> 24);     // mass storage
        Assert.Equal(0x80UL, _dev.GetBar(0)!.Size);
        Assert.NotNull(_dev.Msix);
    }

    [Fact]
    public void LegacyDriverOverIoPortsWithMsix()
    {
        // MSI-X on, vector 1 programmed (Linux enables MSI-X before it touches the queue vectors).
        _dev.ConfigWrite(_dev.Msix!.Offset + 2, [0x00, 0x80]);
        Mmio32(MsixBase + 16, 0xFEE0_0000);
        Mmio32(MsixBase + 16 + 8, 0x41);
        Mmio32(MsixBase + 16 + 12, 0);

        Out(0x12, 1, 0);
        Out(0x12, 1, 1 | 2);
        var host = In(0x00, 4);
        Out(0x04, 4, host & ~(uint)VirtioFeatures.RingEventIdx);
        Assert.Equal((ulong)(1 << 20) / 512, In(0x18, 4));   // capacity: config after the MSI-X vector registers
        Out(0x14, 2, 0);
        Assert.Equal(0u, In(0x14, 2));
        Out(0x0E, 2, 0);
        Out(0x16, 2, 1);
        Assert.Equal(1u, In(0x16, 2));
        Assert.Equal(128u, In(0x0C, 2));
        Out(0x08, 4, 0x10);
        Out(0x12, 1, 1 | 2 | 4);

        var (desc, avail, used) = VirtQueue.LegacyLayout(0x10, 128);
        ulong hdr = 0x4_0000, data = 0x4_1000, st = 0x4_2000;
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeGetId, 0)));
        MockDriver.WriteDescriptor(_mem, desc, 0, hdr, 16, DescriptorFlags.Next, 1);
        MockDriver.WriteDescriptor(_mem, desc, 1, data, 20, DescriptorFlags.Next | DescriptorFlags.Write, 2);
        MockDriver.WriteDescriptor(_mem, desc, 2, st, 1, DescriptorFlags.Write, 0);
        Assert.True(_mem.TryWriteUInt16(avail + 4, 0));
        Assert.True(_mem.TryWriteUInt16(avail + 2, 1));
        Out(0x10, 2, 0);

        Assert.True(_mem.TryReadUInt16(used + 2, out var usedIdx));
        Assert.Equal(1, usedIdx);
        Assert.Equal("disk0"u8.ToArray().Concat(new byte[15]), MockDriver.Bytes(_mem, data, 20));
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], _sink.Messages);

        // A PCI function reset resets the virtio device as well.
        _dev.Reset();
        Assert.Equal(DeviceStatus.Reset, _dev.Transport.Status);
        Assert.False(_dev.Block.Queues[0].IsEnabled);
    }

    [Fact]
    public void FunctionResetRacingRegisterAccessDoesNotDeadlock()
    {
        // PciDevice.Reset holds the function's lock and resets the transport; an ISR read or a
        // status write de-asserts INTx, which takes the function's lock: neither may hold the
        // transport's lock while waiting for the other.
        var start = new Barrier(2);
        var deadline = 0L;
        var resets = new Thread(() =>
        {
            start.SignalAndWait();
            while (Environment.TickCount64 < Volatile.Read(ref deadline)) { _dev.Reset(); }
        }) { IsBackground = true };
        var io = new Thread(() =>
        {
            Span<byte> b = stackalloc byte[1];
            start.SignalAndWait();
            while (Environment.TickCount64 < Volatile.Read(ref deadline))
            {
                _dev.Transport.LegacyRead(0x13, b);
                _dev.Transport.LegacyWrite(0x12, [0]);
                _dev.Transport.LegacyWrite(0x12, [1]);
            }
        }) { IsBackground = true };
        Volatile.Write(ref deadline, Environment.TickCount64 + 500);
        resets.Start();
        io.Start();
        Assert.True(resets.Join(TimeSpan.FromSeconds(20)));
        Assert.True(io.Join(TimeSpan.FromSeconds(20)));
    }
}

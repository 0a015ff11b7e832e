using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Nvme;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Nvme;

/// <summary>The controller behind its PCI function: BAR decoding, MSI-X delivery, function reset.</summary>
public sealed class NvmePciFunctionTests : IDisposable
{
    private const ulong Bar0 = 0xC000_0000, Bar4 = 0xC001_0000;
    private readonly GuestMemory _memory = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 4UL << 20)]));
    private readonly MmioBus _mmio = new();
    private readonly FakeMsiSink _sink = new();
    private readonly NvmePciFunction _f;

    public NvmePciFunctionTests()
    {
        var backend = new FakeBackend(1 << 20) { Memory = _memory };
        _f = new NvmePciFunction(_memory, backend, new NvmeControllerOptions { SerialNumber = "pci0" });
        new PciBus(new PortIoBus(), _mmio, _sink).Attach(_f, 4, 0);
        _f.ConfigWriteDword(0x10, (uint)Bar0);
        _f.ConfigWriteDword(0x14, 0);
        _f.ConfigWriteDword(0x20, (uint)Bar4);
        _f.ConfigWrite(PciHeader.Command, [(byte)PciCommand.MemorySpace, 0]);
    }

    public void Dispose() => _memory.Dispose();

    private void Write32(ulong a, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); _mmio.Write(a, b); }
    private void Write64(ulong a, ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); _mmio.Write(a, b); }
    private uint Read32(ulong a) { Span<byte> b = stackalloc byte[4]; _mmio.Read(a, b); return BinaryPrimitives.ReadUInt32LittleEndian(b); }

    [Fact]
    public void IdentityIsAnNvmeController()
    {
        var classDword = _f.ConfigReadDword(0x08);
        Assert.Equal(0x0108_0200u, classDword & 0xFFFF_FF00);
        Assert.Equal(0x01DEu, _f.ConfigReadDword(0x00) & 0xFFFF);
        Assert.Equal(17, _f.Msix!.Vectors);
    }

    [Fact]
    public void AdminCompletionArrivesAsMsixVectorZeroAndFunctionResetDisables()
    {
        Assert.Equal(0x0001_0400u, Read32(Bar0 + 0x08));
        // MSI-X: entry 0 unmasked, then enable.
        Write32(Bar4, 0xFEE0_0000);
        Write32(Bar4 + 4, 0);
        Write32(Bar4 + 8, 0x41);
        Write32(Bar4 + 12, 0);
        var cap = _f.Msix!.Offset;
        _f.ConfigWrite(cap + 2, [0, 0x80]);

        Write32(Bar0 + 0x24, 0x000F_000F);
        Write64(Bar0 + 0x28, 0x1_0000);
        Write64(Bar0 + 0x30, 0x2_0000);
        Write32(Bar0 + 0x14, (6u << 16) | (4u << 20) | 1);
        Assert.Equal(1u, Read32(Bar0 + 0x1C));

        var sqe = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(sqe, 0x06 | (9u << 16));
        BinaryPrimitives.WriteUInt64LittleEndian(sqe.AsSpan(24), 0x3_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(sqe.AsSpan(40), 1);
        Assert.True(_memory.TryWrite(0x1_0000, sqe));
        Write32(Bar0 + 0x1000, 1);

        Assert.True(_memory.TryReadUInt32(0x2_0000 + 12, out var dw3));
        Assert.Equal(9u | (1u << 16), dw3);
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], _sink.Messages);
        Assert.True(_memory.TryReadUInt16(0x3_0000, out var vid));
        Assert.Equal(0x01DE, vid);

        _f.Reset();
        Assert.Equal(0u, _f.Controller.ControllerStatus);
    }

    [Fact]
    public void IoDoorbellsAreWatchedOnlyWhileShadowDoorbellsAreOn()
    {
        var registrar = new CountingRegistrar();
        var memory = _memory;
        var backend = new FakeBackend(1 << 20) { Memory = memory };
        using var f = new NvmePciFunction(memory, backend, new NvmeControllerOptions { SerialNumber = "io0" });
        var mmio = new MmioBus();
        new PciBus(new PortIoBus(), mmio, _sink) { IoEvents = registrar }.Attach(f, 5, 0);
        const ulong bar = 0xD000_0000;
        f.ConfigWriteDword(0x10, (uint)bar);
        f.ConfigWrite(PciHeader.Command, [(byte)PciCommand.MemorySpace, 0]);
        Assert.Empty(registrar.Active);   // without shadow doorbells the written value matters: trap

        void W32(ulong a, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); mmio.Write(a, b); }
        void W64(ulong a, ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); mmio.Write(a, b); }
        W32(bar + 0x24, 0x000F_000F);
        W64(bar + 0x28, 0x1_0000);
        W64(bar + 0x30, 0x2_0000);
        W32(bar + 0x14, (6u << 16) | (4u << 20) | 1);
        var sqe = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(sqe, 0x7C | (5u << 16));
        BinaryPrimitives.WriteUInt64LittleEndian(sqe.AsSpan(24), 0x5_0000);
        BinaryPrimitives.WriteUInt64LittleEndian(sqe.AsSpan(32), 0x6_0000);
        Assert.True(memory.TryWrite(0x1_0000, sqe));
        W32(bar + 0x1000, 1);
        Assert.True(memory.TryReadUInt32(0x2_0000 + 12, out var dw3));
        Assert.Equal(0, (int)(dw3 >> 17));   // success

        // Queues 1..16, tail and head: 32 doorbells from BAR0 + 0x1008; the admin pair traps.
        Assert.Equal(32, f.IoEventDoorbells);
        Assert.Equal(Enumerable.Range(0, 32).Select(i => bar + 0x1008 + (ulong)i * 4), registrar.Active.Order());

        // Memory decode off: nothing is watched; controller reset: nothing either.
        f.ConfigWrite(PciHeader.Command, [0, 0]);
        Assert.Empty(registrar.Active);
        f.ConfigWrite(PciHeader.Command, [(byte)PciCommand.MemorySpace, 0]);
        Assert.Equal(32, registrar.Active.Count);
        f.Controller.Reset();
        Assert.Empty(registrar.Active);
    }

    private sealed class CountingRegistrar : Propolis.Core.Vmm.IIoEventRegistrar
    {
        public List<ulong> Active { get; } = [];

        public bool TryRegister(Propolis.Core.Vmm.EventFd eventFd, Propolis.Core.Vmm.IoEventSpace space, ulong address, int length, ulong? dataMatch)
        {
            Assert.Equal((Propolis.Core.Vmm.IoEventSpace.Mmio, 4, (ulong?)null), (space, length, dataMatch));
            Active.Add(address);
            return true;
        }

        public void Unregister(Propolis.Core.Vmm.EventFd eventFd, Propolis.Core.Vmm.IoEventSpace space, ulong address, int length, ulong? dataMatch) =>
            Assert.True(Active.Remove(address));
    }
}

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
}

using System.Buffers.Binary;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>What a transitional virtio function is attached to in a test: the buses, an MSI sink
/// with irqfd routes and an ioeventfd registrar; the function's BARs programmed (I/O at
/// <see cref="IoBase"/>, MSI-X at <see cref="MsixBase"/>, modern at <see cref="ModernBase"/>) with
/// decoding on; and the guest's accesses to the modern BAR and the MSI-X table.</summary>
internal sealed class VirtioPciHarness
{
    public const ushort IoBase = 0xC000;
    public const ulong MsixBase = 0xC010_0000;
    public const ulong ModernBase = 0xC020_0000;

    public VirtioPciHarness() => Bus = new PciBus(Pio, Mmio, Sink) { IoEvents = Registrar };

    public PortIoBus Pio { get; } = new();
    public MmioBus Mmio { get; } = new();
    public RouteSink Sink { get; } = new();
    public FakeRegistrar Registrar { get; } = new();
    public PciBus Bus { get; }

    public T Attach<T>(T dev, byte slot) where T : PciDevice
    {
        Bus.Attach(dev, slot, 0);
        dev.ConfigWriteDword(PciHeader.Bar0, IoBase);
        dev.ConfigWriteDword(PciHeader.Bar0 + 4, (uint)MsixBase);
        dev.ConfigWriteDword(PciHeader.Bar0 + 16, (uint)ModernBase);
        dev.ConfigWrite(PciHeader.Command, [(byte)(PciCommand.IoSpace | PciCommand.MemorySpace | PciCommand.BusMaster), 0]);
        return dev;
    }

    /// <summary>A <paramref name="width"/>-byte write at <paramref name="offset"/> of the modern BAR.</summary>
    public void W(ulong offset, int width, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Mmio.Write(ModernBase + offset, b[..width]);
    }

    public uint R(ulong offset, int width)
    {
        Span<byte> b = stackalloc byte[4];
        Mmio.Read(ModernBase + offset, b[..width]);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>A dword write into the MSI-X table.</summary>
    public void Msix32(ulong offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Mmio.Write(MsixBase + offset, b);
    }
}

using Propolis.Core.Buses;

namespace Propolis.Core.Hw.Pci;

/// <summary>One Base Address Register: its kind and size (fixed by the device) and the address the
/// guest programmed (PCI Local Bus 3.0 §6.2.5.1).</summary>
public sealed class PciBar
{
    internal PciBar(PciDevice device, int index, PciBarKind kind, ulong size, bool prefetchable)
    {
        Index = index;
        Kind = kind;
        Size = size;
        Prefetchable = prefetchable;
        Window = new BarWindow(device, index);
    }

    public int Index { get; }
    public PciBarKind Kind { get; }
    public ulong Size { get; }
    public bool Prefetchable { get; }

    /// <summary>The programmed base address (bits below <see cref="Size"/> always zero).</summary>
    public ulong Address { get; internal set; }

    /// <summary>Where the BAR is decoded on the bus now, or null when it is not.</summary>
    public ulong? MappedAt { get; internal set; }

    internal BarWindow Window { get; }

    /// <summary>The low bits of the BAR register that encode its kind (§6.2.5.1).</summary>
    internal uint TypeBits => Kind switch
    {
        PciBarKind.Io => 0x1,
        PciBarKind.Memory32 => Prefetchable ? 0x8u : 0x0u,
        _ => Prefetchable ? 0xCu : 0x4u,
    };

    /// <summary>The bus handler for the BAR: forwards to the device with the BAR's number.</summary>
    internal sealed class BarWindow(PciDevice device, int index) : IPortIoHandler, IMmioHandler
    {
        public void PortRead(ushort offset, Span<byte> data) => device.DispatchBarRead(index, offset, data);
        public void PortWrite(ushort offset, ReadOnlySpan<byte> data) => device.DispatchBarWrite(index, offset, data);
        public void MmioRead(ulong offset, Span<byte> data) => device.DispatchBarRead(index, offset, data);
        public void MmioWrite(ulong offset, ReadOnlySpan<byte> data) => device.DispatchBarWrite(index, offset, data);
    }
}

using Propolis.Core.Hw.Pci;

namespace Propolis.Core.Tests.Hw.Pci;

/// <summary>A function with one of each BAR kind, MSI, MSI-X (table at BAR 2 + 0, PBA at BAR 2 +
/// 0x800) and INTx; BAR accesses outside the MSI-X structures are recorded.</summary>
internal sealed class TestFunction : PciDevice
{
    public const ushort Vendor = 0x1234, Device = 0x5678;

    public TestFunction(bool msix = true)
        : base(new PciIdentity(Vendor, Device, 0x01, 0x08, ProgIf: 0x02, Revision: 0x07, SubsystemVendorId: 0xAAAA, SubsystemId: 0xBBBB))
    {
        DefineBar(0, PciBarKind.Io, 0x40);
        DefineBar(1, PciBarKind.Memory32, 0x1000);
        DefineBar(2, PciBarKind.Memory64, 0x4000, prefetchable: true);
        UseIntx();
        AddMsi(4);
        if (msix)
            AddMsix(8, tableBar: 2, tableOffset: 0, pbaBar: 2, pbaOffset: 0x800);
    }

    public List<(int Bar, ulong Offset, int Length)> Reads { get; } = [];
    public List<(int Bar, ulong Offset, byte[] Data)> Writes { get; } = [];

    /// <summary>False for allocation measurements.</summary>
    public bool Record { get; set; } = true;

    protected override void BarRead(int bar, ulong offset, Span<byte> data)
    {
        if (Record)
            Reads.Add((bar, offset, data.Length));
        data.Fill((byte)(0x10 + bar));
    }

    protected override void BarWrite(int bar, ulong offset, ReadOnlySpan<byte> data) => Writes.Add((bar, offset, data.ToArray()));

    public void Intx(bool level) => SetIntx(level);
}

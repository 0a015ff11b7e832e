using Propolis.Core.Intr;

namespace Propolis.Core.Hw.Chipset;

/// <summary>The sixteen ISA interrupt lines, each a wired OR of every device driving it (PCI INTx
/// through the PIRQ links, the SCI, legacy devices). Sharing goes through one
/// <see cref="SharedIrqLine"/> per IRQ so that two devices on a line never hide each other.</summary>
public sealed class IsaIrqLines
{
    public const int Count = 16;

    private readonly Func<uint, IIrqLine> _lineForIrq;
    private readonly SharedIrqLine?[] _lines = new SharedIrqLine?[Count];
    private readonly Lock _lock = new();

    /// <param name="lineForIrq">The hypervisor's line for an ISA IRQ (e.g. <c>vm.GetIrqLine</c>).</param>
    public IsaIrqLines(Func<uint, IIrqLine> lineForIrq)
    {
        ArgumentNullException.ThrowIfNull(lineForIrq);
        _lineForIrq = lineForIrq;
    }

    /// <summary>The shared line for ISA IRQ <paramref name="irq"/> (0–15).</summary>
    public SharedIrqLine this[int irq]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)irq, (uint)Count, nameof(irq));
            lock (_lock)
                return _lines[irq] ??= new SharedIrqLine(_lineForIrq((uint)irq));
        }
    }

    /// <summary>A new input of the wired OR on ISA IRQ <paramref name="irq"/>.</summary>
    public IIrqLine AddSource(int irq) => this[irq].AddSource();
}

namespace Propolis.Core.Intr;

/// <summary>A legacy (ISA or PCI INTx) interrupt line into the interrupt controllers.</summary>
/// <remarks>Level-triggered users call <see cref="SetLevel"/> whenever their interrupt
/// condition changes; edge-triggered users call <see cref="Pulse"/>. Implementations are
/// thread-safe and cheap (one ioctl or irqfd write), and may be called from any thread.</remarks>
public interface IIrqLine
{
    /// <summary>The global system interrupt number this line drives.</summary>
    uint Gsi { get; }

    void SetLevel(bool asserted);

    /// <summary>Assert then deassert (an edge).</summary>
    void Pulse();
}

namespace Propolis.Core.Intr;

/// <summary>Several level-driven devices wired to one interrupt line (as COM1 and COM3 share
/// ISA IRQ 4): the line is asserted while any of them asserts it.</summary>
/// <remarks>Each device gets its own <see cref="IIrqLine"/> from <see cref="AddSource"/>.
/// Without this, one device deasserting would hide the other's pending interrupt.</remarks>
public sealed class SharedIrqLine
{
    private readonly Lock _lock = new();
    private readonly IIrqLine _line;
    private int _assertedCount;

    public SharedIrqLine(IIrqLine line)
    {
        ArgumentNullException.ThrowIfNull(line);
        _line = line;
    }

    public uint Gsi => _line.Gsi;

    /// <summary>A new input of the wired OR, initially deasserted.</summary>
    public IIrqLine AddSource() => new Source(this);

    private void Set(Source source, bool asserted)
    {
        lock (_lock)
        {
            if (source.Asserted == asserted)
                return;
            source.Asserted = asserted;
            int before = _assertedCount;
            _assertedCount += asserted ? 1 : -1;
            // The line's level must follow the OR in the order the changes happened, so the
            // (non-blocking) line update happens under the lock.
            if (before == 0 || _assertedCount == 0)
                _line.SetLevel(_assertedCount != 0);
        }
    }

    private void Pulse()
    {
        lock (_lock)
        {
            // An edge is only visible while no other source holds the line high.
            if (_assertedCount == 0)
                _line.Pulse();
        }
    }

    private sealed class Source(SharedIrqLine owner) : IIrqLine
    {
        public bool Asserted; // guarded by owner._lock

        public uint Gsi => owner.Gsi;

        public void SetLevel(bool asserted) => owner.Set(this, asserted);

        public void Pulse() => owner.Pulse();
    }
}

using Propolis.Core.Intr;

namespace Propolis.Standalone.Machine;

/// <summary>An interrupt line that outlives the hypervisor VM it drives: devices keep one for
/// their whole life, and a machine reset (which builds a new VM) points it at the new VM's line.
/// The level is kept and re-applied to the new target.</summary>
internal sealed class RetargetableIrqLine(uint gsi, IIrqLine target) : IIrqLine
{
    private readonly Lock _lock = new();
    private IIrqLine _target = target;
    private bool _asserted;

    public uint Gsi { get; } = gsi;

    public void SetLevel(bool asserted)
    {
        lock (_lock)
        {
            _asserted = asserted;
            _target.SetLevel(asserted);
        }
    }

    public void Pulse()
    {
        lock (_lock)
            _target.Pulse();
    }

    public void Retarget(IIrqLine target)
    {
        lock (_lock)
        {
            _target = target;
            if (_asserted)
                _target.SetLevel(true);
        }
    }
}

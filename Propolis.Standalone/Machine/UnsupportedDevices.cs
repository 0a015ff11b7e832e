using Propolis.Standalone.Spec;

namespace Propolis.Standalone.Machine;

/// <summary>What a valid configuration may ask for that this build cannot run yet. Checked
/// before anything starts: a device the machine cannot build is an error, never left out.</summary>
internal static class UnsupportedDevices
{
    /// <summary>One message per thing this build cannot run, naming it; empty when it can run the spec.</summary>
    public static IReadOnlyList<string> Find(MachineSpec spec)
    {
        var problems = new List<string>();
        if (spec.Board.Kernel is null && spec.Board.Bootrom is null)
        {
            problems.Add("[main] has neither kernel nor bootrom: nothing to boot");
        }
        foreach (var slot in spec.PciSlots)
        {
            if (!PciDeviceFactory.IsSupported(slot.Device))
                problems.Add($"{PciDeviceFactory.Describe(slot.Device)} at pci-path {slot.Path}: this build does not support this device yet");
        }
        return problems;
    }
}

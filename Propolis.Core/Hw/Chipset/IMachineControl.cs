namespace Propolis.Core.Hw.Chipset;

/// <summary>Requests a device makes of the machine as a whole. The machine wiring implements it
/// (the lifecycle state machine decides when and how the request is carried out); devices call
/// it on a vCPU thread and must not expect the request to have been acted on when it returns.</summary>
public interface IMachineControl
{
    /// <summary>A guest-initiated platform reset (8042 pulse, 0xCF9, port 0x92 fast init).</summary>
    void RequestReset(string reason);

    /// <summary>A guest-initiated power-off (ACPI S5).</summary>
    void RequestPowerOff(string reason);
}

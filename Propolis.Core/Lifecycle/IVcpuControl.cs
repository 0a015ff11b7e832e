namespace Propolis.Core.Lifecycle;

/// <summary>What the <see cref="Instance"/> needs from the machine's vCPUs and the board they
/// sit on (memory, boot loader). Every method is called from the instance's driver thread.</summary>
public interface IVcpuControl
{
    /// <summary>Creates the vCPU threads, parked outside the guest.</summary>
    void Start();

    /// <summary>Lets every vCPU enter the guest.</summary>
    void Resume();

    /// <summary>Returns once every vCPU is outside the guest and parked.</summary>
    void Pause();

    /// <summary>While paused: puts the board back to its power-on state (guest memory, vCPU
    /// registers, interrupt controllers) and prepares the boot again (reloads the kernel), so
    /// that the next <see cref="Resume"/> boots the guest afresh.</summary>
    void Reset();

    /// <summary>Ends the vCPU threads. Nothing is called afterwards.</summary>
    void Stop();

    /// <summary>Asks every running vCPU whether it is halted with interrupts disabled; when all
    /// are, the machine reports <see cref="InstanceEventKind.GuestHalt"/>. Cheap (a kick per vCPU),
    /// called periodically while the instance runs.</summary>
    void ProbeHalted();
}

namespace Propolis.Core.Lifecycle;

/// <summary>The states of an <see cref="Instance"/> (propolis's instance states, without migration).</summary>
public enum InstanceState
{
    /// <summary>Built; nothing runs yet.</summary>
    Initialize,
    /// <summary>Devices started or resumed, vCPUs in the guest.</summary>
    Run,
    /// <summary>vCPUs parked and devices paused, on the way to <see cref="Reset"/> or <see cref="Halt"/>.</summary>
    Quiesce,
    /// <summary>Devices and board being reset; the instance then runs again.</summary>
    Reset,
    /// <summary>Stopped for good: devices halted, vCPU threads ended.</summary>
    Halt,
}

/// <summary>Why the instance has to change state.</summary>
public enum InstanceEventKind
{
    /// <summary>The host asked to stop (SIGINT, SIGTERM).</summary>
    HostStop,
    /// <summary>The guest powered off or halted for good (ACPI S5, or every vCPU halted with interrupts off).</summary>
    GuestHalt,
    /// <summary>The guest asked for a reset (keyboard controller, 0xCF9, hypervisor reset event).</summary>
    GuestReset,
    /// <summary>A vCPU triple-faulted: a PC resets.</summary>
    TripleFault,
    /// <summary>The hypervisor or a device failed (internal error, failed VM entry, an exception).</summary>
    Fatal,
}

/// <summary>An event for the instance; <see cref="Detail"/> is for people (logs).</summary>
public sealed record InstanceEvent(InstanceEventKind Kind, string Detail, int? VcpuId = null);

/// <summary>How the instance ended.</summary>
public enum InstanceOutcomeKind
{
    /// <summary>Stopped by the host.</summary>
    HostStopped,
    /// <summary>The guest powered off or halted.</summary>
    GuestHalted,
    /// <summary>The guest rebooted and the policy is to stop on reboot.</summary>
    GuestRebooted,
    /// <summary>A fatal error; <see cref="InstanceOutcome.Detail"/> says which.</summary>
    Failed,
}

/// <summary>The end of an instance's life.</summary>
public sealed record InstanceOutcome(InstanceOutcomeKind Kind, string Detail);

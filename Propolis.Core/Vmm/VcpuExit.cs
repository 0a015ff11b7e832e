namespace Propolis.Core.Vmm;

/// <summary>Why <see cref="IVcpu.Run"/> returned, in hypervisor-neutral terms.</summary>
public enum VcpuExitKind
{
    /// <summary>Guest IN: fill <see cref="VcpuExit.Data"/> (Count × Size bytes) before the next run.</summary>
    IoIn,
    /// <summary>Guest OUT: <see cref="VcpuExit.Data"/> holds Count × Size bytes.</summary>
    IoOut,
    /// <summary>Guest read of unbacked memory: fill <see cref="VcpuExit.Data"/>.</summary>
    MmioRead,
    MmioWrite,
    /// <summary>HLT with no interrupt controller in the hypervisor to wait for an interrupt.</summary>
    Halt,
    /// <summary>The guest triple-faulted (shutdown condition, Intel SDM Vol. 3A §6.15 #DF).</summary>
    TripleFault,
    /// <summary>The guest asked to power off (for example through PSCI or a hypervisor-emulated ACPI sleep).</summary>
    PowerOff,
    /// <summary>The guest asked for a reset handled inside the hypervisor.</summary>
    Reset,
    /// <summary>The guest reported a crash to the hypervisor.</summary>
    Crash,
    /// <summary>Run was interrupted by <see cref="IVcpu.Kick"/> (or a signal) before or while the guest ran.</summary>
    Interrupted,
    /// <summary>The hypervisor could not emulate or deliver something; <see cref="VcpuExit.Detail"/> says what.</summary>
    InternalError,
    /// <summary>VM entry failed (invalid guest state); <see cref="VcpuExit.HardwareReason"/> holds the hardware code.</summary>
    FailedEntry,
    /// <summary>An exit this VMM does not handle; <see cref="VcpuExit.HardwareReason"/> holds the raw reason.</summary>
    Unhandled,
    /// <summary>The run call itself failed with <see cref="VcpuExit.Errno"/>.</summary>
    RunFailed,
}

/// <summary>One exit from the guest. A ref struct: <see cref="Data"/> points into the vCPU's
/// shared run area and is valid only until the next <see cref="IVcpu.Run"/> on that vCPU.</summary>
public ref struct VcpuExit
{
    public VcpuExitKind Kind;

    /// <summary>I/O port (IoIn/IoOut).</summary>
    public ushort Port;

    /// <summary>Guest-physical address (MmioRead/MmioWrite).</summary>
    public ulong Address;

    /// <summary>Access width in bytes: 1, 2 or 4 for port I/O; 1–8 for MMIO.</summary>
    public int Size;

    /// <summary>Number of consecutive accesses (string I/O with REP); 1 otherwise.</summary>
    public int Count;

    /// <summary>The access's data, Count × Size bytes, little-endian.</summary>
    public Span<byte> Data;

    /// <summary>Hardware exit or entry-failure reason (FailedEntry, Unhandled).</summary>
    public ulong HardwareReason;

    /// <summary>Hypervisor-specific detail code (InternalError suberror).</summary>
    public uint Detail;

    /// <summary>errno of a failed run (RunFailed).</summary>
    public int Errno;
}

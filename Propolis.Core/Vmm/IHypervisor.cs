using Propolis.Core.Intr;
using Propolis.Core.Memory;

namespace Propolis.Core.Vmm;

/// <summary>A hardware virtualisation backend (KVM on Linux; bhyve's vmm could be another).</summary>
public interface IHypervisor : IDisposable
{
    /// <summary>Short name for logs ("kvm").</summary>
    string Name { get; }

    /// <summary>The largest number of vCPUs one VM may have.</summary>
    int MaxVcpus { get; }

    /// <summary>The CPUID leaves this host can present to a guest, before per-vCPU specialisation.</summary>
    IReadOnlyList<CpuidEntry> GetSupportedCpuid();

    /// <summary>Creates an x86 VM with the interrupt controllers (PIC, I/O APIC, local APICs)
    /// and PIT emulated by the hypervisor and the legacy GSI routes installed.</summary>
    IVm CreateVm();
}

/// <summary>Which address space an ioeventfd watches.</summary>
public enum IoEventSpace
{
    Port,
    Mmio,
}

/// <summary>One virtual machine: guest memory mappings, vCPUs and interrupt delivery.</summary>
public interface IVm : IDisposable
{
    /// <summary>Makes every RAM region of <paramref name="memory"/> guest-physical memory.
    /// The memory must outlive the VM.</summary>
    void MapMemory(GuestMemory memory);

    /// <summary>Maps <paramref name="size"/> bytes of host memory at <paramref name="hostAddress"/>
    /// read-only at guest-physical <paramref name="guestAddress"/> (a boot ROM): the guest reads
    /// them, and a guest write leaves the bytes alone and exits as an MMIO write. Page-aligned;
    /// must not overlap RAM; the host memory must outlive the VM.</summary>
    /// <exception cref="HypervisorException">The hypervisor cannot map read-only memory.</exception>
    void MapReadOnly(ulong guestAddress, nint hostAddress, ulong size);

    /// <summary>Creates vCPU <paramref name="id"/> (its APIC id). vCPU 0 is the bootstrap
    /// processor; the others wait for INIT/SIPI from the BSP.</summary>
    IVcpu CreateVcpu(int id);

    /// <summary>Drives GSI <paramref name="gsi"/> (I/O APIC pin, and PIC pin for 0–15) to a level.</summary>
    void SetIrqLine(uint gsi, bool asserted);

    /// <summary>An <see cref="IIrqLine"/> for a GSI, for devices to hold.</summary>
    IIrqLine GetIrqLine(uint gsi);

    /// <summary>Delivers one message-signalled interrupt (PCI Local Bus 3.0 §6.8). Returns
    /// false if the guest has it masked or no CPU accepted it.</summary>
    bool SignalMsi(ulong address, uint data);

    /// <summary>Allocates a GSI for an MSI route (used with <see cref="RegisterIrqFd"/>) and
    /// sets its message; update it with <see cref="SetMsiRoute"/> when the guest reprograms it.</summary>
    uint AllocateMsiRoute(ulong address, uint data);

    void SetMsiRoute(uint gsi, ulong address, uint data);

    /// <summary>Injects GSI <paramref name="gsi"/> whenever <paramref name="eventFd"/> is signalled
    /// (edge; for MSI routes and edge-triggered pins).</summary>
    void RegisterIrqFd(EventFd eventFd, uint gsi);

    void UnregisterIrqFd(EventFd eventFd, uint gsi);

    /// <summary>Signals <paramref name="eventFd"/> instead of exiting to userspace when the guest
    /// writes <paramref name="length"/> bytes at <paramref name="address"/> (optionally only
    /// when the value equals <paramref name="dataMatch"/>).</summary>
    void RegisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch);

    void UnregisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch);

    /// <summary>Puts the hypervisor's PICs, I/O APIC and PIT back in their power-on state
    /// (for a machine reset; call with every vCPU paused).</summary>
    void ResetInterruptControllers();
}

/// <summary>Multiprocessor state of a vCPU (KVM's mp_state; bhyve's run state).</summary>
public enum VcpuMpState
{
    Runnable,
    /// <summary>Waiting for INIT (an AP before the BSP starts it).</summary>
    Uninitialized,
    InitReceived,
    Halted,
    SipiReceived,
}

/// <summary>One virtual CPU. <see cref="Run"/> and the register accessors must be called from
/// the thread that called <see cref="BindToCurrentThread"/>; <see cref="Kick"/> from any thread.</summary>
public interface IVcpu : IDisposable
{
    int Id { get; }

    /// <summary>Makes the calling thread this vCPU's runner (so <see cref="Kick"/> can interrupt it).
    /// Call once, on the runner thread, before the first <see cref="Run"/>.</summary>
    void BindToCurrentThread();

    /// <summary>Enters the guest until it exits. Blocks; never throws for guest behaviour.</summary>
    VcpuExit Run();

    /// <summary>Makes a current or the next <see cref="Run"/> return <see cref="VcpuExitKind.Interrupted"/> promptly.</summary>
    void Kick();

    GeneralRegisters GetGeneralRegisters();

    void SetGeneralRegisters(in GeneralRegisters regs);

    SpecialRegisters GetSpecialRegisters();

    void SetSpecialRegisters(in SpecialRegisters sregs);

    void SetFpu(in FpuControl fpu);

    void SetCpuid(ReadOnlySpan<CpuidEntry> entries);

    void SetMsrs(ReadOnlySpan<MsrValue> msrs);

    /// <summary>Sets one MSR; false if the hypervisor does not implement it.</summary>
    bool TrySetMsr(uint index, ulong value);

    ulong GetMsr(uint index);

    VcpuMpState GetMpState();

    void SetMpState(VcpuMpState state);

    /// <summary>Programs the local APIC's LINT0 as ExtINT (the 8259 PIC's output) and LINT1 as
    /// NMI, as a PC BIOS leaves them (Intel MP Spec 1.4 §3.6.2.2, virtual wire mode).</summary>
    void ConfigureLocalApicVirtualWire();

    /// <summary>Records the vCPU's current architectural state (registers, FPU, local APIC,
    /// pending events, MP state) as the state <see cref="Reset"/> returns to.</summary>
    void SaveResetState();

    /// <summary>Returns to the state recorded by <see cref="SaveResetState"/>. Call on a paused vCPU.</summary>
    /// <exception cref="InvalidOperationException">No state was saved.</exception>
    void Reset();

    /// <summary>A human-readable dump of registers, for fatal-error reports.</summary>
    string DumpState();
}

namespace Propolis.Core.Vmm;

/// <summary>Puts a freshly created x86 vCPU into the state a PC leaves it in before an OS
/// loader runs: per-vCPU CPUID, the MSRs a Linux guest expects initialised, the local APIC in
/// virtual-wire mode, and — for application processors — waiting for INIT/SIPI.</summary>
public static class X86CpuSetup
{
    /// <summary>MSR values at hand-off (the set firecracker initialises for Linux guests):
    /// syscall/sysenter MSRs cleared, TSC at 0, fast strings on, MTRRs enabled with write-back
    /// as the default memory type (Intel SDM Vol. 3A §11.11.2.1).</summary>
    public static ReadOnlySpan<MsrValue> BootMsrs => s_bootMsrs;

    private static readonly MsrValue[] s_bootMsrs =
    [
        new(X86.MSR_IA32_SYSENTER_CS, 0),
        new(X86.MSR_IA32_SYSENTER_ESP, 0),
        new(X86.MSR_IA32_SYSENTER_EIP, 0),
        new(X86.MSR_STAR, 0),
        new(X86.MSR_CSTAR, 0),
        new(X86.MSR_KERNEL_GS_BASE, 0),
        new(X86.MSR_SYSCALL_MASK, 0),
        new(X86.MSR_LSTAR, 0),
        new(X86.MSR_IA32_TSC, 0),
        new(X86.MSR_IA32_MISC_ENABLE, X86.MISC_ENABLE_FAST_STRING),
        new(X86.MSR_MTRR_DEF_TYPE, X86.MTRR_DEF_TYPE_ENABLE | X86.MTRR_TYPE_WRITEBACK),
    ];

    /// <summary>Configures <paramref name="vcpu"/> as one of <paramref name="vcpuCount"/> vCPUs.
    /// The BSP (id 0) is left runnable for the loader to set its registers; APs are put in the
    /// wait-for-SIPI state.</summary>
    public static void Configure(IVcpu vcpu, ReadOnlySpan<CpuidEntry> supportedCpuid, int vcpuCount)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        vcpu.SetCpuid(CpuidSpecializer.ForVcpu(supportedCpuid, vcpu.Id, vcpuCount));
        vcpu.SetMsrs(BootMsrs);
        vcpu.SetFpu(FpuControl.Default);
        vcpu.ConfigureLocalApicVirtualWire();
        vcpu.SetMpState(vcpu.Id == 0 ? VcpuMpState.Runnable : VcpuMpState.Uninitialized);
        vcpu.SaveResetState();
    }

    /// <summary>KVM paravirtual MSRs whose value 0 means "off" (Documentation/virt/kvm/x86/msr.rst):
    /// kvmclock (both generations), async page faults, steal time and PV EOI. A guest that
    /// enabled them has KVM writing into its memory; a reset must stop that.</summary>
    private static readonly uint[] s_paravirtMsrsOffAtReset = [0x12, 0x4B56_4D01, 0x4B56_4D02, 0x4B56_4D03, 0x4B56_4D04];

    public static ReadOnlySpan<uint> ParavirtMsrsOffAtReset => s_paravirtMsrsOffAtReset;

    /// <summary>Returns a configured vCPU to its power-on state for a machine reset: the state
    /// saved by <see cref="Configure"/>, the boot MSRs, and the hypervisor's paravirtual MSRs
    /// switched off. Call with the vCPU paused; then load the OS again.</summary>
    public static void Reset(IVcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        vcpu.Reset();
        vcpu.SetMsrs(BootMsrs);
        foreach (var msr in s_paravirtMsrsOffAtReset)
        {
            // Not every hypervisor implements every one; an absent MSR needs no switching off.
            _ = vcpu.TrySetMsr(msr, 0);
        }
    }
}

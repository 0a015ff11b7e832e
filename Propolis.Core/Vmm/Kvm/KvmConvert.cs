using Propolis.Core.Interop;

namespace Propolis.Core.Vmm.Kvm;

/// <summary>Conversions between the neutral register types and KVM's structs.</summary>
internal static class KvmConvert
{
    public static CpuidEntry FromKvm(in kvm_cpuid_entry2 e) =>
        new(e.function, e.index, (e.flags & Interop.Interop.Kvm.KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0, e.eax, e.ebx, e.ecx, e.edx);

    public static kvm_cpuid_entry2 ToKvm(in CpuidEntry e) => new()
    {
        function = e.Function,
        index = e.Index,
        flags = e.IndexSignificant ? Interop.Interop.Kvm.KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
        eax = e.Eax,
        ebx = e.Ebx,
        ecx = e.Ecx,
        edx = e.Edx,
    };

    public static GeneralRegisters FromKvm(in kvm_regs r) => new()
    {
        Rax = r.rax, Rbx = r.rbx, Rcx = r.rcx, Rdx = r.rdx,
        Rsi = r.rsi, Rdi = r.rdi, Rsp = r.rsp, Rbp = r.rbp,
        R8 = r.r8, R9 = r.r9, R10 = r.r10, R11 = r.r11,
        R12 = r.r12, R13 = r.r13, R14 = r.r14, R15 = r.r15,
        Rip = r.rip, Rflags = r.rflags,
    };

    public static kvm_regs ToKvm(in GeneralRegisters r) => new()
    {
        rax = r.Rax, rbx = r.Rbx, rcx = r.Rcx, rdx = r.Rdx,
        rsi = r.Rsi, rdi = r.Rdi, rsp = r.Rsp, rbp = r.Rbp,
        r8 = r.R8, r9 = r.R9, r10 = r.R10, r11 = r.R11,
        r12 = r.R12, r13 = r.R13, r14 = r.R14, r15 = r.R15,
        rip = r.Rip, rflags = r.Rflags,
    };

    public static SegmentRegister FromKvm(in kvm_segment s) => new()
    {
        Base = s.@base,
        Limit = s.limit,
        Selector = s.selector,
        Type = s.type,
        Present = s.present != 0,
        Dpl = s.dpl,
        DefaultSize32 = s.db != 0,
        CodeOrData = s.s != 0,
        Long = s.l != 0,
        Granularity = s.g != 0,
        Available = s.avl != 0,
        Unusable = s.unusable != 0,
    };

    public static kvm_segment ToKvm(in SegmentRegister s) => new()
    {
        @base = s.Base,
        limit = s.Limit,
        selector = s.Selector,
        type = s.Type,
        present = B(s.Present),
        dpl = s.Dpl,
        db = B(s.DefaultSize32),
        s = B(s.CodeOrData),
        l = B(s.Long),
        g = B(s.Granularity),
        avl = B(s.Available),
        unusable = B(s.Unusable),
    };

    public static SpecialRegisters FromKvm(in kvm_sregs s) => new()
    {
        Cs = FromKvm(s.cs), Ds = FromKvm(s.ds), Es = FromKvm(s.es), Fs = FromKvm(s.fs),
        Gs = FromKvm(s.gs), Ss = FromKvm(s.ss), Tr = FromKvm(s.tr), Ldt = FromKvm(s.ldt),
        Gdt = new DescriptorTable { Base = s.gdt.@base, Limit = s.gdt.limit },
        Idt = new DescriptorTable { Base = s.idt.@base, Limit = s.idt.limit },
        Cr0 = s.cr0, Cr2 = s.cr2, Cr3 = s.cr3, Cr4 = s.cr4, Cr8 = s.cr8,
        Efer = s.efer,
        ApicBase = s.apic_base,
    };

    /// <summary>Copies the neutral registers over <paramref name="k"/>, leaving its
    /// interrupt_bitmap (pending external interrupt) as KVM reported it.</summary>
    public static void ToKvm(in SpecialRegisters s, ref kvm_sregs k)
    {
        k.cs = ToKvm(s.Cs); k.ds = ToKvm(s.Ds); k.es = ToKvm(s.Es); k.fs = ToKvm(s.Fs);
        k.gs = ToKvm(s.Gs); k.ss = ToKvm(s.Ss); k.tr = ToKvm(s.Tr); k.ldt = ToKvm(s.Ldt);
        k.gdt.@base = s.Gdt.Base; k.gdt.limit = s.Gdt.Limit;
        k.idt.@base = s.Idt.Base; k.idt.limit = s.Idt.Limit;
        k.cr0 = s.Cr0; k.cr2 = s.Cr2; k.cr3 = s.Cr3; k.cr4 = s.Cr4; k.cr8 = s.Cr8;
        k.efer = s.Efer;
        k.apic_base = s.ApicBase;
    }

    private static byte B(bool b) => b ? (byte)1 : (byte)0;
}

namespace Propolis.Core.Vmm;

/// <summary>x86-64 general-purpose registers, instruction pointer and flags.</summary>
public struct GeneralRegisters
{
    public ulong Rax, Rbx, Rcx, Rdx;
    public ulong Rsi, Rdi, Rsp, Rbp;
    public ulong R8, R9, R10, R11;
    public ulong R12, R13, R14, R15;
    public ulong Rip, Rflags;
}

/// <summary>A segment register with its hidden descriptor cache (Intel SDM Vol. 3A §3.4.3).</summary>
public struct SegmentRegister
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;
    /// <summary>Descriptor type field (bits 8–11 of the access rights).</summary>
    public byte Type;
    public bool Present;
    public byte Dpl;
    /// <summary>D/B: default operation size 32-bit.</summary>
    public bool DefaultSize32;
    /// <summary>S: code/data (true) or system (false) descriptor.</summary>
    public bool CodeOrData;
    /// <summary>L: 64-bit code segment.</summary>
    public bool Long;
    /// <summary>G: limit in 4 KiB units.</summary>
    public bool Granularity;
    public bool Available;
    public bool Unusable;

    public override readonly string ToString() =>
        $"sel={Selector:X4} base={Base:X16} limit={Limit:X8} type={Type:X} p={B(Present)} dpl={Dpl} db={B(DefaultSize32)} s={B(CodeOrData)} l={B(Long)} g={B(Granularity)}{(Unusable ? " unusable" : "")}";

    private static int B(bool b) => b ? 1 : 0;
}

/// <summary>GDTR or IDTR.</summary>
public struct DescriptorTable
{
    public ulong Base;
    public ushort Limit;
}

/// <summary>Segment, descriptor-table, control registers, EFER and the APIC base MSR.</summary>
public struct SpecialRegisters
{
    public SegmentRegister Cs, Ds, Es, Fs, Gs, Ss, Tr, Ldt;
    public DescriptorTable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8;
    public ulong Efer;
    public ulong ApicBase;
}

/// <summary>The legacy x87/SSE state a boot needs to set: control words and MXCSR.</summary>
public struct FpuControl
{
    public ushort Fcw;
    public uint Mxcsr;

    /// <summary>The reset values (FNINIT control word 0x37F; MXCSR 0x1F80, Intel SDM Vol. 1 §10.2.3.1).</summary>
    public static FpuControl Default => new() { Fcw = 0x37F, Mxcsr = 0x1F80 };
}

/// <summary>One model-specific register value.</summary>
public readonly record struct MsrValue(uint Index, ulong Value);

/// <summary>Architectural constants used when setting up x86 CPUs.</summary>
public static class X86
{
    public const ulong CR0_PE = 1UL << 0;
    public const ulong CR0_MP = 1UL << 1;
    public const ulong CR0_ET = 1UL << 4;
    public const ulong CR0_NE = 1UL << 5;
    public const ulong CR0_WP = 1UL << 16;
    public const ulong CR0_AM = 1UL << 18;
    public const ulong CR0_PG = 1UL << 31;
    public const ulong CR4_PAE = 1UL << 5;
    public const ulong EFER_SCE = 1UL << 0;
    public const ulong EFER_LME = 1UL << 8;
    public const ulong EFER_LMA = 1UL << 10;
    public const ulong RFLAGS_RESERVED1 = 1UL << 1;
    /// <summary>RFLAGS.IF: maskable interrupts enabled (Intel SDM Vol. 1 §3.4.3.3).</summary>
    public const ulong RFLAGS_IF = 1UL << 9;

    // MSR indices (Intel SDM Vol. 4, Table 2-2).
    public const uint MSR_IA32_TSC = 0x10;
    public const uint MSR_IA32_APICBASE = 0x1B;
    public const uint MSR_IA32_SYSENTER_CS = 0x174;
    public const uint MSR_IA32_SYSENTER_ESP = 0x175;
    public const uint MSR_IA32_SYSENTER_EIP = 0x176;
    public const uint MSR_IA32_MISC_ENABLE = 0x1A0;
    public const uint MSR_MTRR_DEF_TYPE = 0x2FF;
    public const uint MSR_STAR = 0xC000_0081;
    public const uint MSR_LSTAR = 0xC000_0082;
    public const uint MSR_CSTAR = 0xC000_0083;
    public const uint MSR_SYSCALL_MASK = 0xC000_0084;
    public const uint MSR_KERNEL_GS_BASE = 0xC000_0102;

    public const ulong MISC_ENABLE_FAST_STRING = 1;
    public const ulong MTRR_DEF_TYPE_ENABLE = 1UL << 11;
    public const ulong MTRR_TYPE_WRITEBACK = 6;
}

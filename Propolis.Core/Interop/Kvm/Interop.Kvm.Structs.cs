using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006 // field and type names mirror <linux/kvm.h> and <asm/kvm.h>

// Every struct here is blittable and pinned, field by field, against the kernel headers by
// test/Propolis.Core.Tests/Interop/KvmStructLayoutTests.cs (generated C, compiled with gcc).

/// <summary>The vCPU's shared page (<c>struct kvm_run</c>), mmapped from the vCPU descriptor.
/// Only the union members this VMM reads are declared; the union is 256 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 2352)]
internal unsafe struct kvm_run
{
    [FieldOffset(0)] public byte request_interrupt_window;
    [FieldOffset(1)] public byte immediate_exit;
    [FieldOffset(2)] public fixed byte padding1[6];
    [FieldOffset(8)] public uint exit_reason;
    [FieldOffset(12)] public byte ready_for_interrupt_injection;
    [FieldOffset(13)] public byte if_flag;
    [FieldOffset(14)] public ushort flags;
    [FieldOffset(16)] public ulong cr8;
    [FieldOffset(24)] public ulong apic_base;
    [FieldOffset(32)] public kvm_run_hw hw;
    [FieldOffset(32)] public kvm_run_fail_entry fail_entry;
    [FieldOffset(32)] public kvm_run_ex ex;
    [FieldOffset(32)] public kvm_run_io io;
    [FieldOffset(32)] public kvm_run_mmio mmio;
    [FieldOffset(32)] public kvm_run_internal @internal;
    [FieldOffset(32)] public kvm_run_system_event system_event;
    [FieldOffset(288)] public ulong kvm_valid_regs;
    [FieldOffset(296)] public ulong kvm_dirty_regs;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_hw
{
    public ulong hardware_exit_reason;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_fail_entry
{
    public ulong hardware_entry_failure_reason;
    public uint cpu;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_ex
{
    public uint exception;
    public uint error_code;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_io
{
    public byte direction;
    public byte size;
    public ushort port;
    public uint count;
    public ulong data_offset;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run_mmio
{
    public ulong phys_addr;
    public fixed byte data[8];
    public uint len;
    public byte is_write;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run_internal
{
    public uint suberror;
    public uint ndata;
    public fixed ulong data[16];
}

[StructLayout(LayoutKind.Explicit)]
internal unsafe struct kvm_run_system_event
{
    [FieldOffset(0)] public uint type;
    [FieldOffset(4)] public uint ndata;
    [FieldOffset(8)] public ulong flags;
    [FieldOffset(8)] public fixed ulong data[16];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_regs
{
    public ulong rax, rbx, rcx, rdx;
    public ulong rsi, rdi, rsp, rbp;
    public ulong r8, r9, r10, r11;
    public ulong r12, r13, r14, r15;
    public ulong rip, rflags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_segment
{
    public ulong @base;
    public uint limit;
    public ushort selector;
    public byte type;
    public byte present, dpl, db, s, l, g, avl;
    public byte unusable;
    public byte padding;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_dtable
{
    public ulong @base;
    public ushort limit;
    public fixed ushort padding[3];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_sregs
{
    public kvm_segment cs, ds, es, fs, gs, ss;
    public kvm_segment tr, ldt;
    public kvm_dtable gdt, idt;
    public ulong cr0, cr2, cr3, cr4, cr8;
    public ulong efer;
    public ulong apic_base;
    public fixed ulong interrupt_bitmap[(Interop.Kvm.KVM_NR_INTERRUPTS + 63) / 64];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_fpu
{
    public fixed byte fpr[8 * 16];
    public ushort fcw;
    public ushort fsw;
    public byte ftwx;
    public byte pad1;
    public ushort last_opcode;
    public ulong last_ip;
    public ulong last_dp;
    public fixed byte xmm[16 * 16];
    public uint mxcsr;
    public uint pad2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msr_entry
{
    public uint index;
    public uint reserved;
    public ulong data;
}

/// <summary>Header of a variable-length <c>kvm_msrs</c>; <c>nmsrs</c> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msrs
{
    public uint nmsrs;
    public uint pad;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_cpuid_entry2
{
    public uint function;
    public uint index;
    public uint flags;
    public uint eax;
    public uint ebx;
    public uint ecx;
    public uint edx;
    public fixed uint padding[3];
}

/// <summary>Header of a variable-length <c>kvm_cpuid2</c>; <c>nent</c> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_cpuid2
{
    public uint nent;
    public uint padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_userspace_memory_region
{
    public uint slot;
    public uint flags;
    public ulong guest_phys_addr;
    public ulong memory_size;
    public ulong userspace_addr;
}

[StructLayout(LayoutKind.Explicit)]
internal struct kvm_irq_level
{
    [FieldOffset(0)] public uint irq;
    [FieldOffset(0)] public int status;
    [FieldOffset(4)] public uint level;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_pit_config
{
    public uint flags;
    public fixed uint pad[15];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_irq_routing_irqchip
{
    public uint irqchip;
    public uint pin;
}

[StructLayout(LayoutKind.Explicit)]
internal struct kvm_irq_routing_msi
{
    [FieldOffset(0)] public uint address_lo;
    [FieldOffset(4)] public uint address_hi;
    [FieldOffset(8)] public uint data;
    [FieldOffset(12)] public uint pad;
    [FieldOffset(12)] public uint devid;
}

[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct kvm_irq_routing_entry_u
{
    [FieldOffset(0)] public kvm_irq_routing_irqchip irqchip;
    [FieldOffset(0)] public kvm_irq_routing_msi msi;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_irq_routing_entry
{
    public uint gsi;
    public uint type;
    public uint flags;
    public uint pad;
    public kvm_irq_routing_entry_u u;
}

/// <summary>Header of a variable-length <c>kvm_irq_routing</c>; <c>nr</c> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_irq_routing
{
    public uint nr;
    public uint flags;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_irqfd
{
    public uint fd;
    public uint gsi;
    public uint flags;
    public uint resamplefd;
    public fixed byte pad[16];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_ioeventfd
{
    public ulong datamatch;
    public ulong addr;
    public uint len;
    public int fd;
    public uint flags;
    public fixed byte pad[36];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_msi
{
    public uint address_lo;
    public uint address_hi;
    public uint data;
    public uint flags;
    public uint devid;
    public fixed byte pad[12];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_lapic_state
{
    public fixed byte regs[Interop.Kvm.KVM_APIC_REG_SIZE];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_mp_state
{
    public uint mp_state;
}

/// <summary>Header of a variable-length <c>kvm_signal_mask</c>; <c>len</c> bytes of kernel sigset follow.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_signal_mask
{
    public uint len;
}

/// <summary><c>struct kvm_irqchip</c>: the state of one in-kernel PIC or the I/O APIC, kept
/// opaque (the 512-byte union) because this VMM only saves and restores it.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_irqchip
{
    public uint chip_id;
    public uint pad;
    public fixed byte chip[512];
}

/// <summary><c>struct kvm_pit_state2</c>, with the three channel states kept opaque.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_pit_state2
{
    public fixed byte channels[3 * 24];
    public uint flags;
    public fixed uint reserved[9];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_vcpu_events_exception
{
    public byte injected;
    public byte nr;
    public byte has_error_code;
    public byte pending;
    public uint error_code;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_vcpu_events_interrupt
{
    public byte injected;
    public byte nr;
    public byte soft;
    public byte shadow;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_vcpu_events_nmi
{
    public byte injected;
    public byte pending;
    public byte masked;
    public byte pad;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_vcpu_events_smi
{
    public byte smm;
    public byte pending;
    public byte smm_inside_nmi;
    public byte latched_init;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_vcpu_events_triple_fault
{
    public byte pending;
}

/// <summary><c>struct kvm_vcpu_events</c>: pending and injected exceptions, interrupts, NMIs, SMIs.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_vcpu_events
{
    public kvm_vcpu_events_exception exception;
    public kvm_vcpu_events_interrupt interrupt;
    public kvm_vcpu_events_nmi nmi;
    public uint sipi_vector;
    public uint flags;
    public kvm_vcpu_events_smi smi;
    public kvm_vcpu_events_triple_fault triple_fault;
    public fixed byte reserved[26];
    public byte exception_has_payload;
    public ulong exception_payload;
}

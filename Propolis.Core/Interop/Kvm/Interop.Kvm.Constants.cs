namespace Propolis.Core.Interop;

#pragma warning disable IDE1006 // names mirror <linux/kvm.h> and <asm/kvm.h>

internal static partial class Interop
{
    internal static partial class Kvm
    {
        internal const int KVM_API_VERSION = 12;

        // KVM_CHECK_EXTENSION capabilities.
        internal const int KVM_CAP_IRQCHIP = 0;
        internal const int KVM_CAP_USER_MEMORY = 3;
        internal const int KVM_CAP_SET_TSS_ADDR = 4;
        internal const int KVM_CAP_EXT_CPUID = 7;
        internal const int KVM_CAP_NR_VCPUS = 9;
        internal const int KVM_CAP_MP_STATE = 14;
        internal const int KVM_CAP_IRQ_ROUTING = 25;
        internal const int KVM_CAP_IRQFD = 32;
        internal const int KVM_CAP_PIT2 = 33;
        internal const int KVM_CAP_IOEVENTFD = 36;
        internal const int KVM_CAP_SET_IDENTITY_MAP_ADDR = 37;
        internal const int KVM_CAP_MAX_VCPUS = 66;
        internal const int KVM_CAP_SIGNAL_MSI = 77;
        internal const int KVM_CAP_READONLY_MEM = 81;
        internal const int KVM_CAP_IMMEDIATE_EXIT = 136;
        internal const int KVM_CAP_VCPU_EVENTS = 41;

        // kvm_run.exit_reason
        internal const uint KVM_EXIT_UNKNOWN = 0;
        internal const uint KVM_EXIT_EXCEPTION = 1;
        internal const uint KVM_EXIT_IO = 2;
        internal const uint KVM_EXIT_HYPERCALL = 3;
        internal const uint KVM_EXIT_DEBUG = 4;
        internal const uint KVM_EXIT_HLT = 5;
        internal const uint KVM_EXIT_MMIO = 6;
        internal const uint KVM_EXIT_IRQ_WINDOW_OPEN = 7;
        internal const uint KVM_EXIT_SHUTDOWN = 8;
        internal const uint KVM_EXIT_FAIL_ENTRY = 9;
        internal const uint KVM_EXIT_INTR = 10;
        internal const uint KVM_EXIT_NMI = 16;
        internal const uint KVM_EXIT_INTERNAL_ERROR = 17;
        internal const uint KVM_EXIT_SYSTEM_EVENT = 24;
        internal const uint KVM_EXIT_IOAPIC_EOI = 26;

        internal const byte KVM_EXIT_IO_IN = 0;
        internal const byte KVM_EXIT_IO_OUT = 1;

        // kvm_run.internal.suberror
        internal const uint KVM_INTERNAL_ERROR_EMULATION = 1;
        internal const uint KVM_INTERNAL_ERROR_SIMUL_EX = 2;
        internal const uint KVM_INTERNAL_ERROR_DELIVERY_EV = 3;
        internal const uint KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4;

        // kvm_run.system_event.type
        internal const uint KVM_SYSTEM_EVENT_SHUTDOWN = 1;
        internal const uint KVM_SYSTEM_EVENT_RESET = 2;
        internal const uint KVM_SYSTEM_EVENT_CRASH = 3;

        // kvm_mp_state.mp_state
        internal const uint KVM_MP_STATE_RUNNABLE = 0;
        internal const uint KVM_MP_STATE_UNINITIALIZED = 1;
        internal const uint KVM_MP_STATE_INIT_RECEIVED = 2;
        internal const uint KVM_MP_STATE_HALTED = 3;
        internal const uint KVM_MP_STATE_SIPI_RECEIVED = 4;

        // kvm_userspace_memory_region.flags
        internal const uint KVM_MEM_LOG_DIRTY_PAGES = 1;
        internal const uint KVM_MEM_READONLY = 2;

        // kvm_pit_config.flags
        internal const uint KVM_PIT_SPEAKER_DUMMY = 1;

        // <asm/kvm.h> irqchip ids
        internal const uint KVM_IRQCHIP_PIC_MASTER = 0;
        internal const uint KVM_IRQCHIP_PIC_SLAVE = 1;
        internal const uint KVM_IRQCHIP_IOAPIC = 2;
        internal const int KVM_NR_INTERRUPTS = 256;
        internal const int KVM_APIC_REG_SIZE = 0x400;

        // kvm_irq_routing_entry.type
        internal const uint KVM_IRQ_ROUTING_IRQCHIP = 1;
        internal const uint KVM_IRQ_ROUTING_MSI = 2;

        // kvm_irqfd.flags
        internal const uint KVM_IRQFD_FLAG_DEASSIGN = 1;
        internal const uint KVM_IRQFD_FLAG_RESAMPLE = 2;

        // kvm_ioeventfd.flags
        internal const uint KVM_IOEVENTFD_FLAG_DATAMATCH = 1;
        internal const uint KVM_IOEVENTFD_FLAG_PIO = 2;
        internal const uint KVM_IOEVENTFD_FLAG_DEASSIGN = 4;

        // kvm_cpuid_entry2.flags
        internal const uint KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;
    }
}

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006 // names mirror <linux/kvm.h>

internal static partial class Interop
{
    /// <summary>KVM ioctl request numbers, computed as &lt;asm-generic/ioctl.h&gt; computes them.
    /// Names and (type, nr, argument) triples are copied from &lt;linux/kvm.h&gt;.</summary>
    internal static unsafe partial class Kvm
    {
        // <asm-generic/ioctl.h>
        private const int _IOC_NRSHIFT = 0;
        private const int _IOC_TYPESHIFT = 8;
        private const int _IOC_SIZESHIFT = 16;
        private const int _IOC_DIRSHIFT = 30;
        private const uint _IOC_NONE = 0;
        private const uint _IOC_WRITE = 1;
        private const uint _IOC_READ = 2;

        private static uint _IOC(uint dir, uint type, uint nr, int size) =>
            (dir << _IOC_DIRSHIFT) | (type << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | ((uint)size << _IOC_SIZESHIFT);

        private static uint _IO(uint type, uint nr) => _IOC(_IOC_NONE, type, nr, 0);

        private static uint _IOR(uint type, uint nr, int size) => _IOC(_IOC_READ, type, nr, size);

        private static uint _IOW(uint type, uint nr, int size) => _IOC(_IOC_WRITE, type, nr, size);

        private static uint _IOWR(uint type, uint nr, int size) => _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);

        internal const uint KVMIO = 0xAE;

        // System ioctls (on the /dev/kvm descriptor).
        internal static readonly uint KVM_GET_API_VERSION = _IO(KVMIO, 0x00);
        internal static readonly uint KVM_CREATE_VM = _IO(KVMIO, 0x01);
        internal static readonly uint KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03);
        internal static readonly uint KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04);
        internal static readonly uint KVM_GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, sizeof(kvm_cpuid2));

        // VM ioctls.
        internal static readonly uint KVM_CREATE_VCPU = _IO(KVMIO, 0x41);
        internal static readonly uint KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, sizeof(kvm_userspace_memory_region));
        internal static readonly uint KVM_SET_TSS_ADDR = _IO(KVMIO, 0x47);
        internal static readonly uint KVM_SET_IDENTITY_MAP_ADDR = _IOW(KVMIO, 0x48, sizeof(ulong));
        internal static readonly uint KVM_CREATE_IRQCHIP = _IO(KVMIO, 0x60);
        internal static readonly uint KVM_IRQ_LINE = _IOW(KVMIO, 0x61, sizeof(kvm_irq_level));
        internal static readonly uint KVM_GET_IRQCHIP = _IOWR(KVMIO, 0x62, sizeof(kvm_irqchip));
        internal static readonly uint KVM_SET_IRQCHIP = _IOR(KVMIO, 0x63, sizeof(kvm_irqchip)); // sic: _IOR in the kernel
        internal static readonly uint KVM_IRQ_LINE_STATUS = _IOWR(KVMIO, 0x67, sizeof(kvm_irq_level));
        internal static readonly uint KVM_SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, sizeof(kvm_irq_routing));
        internal static readonly uint KVM_IRQFD = _IOW(KVMIO, 0x76, sizeof(kvm_irqfd));
        internal static readonly uint KVM_CREATE_PIT2 = _IOW(KVMIO, 0x77, sizeof(kvm_pit_config));
        internal static readonly uint KVM_GET_PIT2 = _IOR(KVMIO, 0x9f, sizeof(kvm_pit_state2));
        internal static readonly uint KVM_SET_PIT2 = _IOW(KVMIO, 0xa0, sizeof(kvm_pit_state2));
        internal static readonly uint KVM_IOEVENTFD = _IOW(KVMIO, 0x79, sizeof(kvm_ioeventfd));
        internal static readonly uint KVM_SIGNAL_MSI = _IOW(KVMIO, 0xa5, sizeof(kvm_msi));

        // vCPU ioctls.
        internal static readonly uint KVM_RUN = _IO(KVMIO, 0x80);
        internal static readonly uint KVM_GET_REGS = _IOR(KVMIO, 0x81, sizeof(kvm_regs));
        internal static readonly uint KVM_SET_REGS = _IOW(KVMIO, 0x82, sizeof(kvm_regs));
        internal static readonly uint KVM_GET_SREGS = _IOR(KVMIO, 0x83, sizeof(kvm_sregs));
        internal static readonly uint KVM_SET_SREGS = _IOW(KVMIO, 0x84, sizeof(kvm_sregs));
        internal static readonly uint KVM_GET_MSRS = _IOWR(KVMIO, 0x88, sizeof(kvm_msrs));
        internal static readonly uint KVM_SET_MSRS = _IOW(KVMIO, 0x89, sizeof(kvm_msrs));
        internal static readonly uint KVM_SET_SIGNAL_MASK = _IOW(KVMIO, 0x8b, sizeof(kvm_signal_mask));
        internal static readonly uint KVM_GET_FPU = _IOR(KVMIO, 0x8c, sizeof(kvm_fpu));
        internal static readonly uint KVM_SET_FPU = _IOW(KVMIO, 0x8d, sizeof(kvm_fpu));
        internal static readonly uint KVM_GET_LAPIC = _IOR(KVMIO, 0x8e, sizeof(kvm_lapic_state));
        internal static readonly uint KVM_SET_LAPIC = _IOW(KVMIO, 0x8f, sizeof(kvm_lapic_state));
        internal static readonly uint KVM_SET_CPUID2 = _IOW(KVMIO, 0x90, sizeof(kvm_cpuid2));
        internal static readonly uint KVM_GET_CPUID2 = _IOWR(KVMIO, 0x91, sizeof(kvm_cpuid2));
        internal static readonly uint KVM_GET_MP_STATE = _IOR(KVMIO, 0x98, sizeof(kvm_mp_state));
        internal static readonly uint KVM_SET_MP_STATE = _IOW(KVMIO, 0x99, sizeof(kvm_mp_state));
        internal static readonly uint KVM_GET_VCPU_EVENTS = _IOR(KVMIO, 0x9f, sizeof(kvm_vcpu_events));
        internal static readonly uint KVM_SET_VCPU_EVENTS = _IOW(KVMIO, 0xa0, sizeof(kvm_vcpu_events));
    }
}

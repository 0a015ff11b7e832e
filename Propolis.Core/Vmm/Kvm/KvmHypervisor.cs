using System.Runtime.InteropServices;
using Propolis.Core.Interop;
using static Propolis.Core.Interop.Interop;
using K = Propolis.Core.Interop.Interop.Kvm;

namespace Propolis.Core.Vmm.Kvm;

/// <summary>KVM on Linux: the /dev/kvm system descriptor.</summary>
public sealed unsafe class KvmHypervisor : IHypervisor
{
    public const string DefaultDevicePath = "/dev/kvm";

    /// <summary>Capabilities every VM this VMM builds relies on, with the name to report if one is missing.</summary>
    private static readonly (int Cap, string Name)[] RequiredCapabilities =
    [
        (K.KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"),
        (K.KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"),
        (K.KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"),
        (K.KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"),
        (K.KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"),
        (K.KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"),
        (K.KVM_CAP_PIT2, "KVM_CAP_PIT2"),
        (K.KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"),
        (K.KVM_CAP_IRQFD, "KVM_CAP_IRQFD"),
        (K.KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"),
        (K.KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"),
        (K.KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"),
        (K.KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"),
    ];

    private readonly SafeFdHandle _kvm;

    private KvmHypervisor(SafeFdHandle kvm, int vcpuMmapSize, int maxVcpus)
    {
        _kvm = kvm;
        VcpuMmapSize = vcpuMmapSize;
        MaxVcpus = maxVcpus;
    }

    public string Name => "kvm";

    public int MaxVcpus { get; }

    internal int VcpuMmapSize { get; }

    internal SafeFdHandle Handle => _kvm;

    /// <summary>Opens /dev/kvm and checks the API version and the capabilities this VMM needs.</summary>
    /// <exception cref="HypervisorException">KVM is absent, inaccessible or too old; the message says what to do.</exception>
    public static KvmHypervisor Open(string devicePath = DefaultDevicePath)
    {
        var kvm = Sys.Open(devicePath, Sys.O_RDWR | Sys.O_CLOEXEC, 0);
        if (kvm.IsInvalid)
        {
            var errno = LastErrno;
            kvm.Dispose();
            throw new HypervisorException(OpenErrorMessage(devicePath, errno), new ErrnoException("open " + devicePath, errno));
        }
        try
        {
            var version = Sys.Ioctl(kvm, K.KVM_GET_API_VERSION, 0);
            if (version < 0)
            {
                var errno = LastErrno;
                throw new HypervisorException(
                    $"{devicePath} is not a KVM device (KVM_GET_API_VERSION failed: {Marshal.GetPInvokeErrorMessage(errno)})",
                    new ErrnoException("KVM_GET_API_VERSION", errno));
            }
            if (version != K.KVM_API_VERSION)
            {
                throw new HypervisorException(
                    $"{devicePath} reports KVM API version {version}; this VMM speaks version {K.KVM_API_VERSION} (every Linux since 2.6.22)");
            }
            var missing = RequiredCapabilities.Where(c => Sys.Ioctl(kvm, K.KVM_CHECK_EXTENSION, c.Cap) <= 0).Select(c => c.Name).ToList();
            if (missing.Count > 0)
            {
                throw new HypervisorException(
                    $"KVM on this host lacks {string.Join(", ", missing)}; use a Linux 4.11 or newer kernel with kvm_intel or kvm_amd loaded");
            }
            var mmapSize = CheckIo(Sys.Ioctl(kvm, K.KVM_GET_VCPU_MMAP_SIZE, 0), "KVM_GET_VCPU_MMAP_SIZE");
            if (mmapSize < sizeof(kvm_run))
            {
                throw new HypervisorException($"KVM_GET_VCPU_MMAP_SIZE returned {mmapSize}, smaller than struct kvm_run ({sizeof(kvm_run)})");
            }
            var maxVcpus = Sys.Ioctl(kvm, K.KVM_CHECK_EXTENSION, K.KVM_CAP_MAX_VCPUS);
            if (maxVcpus <= 0)
            {
                maxVcpus = Math.Max(4, Sys.Ioctl(kvm, K.KVM_CHECK_EXTENSION, K.KVM_CAP_NR_VCPUS));
            }
            return new KvmHypervisor(kvm, mmapSize, maxVcpus);
        }
        catch
        {
            kvm.Dispose();
            throw;
        }
    }

    /// <summary>The message for a failed open of the KVM device, by errno.</summary>
    public static string OpenErrorMessage(string devicePath, int errno) => (Errno)errno switch
    {
        Errno.ENOENT or Errno.ENODEV or Errno.ENXIO =>
            $"no {devicePath}: this machine has no hardware virtualisation exposed; run inside a VM with nested virtualisation, or use test/e2e/kvm-sandbox.sh",
        Errno.EACCES or Errno.EPERM =>
            $"permission denied on {devicePath}: add your user to the kvm group (sudo usermod -aG kvm $USER, then log in again)",
        _ => $"cannot open {devicePath}: {Marshal.GetPInvokeErrorMessage(errno)}",
    };

    public IReadOnlyList<CpuidEntry> GetSupportedCpuid()
    {
        for (var capacity = 128; capacity <= 4096; capacity *= 2)
        {
            var bytes = sizeof(kvm_cpuid2) + capacity * sizeof(kvm_cpuid_entry2);
            var buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
            try
            {
                var header = (kvm_cpuid2*)buffer;
                header->nent = (uint)capacity;
                if (Sys.Ioctl(_kvm, K.KVM_GET_SUPPORTED_CPUID, buffer) < 0)
                {
                    var errno = LastErrno;
                    if (errno == (int)Errno.E2BIG)
                    {
                        continue;
                    }
                    ThrowErrno("KVM_GET_SUPPORTED_CPUID", errno);
                }
                var entries = (kvm_cpuid_entry2*)(buffer + sizeof(kvm_cpuid2));
                var result = new CpuidEntry[header->nent];
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = KvmConvert.FromKvm(entries[i]);
                }
                return result;
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
        throw new HypervisorException("KVM_GET_SUPPORTED_CPUID reports more than 4096 CPUID entries");
    }

    public IVm CreateVm() => KvmVm.Create(this);

    public void Dispose() => _kvm.Dispose();
}

using System.Runtime.InteropServices;
using Propolis.Core.Interop;

namespace Propolis.Core.Vmm;

/// <summary>Host CPU placement of vCPU threads.</summary>
public static class HostCpus
{
    private const int MaxCpus = 1024; // the size of glibc's cpu_set_t

    /// <summary>The host CPU vCPU <paramref name="vcpu"/> of <paramref name="vcpuCount"/> is
    /// pinned to under propolis's "upper-half" binding: the last <paramref name="vcpuCount"/>
    /// of the <paramref name="hostCpus"/> CPUs, in order.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The host has fewer CPUs than vCPUs.</exception>
    public static int UpperHalf(int vcpu, int vcpuCount, int hostCpus)
    {
        if (vcpuCount > hostCpus)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), vcpuCount,
                $"cpu_binding = \"upper-half\" needs at least as many host CPUs as vCPUs; this host has {hostCpus}");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(vcpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(vcpu, vcpuCount);
        return hostCpus - vcpuCount + vcpu;
    }

    /// <summary>Pins the calling thread to host CPU <paramref name="cpu"/>.</summary>
    /// <exception cref="HypervisorException">The kernel refused (the CPU is offline or not allowed to this process).</exception>
    public static unsafe void PinCurrentThread(int cpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(cpu, MaxCpus);
        var mask = stackalloc ulong[MaxCpus / 64];
        new Span<ulong>(mask, MaxCpus / 64).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        if (Interop.Interop.Sys.SchedSetAffinity(0, MaxCpus / 8, mask) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new HypervisorException($"cannot pin a vCPU thread to host CPU {cpu}: {Marshal.GetPInvokeErrorMessage(errno)}",
                new ErrnoException("sched_setaffinity", errno));
        }
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Memory;

namespace Propolis.Core.Vmm;

/// <summary>The hypervisor-facing core of a machine, built in the order the hypervisor needs:
/// VM, guest RAM mapped into it, vCPUs with per-vCPU CPUID/MSRs/APIC (APs waiting for SIPI),
/// and empty port I/O and MMIO buses for devices to claim. Devices, the loader and the
/// lifecycle are added on top by whoever wires a machine.</summary>
public sealed class VmParts : IDisposable
{
    private VmParts(IVm vm, GuestMemory memory, IVcpu[] vcpus, PortIoBus pio, MmioBus mmio)
    {
        Vm = vm;
        Memory = memory;
        Vcpus = vcpus;
        PortIo = pio;
        Mmio = mmio;
    }

    public IVm Vm { get; }

    public GuestMemory Memory { get; }

    /// <summary>vCPU i has APIC id i; vCPU 0 is the BSP.</summary>
    public IReadOnlyList<IVcpu> Vcpus { get; }

    public PortIoBus PortIo { get; }

    public MmioBus Mmio { get; }

    /// <exception cref="HypervisorException">The hypervisor refused the VM, its memory or a vCPU.</exception>
    /// <exception cref="GuestMemoryException">The host could not reserve the guest memory.</exception>
    public static VmParts Create(IHypervisor hypervisor, ulong ramBytes, int vcpuCount, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(hypervisor);
        if (vcpuCount < 1 || vcpuCount > Math.Min(255, hypervisor.MaxVcpus))
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), vcpuCount,
                $"a VM has 1 to {Math.Min(255, hypervisor.MaxVcpus)} vCPUs on this host");
        }
        loggerFactory ??= NullLoggerFactory.Instance;
        var layout = MemoryLayout.ForRamSize(ramBytes);
        var cpuid = hypervisor.GetSupportedCpuid().ToArray();
        IVm? vm = null;
        GuestMemory? memory = null;
        var vcpus = new List<IVcpu>();
        try
        {
            vm = hypervisor.CreateVm();
            memory = GuestMemory.Allocate(layout);
            vm.MapMemory(memory);
            for (var id = 0; id < vcpuCount; id++)
            {
                var vcpu = vm.CreateVcpu(id);
                vcpus.Add(vcpu);
                X86CpuSetup.Configure(vcpu, cpuid, vcpuCount);
            }
            return new VmParts(vm, memory, [.. vcpus], new PortIoBus(loggerFactory.CreateLogger<PortIoBus>()),
                new MmioBus(loggerFactory.CreateLogger<MmioBus>()));
        }
        catch
        {
            foreach (var v in vcpus)
            {
                v.Dispose();
            }
            vm?.Dispose();
            memory?.Dispose();
            throw;
        }
    }

    /// <summary>A runner for this VM's vCPUs (started parked: call Start, then Resume).</summary>
    public VcpuRunner CreateRunner(IVcpuEventSink sink, ILoggerFactory? loggerFactory = null) =>
        new(Vcpus, PortIo, Mmio, sink, (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<VcpuRunner>());

    /// <summary>Power-on state again for the interrupt controllers, PIT and every vCPU (guest
    /// RAM and devices are the caller's). Pause the runner first; load the OS again after.</summary>
    public void ResetProcessorsAndInterruptControllers()
    {
        Vm.ResetInterruptControllers();
        foreach (var v in Vcpus)
        {
            X86CpuSetup.Reset(v);
        }
    }

    /// <summary>Releases vCPUs, then the VM, then guest memory. Stop the runner first.</summary>
    public void Dispose()
    {
        foreach (var v in Vcpus)
        {
            v.Dispose();
        }
        Vm.Dispose();
        Memory.Dispose();
    }
}

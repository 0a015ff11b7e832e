using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Pci;

/// <summary>Where a function's message-signalled interrupts go: a memory write of
/// <paramref name="data"/> to <paramref name="address"/> (PCI Local Bus 3.0 §6.8).</summary>
public interface IMsiSink
{
    /// <summary>Delivers one message; false if the hypervisor dropped it (e.g. a bad address).</summary>
    bool SignalMsi(ulong address, uint data);
}

/// <summary>Delivers MSIs through the hypervisor's MSI signalling (KVM_SIGNAL_MSI).</summary>
public sealed class VmMsiSink(IVm vm) : IMsiSink
{
    public bool SignalMsi(ulong address, uint data) => vm.SignalMsi(address, data);
}

/// <summary>An <see cref="IMsiSink"/> that can also hand out per-vector irqfd routes, so an
/// MSI-X vector is delivered by one eventfd write (no ioctl, no userspace exit on any vCPU).</summary>
public interface IMsiRouteSource
{
    IMsiRoute CreateMsiRoute();
}

/// <summary>MSIs through irqfd GSI routes (<see cref="HypervisorEvents"/>), falling back to
/// KVM_SIGNAL_MSI where a route cannot be made; follows the machine's VM across resets.</summary>
public sealed class IrqFdMsiSink(HypervisorEvents events) : IMsiSink, IMsiRouteSource
{
    public bool SignalMsi(ulong address, uint data) => events.Vm.SignalMsi(address, data);

    public IMsiRoute CreateMsiRoute() => events.CreateMsiRoute();
}

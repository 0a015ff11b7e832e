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

using Microsoft.Extensions.Logging;
using Propolis.Core.Boot;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Uart;
using Propolis.Core.Intr;
using Propolis.Core.Lifecycle;
using Propolis.Core.Vmm;
using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;
using CpuidEntry = Propolis.Core.Vmm.CpuidEntry;

namespace Propolis.Standalone.Machine;

/// <summary>A <see cref="MachineSpec"/> made real on a hypervisor: the VM with its RAM and
/// vCPUs (one "incarnation", rebuilt on every reset), and the devices, which live across
/// resets: COM1–COM4 and the keyboard controller's reset line. The kernel is loaded by direct
/// Linux boot. Implements the board side of the <see cref="Instance"/>.</summary>
/// <remarks>A reset builds a fresh hypervisor VM (memory zeroed, vCPUs at power-on, in-kernel
/// interrupt controllers and PIT new) rather than rewinding every piece of KVM state; devices
/// are re-registered on its buses and their interrupt lines pointed at it.</remarks>
internal sealed partial class KvmMachine : IVcpuControl, IDisposable
{
    private readonly IHypervisor _hypervisor;
    private readonly BoardSpec _board;
    private readonly byte[] _kernel;
    private readonly byte[] _initrd;
    private readonly CpuidEntry[] _cpuid;
    private readonly IVcpuEventSink _sink;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly List<(ushort Port, ushort Length, IPortIoHandler Handler, string Owner)> _portRegistrations = [];
    private readonly Dictionary<uint, RetargetableIrqLine> _irqLines = [];
    private VmParts _parts;
    private VcpuRunner? _runner;

    private KvmMachine(IHypervisor hypervisor, BoardSpec board, byte[] kernel, byte[] initrd, CpuidEntry[] cpuid,
        IVcpuEventSink sink, Action guestReset, ILoggerFactory loggerFactory)
    {
        _hypervisor = hypervisor;
        _board = board;
        _kernel = kernel;
        _initrd = initrd;
        _cpuid = cpuid;
        _sink = sink;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("machine");
        _parts = CreateParts();
        ComPorts = ComPorts.Create(RegisterPorts, irq => IrqLine(irq));
        RegisterPorts(KeyboardControllerResetPort.CommandPort, 1,
            new KeyboardControllerResetPort(guestReset),
            "i8042 reset line");
        LoadKernel();
    }

    public ComPorts ComPorts { get; }

    /// <summary>The devices, in start order, for the instance.</summary>
    public IReadOnlyList<ILifecycle> Devices => [new ComPortsLifecycle(ComPorts)];

    /// <summary>Builds the machine; the guest does not run until the instance starts it.</summary>
    /// <exception cref="MachineException">Something a person can fix (the message says what).</exception>
    /// <param name="sink">Receives the vCPUs' events.</param>
    /// <param name="guestReset">Called (on a vCPU thread) when the guest pulls the reset line.</param>
    public static KvmMachine Create(IHypervisor hypervisor, BoardSpec board, IVcpuEventSink sink, Action guestReset, ILoggerFactory loggerFactory)
    {
        var kernelSpec = board.Kernel ?? throw new MachineException("[main] has no kernel to boot");
        var kernel = ReadFile(kernelSpec.Kernel, "kernel");
        var initrd = kernelSpec.Initrd is { } i ? ReadFile(i, "initrd") : [];
        try
        {
            LinuxLoader.ValidateImage(kernel, kernelSpec.Kernel);
        }
        catch (KernelImageException e)
        {
            throw new MachineException($"[main] kernel: {e.Message}");
        }
        if (board.Cpus > hypervisor.MaxVcpus)
            throw new MachineException($"[main] cpus = {board.Cpus}, but KVM on this host allows at most {hypervisor.MaxVcpus} vCPUs per VM");
        if (board.CpuBinding == CpuBinding.UpperHalf && board.Cpus > Environment.ProcessorCount)
            throw new MachineException($"[main] cpu_binding = \"upper-half\" pins {board.Cpus} vCPUs to distinct host CPUs, but this process may use only {Environment.ProcessorCount}");

        var logger = loggerFactory.CreateLogger("machine");
        var cpuid = hypervisor.GetSupportedCpuid();
        if (board.Cpuid is { } profile)
        {
            if (CpuidProfile.VendorOf(cpuid) is { } hostVendor && hostVendor != profile.Vendor)
                LogVendorMismatch(logger, profile.Name, profile.Vendor, hostVendor);
            cpuid = CpuidProfile.Apply(cpuid, profile);
            LogProfile(logger, profile.Name, profile.Entries.Count);
        }
        try
        {
            return new KvmMachine(hypervisor, board, kernel, initrd, [.. cpuid], sink, guestReset, loggerFactory);
        }
        catch (KernelImageException e)
        {
            throw new MachineException($"[main] kernel: {e.Message}");
        }
        catch (Propolis.Core.Memory.GuestMemoryException e)
        {
            throw new MachineException($"[main] memory = {board.MemoryMiB}: {e.Message}");
        }
    }

    private static byte[] ReadFile(string path, string what)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MachineException($"[main] {what}: cannot read {path}: {Values.DescribeIoError(e)}");
        }
    }

    private VmParts CreateParts()
    {
        var parts = VmParts.Create(_hypervisor, (ulong)_board.MemoryBytes, _board.Cpus, _loggerFactory);
        try
        {
            if (_board.Cpuid is not null)
            {
                foreach (var vcpu in parts.Vcpus)
                    vcpu.SetCpuid(CpuidSpecializer.ForVcpu(_cpuid, vcpu.Id, _board.Cpus));
            }
            return parts;
        }
        catch
        {
            parts.Dispose();
            throw;
        }
    }

    private void RegisterPorts(ushort port, ushort length, IPortIoHandler handler, string owner)
    {
        _parts.PortIo.Register(port, length, handler, owner);
        _portRegistrations.Add((port, length, handler, owner));
    }

    private RetargetableIrqLine IrqLine(uint gsi)
    {
        if (!_irqLines.TryGetValue(gsi, out var line))
        {
            line = new RetargetableIrqLine(gsi, _parts.Vm.GetIrqLine(gsi));
            _irqLines.Add(gsi, line);
        }
        return line;
    }

    private void LoadKernel()
    {
        var spec = _board.Kernel!;
        var boot = LinuxLoader.Load(_parts.Memory, _kernel, spec.Kernel, _initrd, spec.Cmdline);
        boot.ApplyTo(_parts.Vcpus[0]);
        // Without firmware there is no ACPI MADT: the MP table is how the kernel finds the APs.
        var leaf1 = Array.Find(_cpuid, e => e.Function == CpuidSpecializer.LeafFeatures);
        MpTable.WriteTo(_parts.Memory, _board.Cpus, leaf1.Eax, leaf1.Edx);
        LogLoaded(_logger, spec.Kernel, boot.ProtocolVersion >> 8, boot.ProtocolVersion & 0xFF, _initrd.Length, spec.Cmdline);
    }

    private VcpuRunner CreateRunner()
    {
        var count = _board.Cpus;
        var host = Environment.ProcessorCount;
        Action<int>? pin = _board.CpuBinding == CpuBinding.UpperHalf
            ? index => HostCpus.PinCurrentThread(HostCpus.UpperHalf(index, count, host))
            : null;
        return new VcpuRunner(_parts.Vcpus, _parts.PortIo, _parts.Mmio, _sink, _loggerFactory.CreateLogger<VcpuRunner>())
        {
            ThreadStarted = pin,
        };
    }

    // ---- IVcpuControl ----------------------------------------------------------------------

    public void Start()
    {
        _runner = CreateRunner();
        _runner.Start();
    }

    public void Resume() => _runner?.Resume();

    public void Pause() => _runner?.Pause();

    public void ProbeHalted() => _runner?.RequestHaltProbe();

    public void Reset()
    {
        _runner?.Stop();
        _runner = null;
        var old = _parts;
        _parts = CreateParts();
        foreach (var (port, length, handler, owner) in _portRegistrations)
            _parts.PortIo.Register(port, length, handler, owner);
        foreach (var (gsi, line) in _irqLines)
            line.Retarget(_parts.Vm.GetIrqLine(gsi));
        old.Dispose();
        LoadKernel();
        _runner = CreateRunner();
        _runner.Start();
    }

    public void Stop()
    {
        _runner?.Stop();
        _runner = null;
    }

    public void Dispose()
    {
        Stop();
        _parts.Dispose();
    }

    /// <summary>COM1–COM4 as one lifecycle participant: a reset is a master reset of each UART.</summary>
    private sealed class ComPortsLifecycle(ComPorts ports) : ILifecycle
    {
        public string Name => "com1-4";

        public void Reset() => ports.Reset();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "loaded {Kernel} (boot protocol {Major}.{Minor:D2}), initrd {InitrdBytes} bytes, cmdline \"{Cmdline}\"")]
    private static partial void LogLoaded(ILogger logger, string kernel, int major, int minor, int initrdBytes, string cmdline);

    [LoggerMessage(Level = LogLevel.Information, Message = "CPUID profile {Name}: {Count} leaves override the host's")]
    private static partial void LogProfile(ILogger logger, string name, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "CPUID profile {Name} is for {ProfileVendor} CPUs but this host is {HostVendor}; the guest may misbehave")]
    private static partial void LogVendorMismatch(ILogger logger, string name, CpuVendor profileVendor, CpuVendor hostVendor);
}

/// <summary>The machine cannot be built for a reason a person can act on; the message says which and what to do.</summary>
internal sealed class MachineException(string message) : Exception(message);

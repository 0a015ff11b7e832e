using Microsoft.Extensions.Logging;
using Propolis.Core.Boot;
using Propolis.Core.Hw.Acpi;
using Propolis.Core.Hw.Chipset;
using Propolis.Core.Hw.FwCfg;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Hw.Rtc;
using Propolis.Core.Hw.Smbios;
using Propolis.Core.Hw.Uart;
using Propolis.Core.Lifecycle;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;
using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;
using CpuidEntry = Propolis.Core.Vmm.CpuidEntry;

namespace Propolis.Standalone.Machine;

/// <summary>A <see cref="MachineSpec"/> made real on a hypervisor: the VM with its RAM and vCPUs,
/// the i440FX/PIIX chipset with PCI bus 0 (configuration mechanism #1 and ECAM), the legacy ISA
/// devices KVM does not emulate (RTC/CMOS, 8042, QEMU debug port, pvpanic), COM1–COM4, and the
/// spec's PCI functions (built by <see cref="PciDeviceFactory"/>). Implements the board side of
/// the <see cref="Instance"/>.</summary>
/// <remarks>
/// <para>Boot: with <c>bootrom</c>, the firmware image is mapped read-only to end at 4 GiB and the
/// BSP starts at the reset vector; the firmware learns about the machine through fw_cfg (E820,
/// ACPI tables and table loader, SMBIOS, bootorder, and <c>kernel</c>/<c>initrd</c>/<c>cmdline</c>
/// as QEMU's -kernel items when given). A kernel given without firmware is loaded by direct Linux boot, with what firmware
/// would have left behind: PCI BARs and PIRQ routes assigned, an MP table, and the ACPI tables
/// (the same ones firmware gets through fw_cfg) placed in the BIOS area with the RSDP at
/// <see cref="DirectBootRsdpAddress"/>, so the kernel finds PCI and powers off through ACPI S5.</para>
/// <para>A reset keeps the VM and its memory: RAM is zeroed, the vCPUs and in-kernel interrupt
/// controllers return to their power-on state, the devices have been reset by the instance, and
/// the boot is prepared again. Devices therefore hold the VM and memory for the machine's life.</para>
/// </remarks>
internal sealed partial class KvmMachine : IVcpuControl, IDisposable
{
    /// <summary>Direct boot: the ACPI RSDP, on a 16-byte boundary of the BIOS area the kernel
    /// searches (0xE0000–0xFFFFF, ACPI 6.5 §5.2.5.1), reserved in the E820 map.</summary>
    public const ulong DirectBootRsdpAddress = MemoryLayout.BiosAreaBase;

    /// <summary>Direct boot: the ACPI tables, in the same reserved BIOS area.</summary>
    public const ulong DirectBootAcpiTablesAddress = MemoryLayout.BiosAreaBase + 0x1000;

    /// <summary>Where the QEMU debug port (0x402) writes, relative to the working directory.</summary>
    public const string DebugPortPath = "debug.out";

    private readonly MachineSpec _spec;
    private readonly BoardSpec _board;
    private readonly byte[] _kernel;
    private readonly byte[] _initrd;
    private readonly CpuidEntry[] _cpuid;
    private readonly IVcpuEventSink _sink;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly VmParts _parts;
    private readonly List<ILifecycle> _devices = [];
    private readonly I440FxChipset _chipset;
    private readonly LegacyIsaDevices _legacy;
    private readonly BootRom? _bootRom;
    private readonly HypervisorEvents _events;
    private VcpuRunner? _runner;

    private KvmMachine(IHypervisor hypervisor, MachineSpec spec, byte[]? bootRom, byte[] kernel, byte[] initrd, CpuidEntry[] cpuid,
        IVcpuEventSink sink, Action<InstanceEvent> post, ILoggerFactory loggerFactory)
    {
        _spec = spec;
        _board = spec.Board;
        _kernel = kernel;
        _initrd = initrd;
        _cpuid = cpuid;
        _sink = sink;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("machine");
        _parts = CreateParts(hypervisor);
        try
        {
            var control = new MachineControl(post);
            var pio = _parts.PortIo;
            var irqs = new IsaIrqLines(irq => _parts.Vm.GetIrqLine(irq));
            // MSIs through irqfd GSI routes and doorbells through ioeventfds (KVM_SIGNAL_MSI and
            // trapped writes where KVM refuses); the VM lives as long as the machine.
            _events = new HypervisorEvents(_parts.Vm, loggerFactory.CreateLogger("hypervisor-events"));
            var msi = new IrqFdMsiSink(_events);
            _chipset = I440FxChipset.Create(new I440FxOptions(EnableEcam: true), pio, _parts.Mmio, irqs, msi, control,
                loggerFactory: loggerFactory);
            _chipset.Bus.IoEvents = _events;
            _devices.Add(new CallbackLifecycle("i440fx", _chipset.Reset, _chipset.Dispose));
            try
            {
                _legacy = LegacyIsaDevices.Create(
                    new LegacyIsaOptions(RtcOptions.FromLayout(_parts.Memory.Layout, _board.Cpus), DebugPortPath,
                        PvPanic: spec.IsaDevices.Any(d => d is PvpanicSpec { Enabled: true })),
                    pio.Register, irqs, control, loggerFactory: loggerFactory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new MachineException($"cannot create the QEMU debug port file {Path.GetFullPath(DebugPortPath)}: {Values.DescribeIoError(e)}");
            }
            _devices.Add(new CallbackLifecycle("isa (rtc, i8042, debug port, pvpanic)", _legacy.Reset, _legacy.Dispose));
            ComPorts = ComPorts.Create(pio.Register, irq => irqs.AddSource(irq));
            _devices.Add(new CallbackLifecycle("com1-4", ComPorts.Reset, null));

            foreach (var slot in spec.PciSlots)
            {
                if (slot.Device.IsChipset)
                    continue;
                var parts = PciDeviceFactory.Create(new PciDeviceContext(slot, _parts.Memory, _parts.Vm, msi, loggerFactory) { CloudInit = spec.CloudInit, Board = _board });
                _chipset.AttachPci(parts.Function, slot.Path.Device, slot.Path.Function);
                _devices.Add(parts.Function as ILifecycle ?? new CallbackLifecycle(PciDeviceFactory.NameOf(slot.Device), parts.Function.Reset, null));
                _devices.AddRange(parts.Lifecycle);
            }
            if (bootRom is not null)
            {
                _bootRom = BootRom.Map(_parts.Vm, bootRom);
                var fwcfg = BuildFwCfg();
                fwcfg.Register(pio.Register);
                _devices.Add(new CallbackLifecycle("fw_cfg", fwcfg.Reset, null));
                LogFirmware(_logger, _board.Bootrom!.Path, _bootRom.ImageLength >> 10, _bootRom.Address,
                    _board.Kernel is { } k ? $"; kernel {k.Kernel} through fw_cfg" : "");
            }
            PrepareBoot();
        }
        catch
        {
            _bootRom?.Dispose();
            _events?.Dispose();
            _parts.Dispose();
            throw;
        }
    }

    public ComPorts ComPorts { get; }

    /// <summary>The devices, in start order, for the instance.</summary>
    public IReadOnlyList<ILifecycle> Devices => _devices;

    /// <summary>Builds the machine; the guest does not run until the instance starts it.</summary>
    /// <exception cref="MachineException">Something a person can fix (the message says what).</exception>
    /// <param name="sink">Receives the vCPUs' events.</param>
    /// <param name="post">Receives the chipset's requests (reset by 0xCF9, 0x92 or the 8042;
    /// power-off by ACPI S5), on a vCPU thread.</param>
    public static KvmMachine Create(IHypervisor hypervisor, MachineSpec spec, IVcpuEventSink sink, Action<InstanceEvent> post, ILoggerFactory loggerFactory)
    {
        var board = spec.Board;
        if (board.Kernel is null && board.Bootrom is null)
            throw new MachineException("[main] has neither kernel nor bootrom: nothing to boot");
        byte[]? rom = null;
        if (board.Bootrom is { } romSpec)
        {
            rom = ReadFile(romSpec.Path, "bootrom");
            try
            {
                BootRom.RegionFor(rom.Length);
            }
            catch (ArgumentOutOfRangeException)
            {
                throw new MachineException($"[main] bootrom: {romSpec.Path} is {rom.Length} bytes; a boot ROM is a non-empty multiple of 4 KiB, at most {MemoryLayout.BootRomMaxSize >> 20} MiB");
            }
        }
        byte[] kernel = [], initrd = [];
        if (board.Kernel is { } kernelSpec)
        {
            kernel = ReadFile(kernelSpec.Kernel, "kernel");
            initrd = kernelSpec.Initrd is { } i ? ReadFile(i, "initrd") : [];
            try
            {
                LinuxLoader.ValidateImage(kernel, kernelSpec.Kernel);
            }
            catch (KernelImageException e)
            {
                throw new MachineException($"[main] kernel: {e.Message}");
            }
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
            return new KvmMachine(hypervisor, spec, rom, kernel, initrd, [.. cpuid], sink, post, loggerFactory);
        }
        catch (KernelImageException e)
        {
            throw new MachineException($"[main] kernel: {e.Message}");
        }
        catch (GuestMemoryException e)
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

    private VmParts CreateParts(IHypervisor hypervisor)
    {
        var parts = VmParts.Create(hypervisor, (ulong)_board.MemoryBytes, _board.Cpus, _loggerFactory);
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

    /// <summary>What the ACPI tables describe: this machine's CPUs, chipset, PCI windows, the
    /// INTx pins of its PCI functions and its ISA devices.</summary>
    private AcpiPlatform DescribeForAcpi()
    {
        var layout = _parts.Memory.Layout;
        var slots = new Dictionary<byte, PciIntxPins>();
        foreach (var f in _chipset.Bus.AttachedFunctions)
        {
            if (f.InterruptPin == PciInterruptPin.None || f.Address is not { } a)
                continue;
            slots[a.Device] = slots.GetValueOrDefault(a.Device) | (PciIntxPins)(1 << ((int)f.InterruptPin - 1));
        }
        return new AcpiPlatform
        {
            CpuCount = _board.Cpus,
            Ecam = new AddressWindow(MemoryLayout.PcieEcamBase, MemoryLayout.PcieEcamSize),
            Pci32Window = Pci32Window(layout),
            Pci64Window = new AddressWindow(layout.Pci64MmioBase, Pci64WindowSize),
            PciSlots = [.. slots.OrderBy(s => s.Key).Select(s => new PciInterruptSlot(s.Key, s.Value))],
            SerialPorts = [.. ComPortLocation.Standard.Take(2).Select(c => new AcpiSerialPort(c.BasePort, c.Irq))],
            PvPanicPort = _legacy.PvPanic is null ? null : Propolis.Core.Hw.Misc.PvPanic.DefaultPort,
        };
    }

    /// <summary>The 32-bit PCI window the root bridge decodes: from the end of low RAM, but not
    /// below 2 GiB, up to the ECAM window. It holds both what <see cref="PciBus.AssignBars"/> assigns
    /// for a direct boot (from 0xC000_0000) and what OVMF assigns on an i440FX (bottom-up from
    /// max(top of low RAM, 2 GiB), OvmfPkg PlatformInitLib), and keeps clear of ECAM.</summary>
    private static AddressWindow Pci32Window(MemoryLayout layout)
    {
        var low = Math.Max(layout.LowRam.End, 2UL << 30);
        return new AddressWindow(low, MemoryLayout.PcieEcamBase - low);
    }

    /// <summary>The 64-bit PCI window above RAM that the root bridge decodes (64 GiB; it covers
    /// OVMF's default 32 GiB aperture at 32 GiB for guests below 32 GiB of RAM).</summary>
    private const ulong Pci64WindowSize = 1UL << 36;

    /// <summary>The fw_cfg device OVMF reads: see <see cref="FirmwareFwCfg.CreateBuilder"/>.</summary>
    private FwCfgDevice BuildFwCfg()
    {
        var layout = _parts.Memory.Layout;
        var leaf1 = Array.Find(_cpuid, e => e.Function == CpuidSpecializer.LeafFeatures);
        var inputs = new FirmwareInputs
        {
            CpuCount = _board.Cpus,
            Layout = layout,
            // As QEMU: KVM's identity map and TSS pages (target/i386/kvm/kvm.c).
            ReservedRanges = [(MemoryLayout.KvmIdentityMapAddress, 0x4000)],
            BootOrder = [.. _board.BootOrder.Select(BootOrderPathOf)],
            Acpi = DescribeForAcpi(),
            Smbios = new SmbiosPlatform
            {
                CpuCount = _board.Cpus,
                MemorySize = layout.RamSize,
                BiosVersion = _board.Bootrom?.Version ?? "",
                BiosRomSize = _bootRom!.Size,
                SystemProductName = _board.Name,
                ProcessorId = (ulong)leaf1.Edx << 32 | leaf1.Eax,
                ProcessorVersion = CpuidProfile.BrandString(_cpuid),
            },
            Kernel = _board.Kernel is { } k ? new DirectKernel(_kernel, _initrd, k.Cmdline) : null,
        };
        return FirmwareFwCfg.CreateBuilder(inputs).Build(_parts.Memory);
    }

    /// <summary>The OpenFirmware path OVMF's QemuBootOrderLib matches for a boot device.</summary>
    private static string BootOrderPathOf(BootDeviceSpec d) => d.Kind switch
    {
        BootDeviceKind.VirtioDisk => BootOrderPath.VirtioBlock(d.Path.Device, d.Path.Function),
        BootDeviceKind.Nvme => BootOrderPath.Nvme(d.Path.Device, d.Path.Function),
        _ => BootOrderPath.Pci(d.Path.Device, d.Path.Function),
    };

    /// <summary>Everything the boot needs in a freshly reset machine.</summary>
    private void PrepareBoot()
    {
        if (_bootRom is not null)
            return; // the BSP is at the reset vector; the firmware does the rest
        var memory = _parts.Memory;
        var spec = _board.Kernel!;
        // Without firmware, do what it would have done before handing over.
        _chipset.PrepareForDirectBoot(memory.Layout);
        var boot = LinuxLoader.Load(memory, _kernel, spec.Kernel, _initrd, spec.Cmdline);
        boot.ApplyTo(_parts.Vcpus[0]);
        // The MP table for kernels that ignore ACPI (acpi=off); the ACPI MADT takes precedence.
        var leaf1 = Array.Find(_cpuid, e => e.Function == CpuidSpecializer.LeafFeatures);
        MpTable.WriteTo(memory, _board.Cpus, leaf1.Eax, leaf1.Edx);
        var acpi = AcpiTables.Build(DescribeForAcpi());
        TableLoaderRunner.Run(acpi.TableLoader,
            new Dictionary<string, byte[]> { [AcpiTables.TablesFileName] = acpi.Tables, [AcpiTables.RsdpFileName] = acpi.Rsdp },
            PlaceForDirectBoot, memory);
        LogLoaded(_logger, spec.Kernel, boot.ProtocolVersion >> 8, boot.ProtocolVersion & 0xFF, _initrd.Length, spec.Cmdline);
    }

    private static ulong PlaceForDirectBoot(string file, uint alignment, TableLoaderZone zone, int size)
    {
        var (address, room) = file == AcpiTables.RsdpFileName
            ? (DirectBootRsdpAddress, DirectBootAcpiTablesAddress - DirectBootRsdpAddress)
            : (DirectBootAcpiTablesAddress, MemoryLayout.HighMemoryBase - DirectBootAcpiTablesAddress);
        if ((ulong)size > room)
            throw new MachineException($"the ACPI file {file} ({size} bytes) does not fit the BIOS area (0x{room:X} bytes at 0x{address:X})");
        return address;
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
        // The runner is paused (every vCPU parked outside the guest) and the devices reset.
        _runner?.Pause();
        _parts.Memory.Clear();
        _parts.ResetProcessorsAndInterruptControllers();
        PrepareBoot();
    }

    public void Stop()
    {
        _runner?.Stop();
        _runner = null;
    }

    public void Dispose()
    {
        Stop();
        _events.Dispose();
        _parts.Dispose();
        _bootRom?.Dispose();
    }

    /// <summary>The chipset's requests, as instance events.</summary>
    private sealed class MachineControl(Action<InstanceEvent> post) : IMachineControl
    {
        public void RequestReset(string reason) => post(new InstanceEvent(InstanceEventKind.GuestReset, reason));

        public void RequestPowerOff(string reason) => post(new InstanceEvent(InstanceEventKind.GuestHalt, reason));
    }

    /// <summary>A device (or group) whose lifecycle is a reset and possibly a release of host resources at halt.</summary>
    private sealed class CallbackLifecycle(string name, Action reset, Action? halt) : ILifecycle
    {
        public string Name => name;

        public void Reset() => reset();

        public void Halt() => halt?.Invoke();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "loaded {Kernel} (boot protocol {Major}.{Minor:D2}), initrd {InitrdBytes} bytes, cmdline \"{Cmdline}\"")]
    private static partial void LogLoaded(ILogger logger, string kernel, int major, int minor, int initrdBytes, string cmdline);

    [LoggerMessage(Level = LogLevel.Information, Message = "boot ROM {Path} ({KiB} KiB) mapped read-only at 0x{Address:X}{Kernel}")]
    private static partial void LogFirmware(ILogger logger, string path, int kib, ulong address, string kernel);

    [LoggerMessage(Level = LogLevel.Information, Message = "CPUID profile {Name}: {Count} leaves override the host's")]
    private static partial void LogProfile(ILogger logger, string name, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "CPUID profile {Name} is for {ProfileVendor} CPUs but this host is {HostVendor}; the guest may misbehave")]
    private static partial void LogVendorMismatch(ILogger logger, string name, CpuVendor profileVendor, CpuVendor hostVendor);
}

/// <summary>The machine cannot be built for a reason a person can act on; the message says which and what to do.</summary>
internal sealed class MachineException(string message) : Exception(message);

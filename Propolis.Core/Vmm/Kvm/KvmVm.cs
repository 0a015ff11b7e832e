using System.Runtime.InteropServices;
using Propolis.Core.Interop;
using Propolis.Core.Intr;
using Propolis.Core.Memory;
using static Propolis.Core.Interop.Interop;
using K = Propolis.Core.Interop.Interop.Kvm;

namespace Propolis.Core.Vmm.Kvm;

/// <summary>A KVM VM with the in-kernel PIC, I/O APIC, local APICs and PIT.</summary>
public sealed unsafe class KvmVm : IVm
{
    /// <summary>GSIs 0–23 are the I/O APIC's pins (0–15 also reach the PICs); MSI routes start here.</summary>
    public const uint IoApicPins = 24;

    private readonly KvmHypervisor _hypervisor;
    private readonly SafeFdHandle _vm;
    private readonly object _routingGate = new();
    private readonly List<kvm_irq_routing_entry> _routes;
    private uint _nextMsiGsi = IoApicPins;
    private readonly IIrqLine[] _lines = new IIrqLine[IoApicPins];
    private readonly kvm_irqchip[] _powerOnChips = new kvm_irqchip[3];
    private kvm_pit_state2 _powerOnPit;

    private KvmVm(KvmHypervisor hypervisor, SafeFdHandle vm)
    {
        _hypervisor = hypervisor;
        _vm = vm;
        _routes = DefaultRoutes();
        for (var gsi = 0u; gsi < IoApicPins; gsi++)
        {
            _lines[gsi] = new KvmIrqLine(this, gsi);
        }
    }

    internal SafeFdHandle Handle => _vm;

    internal static KvmVm Create(KvmHypervisor hypervisor)
    {
        var vm = Sys.IoctlFd(hypervisor.Handle, K.KVM_CREATE_VM, 0);
        if (vm.IsInvalid)
        {
            var errno = LastErrno;
            vm.Dispose();
            throw new HypervisorException(
                errno == (int)Errno.ENOMEM || errno == (int)Errno.EMFILE
                    ? "KVM_CREATE_VM failed: the host is out of memory or file descriptors for another VM"
                    : $"KVM_CREATE_VM failed: {Marshal.GetPInvokeErrorMessage(errno)}; check dmesg for kvm messages (is VT-x/AMD-V enabled?)",
                new ErrnoException("KVM_CREATE_VM", errno));
        }
        var result = new KvmVm(hypervisor, vm);
        try
        {
            result.SetUpPlatform();
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>The x86 platform pieces KVM emulates, in the order KVM requires: the TSS and
    /// identity-map pages before any vCPU exists, the irqchip before the PIT and routes.</summary>
    private void SetUpPlatform()
    {
        CheckIo(Sys.Ioctl(_vm, K.KVM_SET_TSS_ADDR, unchecked((nint)MemoryLayout.KvmTssAddress)), "KVM_SET_TSS_ADDR");
        var identityMap = MemoryLayout.KvmIdentityMapAddress;
        CheckIo(Sys.Ioctl(_vm, K.KVM_SET_IDENTITY_MAP_ADDR, &identityMap), "KVM_SET_IDENTITY_MAP_ADDR");
        CheckIo(Sys.Ioctl(_vm, K.KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP");
        var pit = new kvm_pit_config { flags = K.KVM_PIT_SPEAKER_DUMMY };
        CheckIo(Sys.Ioctl(_vm, K.KVM_CREATE_PIT2, &pit), "KVM_CREATE_PIT2");
        CommitRoutes();

        // The power-on state of the emulated PICs, I/O APIC and PIT, for machine resets.
        for (var chip = 0u; chip < _powerOnChips.Length; chip++)
        {
            var state = new kvm_irqchip { chip_id = chip };
            CheckIo(Sys.Ioctl(_vm, K.KVM_GET_IRQCHIP, &state), "KVM_GET_IRQCHIP");
            _powerOnChips[chip] = state;
        }
        fixed (kvm_pit_state2* pitState = &_powerOnPit)
        {
            CheckIo(Sys.Ioctl(_vm, K.KVM_GET_PIT2, pitState), "KVM_GET_PIT2");
        }
    }

    public void ResetInterruptControllers()
    {
        for (var chip = 0; chip < _powerOnChips.Length; chip++)
        {
            var state = _powerOnChips[chip];
            CheckIo(Sys.Ioctl(_vm, K.KVM_SET_IRQCHIP, &state), "KVM_SET_IRQCHIP");
        }
        var pitState = _powerOnPit;
        CheckIo(Sys.Ioctl(_vm, K.KVM_SET_PIT2, &pitState), "KVM_SET_PIT2");
    }

    /// <summary>The PC routing, as QEMU sets it for KVM (kvm_pc_setup_irq_routing): GSI n drives
    /// I/O APIC pin n for n in 1–23 and, for n in 0–15, pin n mod 8 of the master (n &lt; 8) or
    /// slave PIC; the PIT's GSI 0 reaches I/O APIC pin 2 (the MADT's interrupt source override
    /// IRQ 0 → GSI 2), and nothing else drives pin 2 (the PIC cascade).</summary>
    internal static List<kvm_irq_routing_entry> DefaultRoutes()
    {
        var routes = new List<kvm_irq_routing_entry>();
        for (var gsi = 0u; gsi < IoApicPins; gsi++)
        {
            if (gsi < 16)
            {
                routes.Add(IrqchipRoute(gsi, gsi < 8 ? K.KVM_IRQCHIP_PIC_MASTER : K.KVM_IRQCHIP_PIC_SLAVE, gsi % 8));
            }
            if (gsi != 2)
            {
                routes.Add(IrqchipRoute(gsi, K.KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi));
            }
        }
        return routes;
    }

    private static kvm_irq_routing_entry IrqchipRoute(uint gsi, uint chip, uint pin)
    {
        var e = new kvm_irq_routing_entry { gsi = gsi, type = K.KVM_IRQ_ROUTING_IRQCHIP };
        e.u.irqchip.irqchip = chip;
        e.u.irqchip.pin = pin;
        return e;
    }

    private static kvm_irq_routing_entry MsiRoute(uint gsi, ulong address, uint data)
    {
        var e = new kvm_irq_routing_entry { gsi = gsi, type = K.KVM_IRQ_ROUTING_MSI };
        e.u.msi.address_lo = (uint)address;
        e.u.msi.address_hi = (uint)(address >> 32);
        e.u.msi.data = data;
        return e;
    }

    private void CommitRoutes()
    {
        lock (_routingGate)
        {
            var count = _routes.Count;
            var bytes = sizeof(kvm_irq_routing) + count * sizeof(kvm_irq_routing_entry);
            var buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
            try
            {
                ((kvm_irq_routing*)buffer)->nr = (uint)count;
                var entries = (kvm_irq_routing_entry*)(buffer + sizeof(kvm_irq_routing));
                for (var i = 0; i < count; i++)
                {
                    entries[i] = _routes[i];
                }
                CheckIo(Sys.Ioctl(_vm, K.KVM_SET_GSI_ROUTING, buffer), "KVM_SET_GSI_ROUTING");
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    public void MapMemory(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var regions = memory.Layout.RamRegions;
        for (var slot = 0; slot < regions.Length; slot++)
        {
            var r = regions[slot];
            var region = new kvm_userspace_memory_region
            {
                slot = (uint)slot,
                guest_phys_addr = r.GuestAddress,
                memory_size = r.Size,
                userspace_addr = (ulong)(memory.HostBase + (nint)r.HostOffset),
            };
            if (Sys.Ioctl(_vm, K.KVM_SET_USER_MEMORY_REGION, &region) < 0)
            {
                var errno = LastErrno;
                throw new HypervisorException(
                    errno == (int)Errno.ENOMEM
                        ? $"KVM could not map {r.Size >> 20} MiB of guest memory at 0x{r.GuestAddress:X}: out of memory; lower the VM's memory size"
                        : $"KVM_SET_USER_MEMORY_REGION for 0x{r.GuestAddress:X}+0x{r.Size:X} failed: {Marshal.GetPInvokeErrorMessage(errno)}",
                    new ErrnoException("KVM_SET_USER_MEMORY_REGION", errno));
            }
        }
    }

    /// <summary>Memory slots of read-only mappings start here (RAM uses one slot per region from 0).</summary>
    private const uint FirstReadOnlySlot = 16;
    private uint _readOnlySlots;

    public void MapReadOnly(ulong guestAddress, nint hostAddress, ulong size)
    {
        if (size == 0 || (guestAddress | (ulong)hostAddress | size) % MemoryLayout.PageSize != 0)
        {
            throw new ArgumentException($"read-only mapping 0x{guestAddress:X}+0x{size:X} is empty or not page-aligned");
        }
        // KVM_CAP_READONLY_MEM (Documentation/virt/kvm/api.rst, KVM_SET_USER_MEMORY_REGION).
        if (Sys.Ioctl(_vm, K.KVM_CHECK_EXTENSION, K.KVM_CAP_READONLY_MEM) <= 0)
        {
            throw new HypervisorException("KVM on this host cannot map read-only memory (KVM_CAP_READONLY_MEM), which a boot ROM needs; use a newer host kernel");
        }
        var region = new kvm_userspace_memory_region
        {
            slot = FirstReadOnlySlot + _readOnlySlots,
            flags = K.KVM_MEM_READONLY,
            guest_phys_addr = guestAddress,
            memory_size = size,
            userspace_addr = (ulong)hostAddress,
        };
        if (Sys.Ioctl(_vm, K.KVM_SET_USER_MEMORY_REGION, &region) < 0)
        {
            var errno = LastErrno;
            throw new HypervisorException(
                $"KVM_SET_USER_MEMORY_REGION (read-only) for 0x{guestAddress:X}+0x{size:X} failed: {Marshal.GetPInvokeErrorMessage(errno)}",
                new ErrnoException("KVM_SET_USER_MEMORY_REGION", errno));
        }
        _readOnlySlots++;
    }

    public IVcpu CreateVcpu(int id)
    {
        if (id < 0 || id >= _hypervisor.MaxVcpus)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"KVM on this host supports vCPU ids 0–{_hypervisor.MaxVcpus - 1}");
        }
        return KvmVcpu.Create(this, id, _hypervisor.VcpuMmapSize);
    }

    public void SetIrqLine(uint gsi, bool asserted)
    {
        var level = new kvm_irq_level { irq = gsi, level = asserted ? 1u : 0u };
        CheckIo(Sys.Ioctl(_vm, K.KVM_IRQ_LINE, &level), "KVM_IRQ_LINE");
    }

    public IIrqLine GetIrqLine(uint gsi)
    {
        if (gsi >= IoApicPins)
        {
            throw new ArgumentOutOfRangeException(nameof(gsi), gsi, $"legacy interrupt lines are GSIs 0–{IoApicPins - 1}");
        }
        return _lines[gsi];
    }

    public bool SignalMsi(ulong address, uint data)
    {
        var msi = new kvm_msi { address_lo = (uint)address, address_hi = (uint)(address >> 32), data = data };
        return CheckIo(Sys.Ioctl(_vm, K.KVM_SIGNAL_MSI, &msi), "KVM_SIGNAL_MSI") > 0;
    }

    public uint AllocateMsiRoute(ulong address, uint data)
    {
        lock (_routingGate)
        {
            var gsi = _nextMsiGsi++;
            _routes.Add(MsiRoute(gsi, address, data));
            CommitRoutes();
            return gsi;
        }
    }

    public void SetMsiRoute(uint gsi, ulong address, uint data)
    {
        lock (_routingGate)
        {
            var index = _routes.FindIndex(r => r.gsi == gsi && r.type == K.KVM_IRQ_ROUTING_MSI);
            if (index < 0)
            {
                throw new ArgumentException($"GSI {gsi} is not an MSI route allocated by AllocateMsiRoute", nameof(gsi));
            }
            _routes[index] = MsiRoute(gsi, address, data);
            CommitRoutes();
        }
    }

    public void RegisterIrqFd(EventFd eventFd, uint gsi) => IrqFd(eventFd, gsi, 0, "KVM_IRQFD");

    public void UnregisterIrqFd(EventFd eventFd, uint gsi) => IrqFd(eventFd, gsi, K.KVM_IRQFD_FLAG_DEASSIGN, "KVM_IRQFD (deassign)");

    private void IrqFd(EventFd eventFd, uint gsi, uint flags, string operation)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        var irqfd = new kvm_irqfd { fd = (uint)eventFd.Handle.Fd, gsi = gsi, flags = flags };
        CheckIo(Sys.Ioctl(_vm, K.KVM_IRQFD, &irqfd), operation);
    }

    public void RegisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) =>
        IoEventFd(eventFd, space, address, length, dataMatch, 0, "KVM_IOEVENTFD");

    public void UnregisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) =>
        IoEventFd(eventFd, space, address, length, dataMatch, K.KVM_IOEVENTFD_FLAG_DEASSIGN, "KVM_IOEVENTFD (deassign)");

    private void IoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch, uint flags, string operation)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        if (length is not (1 or 2 or 4 or 8) || (space == IoEventSpace.Port && (length == 8 || address > 0xFFFF)))
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"{operation}: {length}-byte {space} access at 0x{address:X} cannot be watched");
        }
        var ioeventfd = new kvm_ioeventfd
        {
            datamatch = dataMatch ?? 0,
            addr = address,
            len = (uint)length,
            fd = eventFd.Handle.Fd,
            flags = flags
                | (space == IoEventSpace.Port ? K.KVM_IOEVENTFD_FLAG_PIO : 0)
                | (dataMatch.HasValue ? K.KVM_IOEVENTFD_FLAG_DATAMATCH : 0),
        };
        CheckIo(Sys.Ioctl(_vm, K.KVM_IOEVENTFD, &ioeventfd), operation);
    }

    public void Dispose() => _vm.Dispose();
}

/// <summary>A GSI driven through KVM_IRQ_LINE.</summary>
internal sealed class KvmIrqLine(KvmVm vm, uint gsi) : IIrqLine
{
    public uint Gsi => gsi;

    public void SetLevel(bool asserted) => vm.SetIrqLine(gsi, asserted);

    public void Pulse()
    {
        vm.SetIrqLine(gsi, true);
        vm.SetIrqLine(gsi, false);
    }
}

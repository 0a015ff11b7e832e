using Propolis.Core.Intr;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Vmm;

/// <summary>ioeventfd and irqfd-route bookkeeping over a recording hypervisor VM.</summary>
public sealed class HypervisorEventsTests
{
    [Fact]
    public void RoutesBindOnFirstSignalAndReprogramOnlyWhenTheMessageChanges()
    {
        var vm = new RecordingVm();
        using var events = new HypervisorEvents(vm);
        var route = events.CreateMsiRoute();
        Assert.Empty(vm.Log);

        Assert.True(route.Signal(0xFEE0_0000, 0x41));
        Assert.True(route.Signal(0xFEE0_0000, 0x41));
        Assert.True(route.Signal(0xFEE0_1000, 0x42));
        Assert.Equal(["alloc 24 FEE00000/41", "irqfd 24", "set 24 FEE01000/42"], vm.Log);
        Assert.Equal(3, vm.IrqFds[24].TryConsume(out var count) ? (int)count : 0);
        Assert.Equal((0, 1), events.Counts);
    }

    [Fact]
    public void AnUpdatedRouteCarriesTheMessageAtOnceAndDetachesItsIrqfdWhileMasked()
    {
        var vm = new RecordingVm();
        using var events = new HypervisorEvents(vm);
        var route = events.CreateMsiRoute();
        var fd = route.IrqFd;
        Assert.NotNull(fd);
        Assert.Same(fd, route.IrqFd);
        Assert.True(route.Update(0, 0, masked: true));             // never bound: nothing to detach
        Assert.Empty(vm.Log);

        Assert.True(route.Update(0xFEE0_0000, 0x41, masked: false));
        Assert.Same(fd, vm.IrqFds[24]);                             // the fd handed out is the one KVM watches
        Assert.True(route.Update(0xFEE0_0000, 0x41, masked: false)); // unchanged: no ioctl
        Assert.True(route.Update(0xFEE0_0000, 0x41, masked: true));
        Assert.True(route.Update(0xFEE0_1000, 0x42, masked: false));
        Assert.Equal(["alloc 24 FEE00000/41", "irqfd 24", "-irqfd 24", "set 24 FEE01000/42", "irqfd 24"], vm.Log);
        // A signal from this process uses the same binding.
        Assert.True(route.Signal(0xFEE0_1000, 0x42));
        Assert.Equal(5, vm.Log.Count);
    }

    [Fact]
    public void RetargetMovesDoorbellsAndRebindsRoutesToTheNewVm()
    {
        var first = new RecordingVm();
        using var events = new HypervisorEvents(first);
        using var fd = EventFd.Create();
        Assert.True(events.TryRegister(fd, IoEventSpace.Port, 0xC010, 2, 0));
        var route = events.CreateMsiRoute();
        Assert.True(route.Signal(0xFEE0_0000, 0x41));

        var second = new RecordingVm();
        events.Retarget(second);
        Assert.Equal(["ioeventfd Port C010/2 =0"], second.Log);
        Assert.True(route.Signal(0xFEE0_0000, 0x41));
        Assert.Equal(["ioeventfd Port C010/2 =0", "alloc 24 FEE00000/41", "irqfd 24"], second.Log);

        events.Unregister(fd, IoEventSpace.Port, 0xC010, 2, 0);
        Assert.Equal("-ioeventfd Port C010/2", second.Log[^1]);
        Assert.Equal((0, 1), events.Counts);
    }

    [Fact]
    public void RefusalsFallBackInsteadOfThrowing()
    {
        var vm = new RecordingVm { Refuse = true };
        using var events = new HypervisorEvents(vm);
        using var fd = EventFd.Create();
        Assert.False(events.TryRegister(fd, IoEventSpace.Mmio, 0xC000_3000, 2, null));
        Assert.False(events.CreateMsiRoute().Signal(0xFEE0_0000, 0x41));
        Assert.Equal((0, 0), events.Counts);
    }

    private sealed class RecordingVm : IVm
    {
        private uint _next = 24;
        public List<string> Log { get; } = [];
        public Dictionary<uint, EventFd> IrqFds { get; } = [];
        public bool Refuse { get; init; }

        public uint AllocateMsiRoute(ulong address, uint data)
        {
            if (Refuse) throw new HypervisorException("KVM_SET_GSI_ROUTING: EINVAL");
            Log.Add($"alloc {_next} {address:X}/{data:X}");
            return _next++;
        }

        public void SetMsiRoute(uint gsi, ulong address, uint data) => Log.Add($"set {gsi} {address:X}/{data:X}");

        public void RegisterIrqFd(EventFd eventFd, uint gsi)
        {
            Log.Add($"irqfd {gsi}");
            IrqFds[gsi] = eventFd;
        }

        public void UnregisterIrqFd(EventFd eventFd, uint gsi) => Log.Add($"-irqfd {gsi}");

        public void RegisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch)
        {
            if (Refuse) throw new HypervisorException("KVM_IOEVENTFD: ENOSPC");
            Log.Add($"ioeventfd {space} {address:X}/{length}" + (dataMatch is { } m ? $" ={m}" : ""));
        }

        public void UnregisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) =>
            Log.Add($"-ioeventfd {space} {address:X}/{length}");

        public void MapMemory(GuestMemory memory) => throw new NotSupportedException();
        public void MapReadOnly(ulong guestAddress, nint hostAddress, ulong size) => throw new NotSupportedException();
        public IVcpu CreateVcpu(int id) => throw new NotSupportedException();
        public void SetIrqLine(uint gsi, bool asserted) => throw new NotSupportedException();
        public IIrqLine GetIrqLine(uint gsi) => throw new NotSupportedException();
        public bool SignalMsi(ulong address, uint data) => true;
        public void ResetInterruptControllers() { }
        public void Dispose() { }
    }
}

using Propolis.Core.Intr;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Vmm;

public class VmPartsTests
{
    private sealed class FakeHypervisor : IHypervisor
    {
        public readonly List<string> Calls = [];
        public FakeVm? Vm;

        public string Name => "fake";
        public int MaxVcpus => 8;

        public IReadOnlyList<CpuidEntry> GetSupportedCpuid() =>
        [
            new(0, 0, false, 0xD, 0x6874_7541, 0x444D_4163, 0x6974_6E65),
            new(1, 0, false, 0x00B0_0F21, 0x0000_0800, 0, 0),
        ];

        public IVm CreateVm()
        {
            Calls.Add("CreateVm");
            return Vm = new FakeVm(this);
        }

        public void Dispose() { }
    }

    private sealed class FakeVm(FakeHypervisor hv) : IVm
    {
        public readonly List<FakeVcpu> Vcpus = [];
        public GuestMemory? Mapped;

        public void MapMemory(GuestMemory memory)
        {
            hv.Calls.Add($"MapMemory {memory.Layout.RamSize >> 20} MiB");
            Mapped = memory;
        }

        public void MapReadOnly(ulong guestAddress, nint hostAddress, ulong size) =>
            hv.Calls.Add($"MapReadOnly 0x{guestAddress:X}+0x{size:X}");

        public IVcpu CreateVcpu(int id)
        {
            hv.Calls.Add($"CreateVcpu {id}");
            var v = new FakeVcpu(id);
            Vcpus.Add(v);
            return v;
        }

        public void Dispose() => hv.Calls.Add("DisposeVm");
        public void ResetInterruptControllers() => hv.Calls.Add("ResetInterruptControllers");
        public void SetIrqLine(uint gsi, bool asserted) { }
        public IIrqLine GetIrqLine(uint gsi) => throw new ArgumentOutOfRangeException(nameof(gsi));
        public bool SignalMsi(ulong address, uint data) => true;
        public uint AllocateMsiRoute(ulong address, uint data) => 24;
        public void SetMsiRoute(uint gsi, ulong address, uint data) { }
        public void RegisterIrqFd(EventFd eventFd, uint gsi) { }
        public void UnregisterIrqFd(EventFd eventFd, uint gsi) { }
        public void RegisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) { }
        public void UnregisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) { }
    }

    [Fact]
    public void BuildsVmMemoryAndConfiguredVcpusInHypervisorOrder()
    {
        var hv = new FakeHypervisor();
        using (var parts = VmParts.Create(hv, 32 << 20, 3))
        {
            Assert.Equal(["CreateVm", "MapMemory 32 MiB", "CreateVcpu 0", "CreateVcpu 1", "CreateVcpu 2"], hv.Calls);
            Assert.Same(parts.Memory, hv.Vm!.Mapped);
            for (var id = 0; id < 3; id++)
            {
                var v = hv.Vm.Vcpus[id];
                var leaf1 = Assert.Single(v.Cpuid, e => e.Function == 1);
                Assert.Equal((uint)id, leaf1.Ebx >> 24);
                Assert.Equal(X86CpuSetup.BootMsrs.ToArray(), v.Msrs);
                Assert.True(v.VirtualWire);
                Assert.Equal((ushort)0x37F, v.Fpu.Fcw);
                Assert.Equal(id == 0 ? VcpuMpState.Runnable : VcpuMpState.Uninitialized, v.MpState);
                Assert.Equal(1, v.ResetStateSaves); // saved after everything else was configured
            }
            Assert.Empty(parts.PortIo.Ranges);
        }
        Assert.Equal("DisposeVm", hv.Calls[^1]);
    }

    [Fact]
    public void ResetRestoresEveryVcpuAndSwitchesParavirtMsrsOff()
    {
        var hv = new FakeHypervisor();
        using var parts = VmParts.Create(hv, 32 << 20, 2);
        foreach (var v in hv.Vm!.Vcpus)
        {
            v.Msrs = [];
        }
        parts.ResetProcessorsAndInterruptControllers();
        Assert.Equal("ResetInterruptControllers", hv.Calls[^1]);
        foreach (var v in hv.Vm.Vcpus)
        {
            Assert.Equal(1, v.Resets);
            Assert.Equal(X86CpuSetup.BootMsrs.ToArray(), v.Msrs);
            Assert.Equal(X86CpuSetup.ParavirtMsrsOffAtReset.ToArray(), v.MsrWrites.Select(w => w.Item1).ToArray());
            Assert.All(v.MsrWrites, w => Assert.Equal(0UL, w.Item2));
        }
    }

    [Fact]
    public void RejectsMoreVcpusThanTheHypervisorAllows() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => VmParts.Create(new FakeHypervisor(), 32 << 20, 9));
}

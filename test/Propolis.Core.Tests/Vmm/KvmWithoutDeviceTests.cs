using Propolis.Core.Interop;
using Propolis.Core.Vmm;
using Propolis.Core.Vmm.Kvm;

namespace Propolis.Core.Tests.Vmm;

/// <summary>What the KVM backend does that can be checked without /dev/kvm.</summary>
public class KvmWithoutDeviceTests
{
    [Fact]
    public void MissingDeviceSaysWhatToDo()
    {
        var e = Assert.Throws<HypervisorException>(() => KvmHypervisor.Open("/nonexistent/kvm"));
        Assert.Equal(
            "no /nonexistent/kvm: this machine has no hardware virtualisation exposed; run inside a VM with nested virtualisation, or use test/e2e/kvm-sandbox.sh",
            e.Message);
        Assert.Equal(Errno.ENOENT, Assert.IsType<ErrnoException>(e.InnerException).Errno);
    }

    [Fact]
    public void PermissionDeniedPointsAtTheKvmGroup() =>
        Assert.StartsWith("permission denied on /dev/kvm: add your user to the kvm group",
            KvmHypervisor.OpenErrorMessage("/dev/kvm", (int)Errno.EACCES));

    [Fact]
    public void ADeviceThatIsNotKvmIsRecognised()
    {
        var e = Assert.Throws<HypervisorException>(() => KvmHypervisor.Open("/dev/null"));
        Assert.StartsWith("/dev/null is not a KVM device (KVM_GET_API_VERSION failed:", e.Message);
    }

    [Fact]
    public void DefaultRoutingIsThePcWiring()
    {
        var routes = KvmVm.DefaultRoutes();
        Assert.Equal(16 * 2 + 8 - 1, routes.Count);
        string Describe(uint gsi) => string.Join(",", routes.Where(r => r.gsi == gsi)
            .Select(r => $"{r.type}:{r.u.irqchip.irqchip}/{r.u.irqchip.pin}"));
        Assert.Equal("1:0/0,1:2/2", Describe(0));   // PIC master pin 0, IOAPIC pin 2 (MADT: IRQ 0 -> GSI 2)
        Assert.Equal("1:0/2", Describe(2));         // the cascade: no IOAPIC pin
        Assert.Equal("1:0/4,1:2/4", Describe(4));
        Assert.Equal("1:1/1,1:2/9", Describe(9));   // PIC slave pin 1
        Assert.Equal("1:1/7,1:2/15", Describe(15));
        Assert.Equal("1:2/23", Describe(23));       // IOAPIC only
    }

    [Fact]
    public void VirtualWireSetsLint0ExtIntAndLint1Nmi()
    {
        var page = new byte[0x400];
        BitConverter.GetBytes(0x0001_0000u | (0x2u << 8) | 0x30).CopyTo(page, 0x350); // masked, SMI, vector 0x30
        BitConverter.GetBytes(0x0001_0000u).CopyTo(page, 0x360);
        LocalApic.SetVirtualWire(page);
        Assert.Equal(0x0001_0730u, BitConverter.ToUInt32(page, 0x350)); // ExtINT, mask and vector kept
        Assert.Equal(0x0001_0400u, BitConverter.ToUInt32(page, 0x360)); // NMI
    }

    [Fact]
    public void EventFdCountsSignals()
    {
        using var efd = EventFd.Create();
        Assert.False(efd.TryConsume(out _));
        Assert.True(efd.Signal());
        Assert.True(efd.Signal());
        Assert.True(efd.TryConsume(out var n));
        Assert.Equal(2UL, n);
        Assert.False(efd.TryConsume(out _));
    }

    [Fact]
    public void BootMsrsEnableMtrrsWithWriteBack()
    {
        var msrs = X86CpuSetup.BootMsrs.ToArray();
        Assert.Contains(new MsrValue(0x2FF, 0x806), msrs);
        Assert.Contains(new MsrValue(0x1A0, 1), msrs);
        Assert.Equal(msrs.Length, msrs.Select(m => m.Index).Distinct().Count());
    }
}

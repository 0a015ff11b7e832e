using Propolis.Standalone.Config;
using Propolis.Standalone.Machine;

namespace Propolis.Standalone.Tests.Machine;

public class VirtioNetDeviceTests
{
    [Fact]
    public void DerivedMacIsStableLocallyAdministeredUnicastAndPerDevice()
    {
        var a = VirtioNetDevice.DeriveMac("testvm", "net0");
        Assert.Equal(a, VirtioNetDevice.DeriveMac("testvm", "net0"));
        Assert.Equal(6, a.Length);
        Assert.Equal(0x02, a[0] & 0x03);   // locally administered, unicast
        Assert.NotEqual(a, VirtioNetDevice.DeriveMac("testvm", "net1"));
        Assert.NotEqual(a, VirtioNetDevice.DeriveMac("othervm", "net0"));
        // Pinned (sha256 of "propolis-standalone\0testvm\0net0", checked with Python): a VM keeps its MAC (and so its DHCP lease) across versions of this program.
        Assert.Equal("de:7d:f6:41:21:23", Values.FormatMac(a));
    }
}

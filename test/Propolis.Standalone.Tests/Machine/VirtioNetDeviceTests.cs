using Microsoft.Extensions.Logging;
using Propolis.Core.Memory;
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

    private static VirtioNetDeviceConfig Net(VhostNetMode vhost) =>
        new("net0", new PciPath(0, 5, 0), "tap0", 256, 256, true, 0, null, vhost);

    [Fact]
    public void VhostFalseNeverOpensVhostNet()
    {
        using var memory = GuestMemory.Allocate(MemoryLayout.ForRamSize(4 << 20));
        var log = new ListLogger();

        Assert.Null(VirtioNetDevice.OpenVhost(Net(VhostNetMode.Off), memory, 1, log));
        Assert.Empty(log.Messages);
    }

    [VhostNetMissingFact]
    public void VhostTrueWithoutVhostNetIsAnErrorNamingTheDeviceAndTheModule()
    {
        using var memory = GuestMemory.Allocate(MemoryLayout.ForRamSize(4 << 20));

        var e = Assert.Throws<MachineException>(() => VirtioNetDevice.OpenVhost(Net(VhostNetMode.Required), memory, 1, new ListLogger()));

        Assert.StartsWith("[dev.net0] vhost = true: /dev/vhost-net ", e.Message);
        Assert.Contains("modprobe vhost_net", e.Message);
    }

    [VhostNetMissingFact]
    public void VhostAbsentWithoutVhostNetFallsBackAndSaysWhyOnce()
    {
        using var memory = GuestMemory.Allocate(MemoryLayout.ForRamSize(4 << 20));
        var log = new ListLogger();

        Assert.Null(VirtioNetDevice.OpenVhost(Net(VhostNetMode.Auto), memory, 2, log));

        var m = Assert.Single(log.Messages);
        Assert.Equal(LogLevel.Information, m.Level);
        Assert.Contains("vhost-net not used: /dev/vhost-net", m.Text);
        Assert.Contains("modprobe vhost_net", m.Text);
    }

    /// <summary>Runs where /dev/vhost-net cannot be opened (as on a host without the module).</summary>
    private sealed class VhostNetMissingFactAttribute : FactAttribute
    {
        public VhostNetMissingFactAttribute()
        {
            if (Propolis.Core.Net.VhostNet.Unavailable() is null)
            {
                Skip = "/dev/vhost-net can be opened here";
            }
        }
    }

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Text)> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Messages)
            {
                Messages.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}

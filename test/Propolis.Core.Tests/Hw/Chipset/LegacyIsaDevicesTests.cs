using Propolis.Core.Buses;
using Propolis.Core.Hw.Chipset;
using Propolis.Core.Hw.Rtc;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Chipset;

public class LegacyIsaDevicesTests
{
    [Fact]
    public void ClaimsThePortsAndWiresIrqs()
    {
        var pio = new PortIoBus();
        var isa = new FakeIsa();
        var control = new FakeMachineControl();
        var path = Path.Combine(Path.GetTempPath(), $"debug-{Guid.NewGuid():N}.out");
        try
        {
            using (var devices = LegacyIsaDevices.Create(new LegacyIsaOptions(new RtcOptions(512UL << 20, 0), path), pio.Register, isa.Irqs, control))
            {
                Assert.Equal(["rtc", "pvpanic", "i8042-data", "i8042-command", "qemu-debug-port"],
                    pio.Ranges.OrderBy(r => r.Start switch { 0x70 => 0, 0x505 => 1, 0x60 => 2, 0x64 => 3, _ => 4 }).Select(r => r.Owner));
                pio.Write(0x60, [0xFF]); // keyboard reset: ACK on IRQ 1
                Assert.True(isa.Lines[1].Pulses > 0);
                pio.Write(0x64, [0xFE]);
                Assert.Single(control.Resets);
                pio.Write(0x402, [(byte)'!']);
            }
            Assert.Equal("!", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

using Propolis.Core.Intr;
using Propolis.Core.Tests.Hw.Uart;

namespace Propolis.Core.Tests.Intr;

public class SharedIrqLineTests
{
    [Fact]
    public void The_line_is_asserted_while_any_source_asserts_it()
    {
        var line = new RecordingIrqLine(gsi: 4);
        var shared = new SharedIrqLine(line);
        var a = shared.AddSource();
        var b = shared.AddSource();
        Assert.Equal(4u, a.Gsi);

        a.SetLevel(true);
        b.SetLevel(true);
        a.SetLevel(false);
        Assert.True(line.Level); // b still holds it
        a.SetLevel(false);       // repeated deassert does not count twice
        Assert.True(line.Level);
        b.SetLevel(false);
        Assert.False(line.Level);
        Assert.Equal([true, false], line.Changes);
    }

    [Fact]
    public void A_pulse_is_swallowed_while_another_source_holds_the_line()
    {
        var line = new RecordingIrqLine();
        var shared = new SharedIrqLine(line);
        var a = shared.AddSource();
        var b = shared.AddSource();
        b.Pulse();
        Assert.Equal(1, line.Pulses);
        a.SetLevel(true);
        b.Pulse();
        Assert.Equal(1, line.Pulses);
    }
}

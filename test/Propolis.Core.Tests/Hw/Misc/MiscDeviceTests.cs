using Propolis.Core.Buses;
using Propolis.Core.Hw.Misc;

namespace Propolis.Core.Tests.Hw.Misc;

public class MiscDeviceTests
{
    [Fact]
    public void DebugPortWritesEveryByteToTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"debug-{Guid.NewGuid():N}.out");
        try
        {
            var pio = new PortIoBus();
            using (var port = QemuDebugPort.ToFile(path))
            {
                pio.Register(QemuDebugPort.DefaultPort, 1, port, "debugcon");
                Span<byte> b = stackalloc byte[1];
                pio.Read(0x402, b);
                Assert.Equal(0xE9, b[0]);
                foreach (var c in "BdsDxe: loading\n"u8.ToArray())
                    pio.Write(0x402, [c]);
                Assert.Equal("BdsDxe: loading\n", ReadShared(path)); // flushed at the newline
                pio.Write(0x402, [(byte)'x']);
            }
            Assert.Equal("BdsDxe: loading\nx", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string ReadShared(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    [Fact]
    public void PvPanicReportsCapabilitiesAndRaisesTheEvent()
    {
        var pio = new PortIoBus();
        var panic = new PvPanic();
        pio.Register(PvPanic.DefaultPort, 1, panic, "pvpanic");
        var seen = new List<PvPanicEvents>();
        panic.GuestPanicked += seen.Add;

        Span<byte> b = stackalloc byte[1];
        pio.Read(0x505, b);
        Assert.Equal(0x03, b[0]);

        pio.Write(0x505, [0x00]);
        Assert.Empty(seen);
        pio.Write(0x505, [0x01]);
        pio.Write(0x505, [0xFE]); // CRASH_LOADED plus unknown bits
        Assert.Equal([PvPanicEvents.Panicked, PvPanicEvents.CrashLoaded], seen);
        Assert.Equal(2, panic.PanicCount);
    }
}

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Chipset;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Hw.Rtc;
using Propolis.Core.Tests.Hw.Pci;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Chipset;

/// <summary>The accesses a guest makes at run time (config reads, BAR accesses, MSI-X delivery,
/// INTx, PM timer, RTC reads) allocate nothing once warmed up.</summary>
public sealed class HotPathAllocationTests : IDisposable
{
    private const ulong Bar2 = 0xC100_0000;
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly FakeIsa _isa = new();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
    private readonly I440FxChipset _chipset;
    private readonly Mc146818Rtc _rtc;
    private readonly TestFunction _f = new() { Record = false };

    public HotPathAllocationTests()
    {
        _chipset = I440FxChipset.Create(new I440FxOptions(), _pio, _mmio, _isa.Irqs, new NullSink(), new FakeMachineControl(), _time);
        _chipset.AttachPci(_f, 4, 0);
        _rtc = new Mc146818Rtc(new RtcOptions(512UL << 20, 0), _isa.Lines[8], _time);
        _pio.Register(Mc146818Rtc.BasePort, Mc146818Rtc.PortCount, _rtc, "rtc");
        _f.ConfigWriteDword(0x18, (uint)Bar2);
        _f.ConfigWrite(PciHeader.Command, [(byte)PciCommand.MemorySpace, 0]);
        _f.ConfigWrite(_f.Msix!.Offset + 2, [0x00, 0x80]);
        _mmio.Write(Bar2 + 12, [0, 0, 0, 0]);
        _chipset.Lpc.SetRoute(0, 10);
    }

    public void Dispose()
    {
        _rtc.Dispose();
        _chipset.Dispose();
    }

    private sealed class NullSink : IMsiSink
    {
        public bool SignalMsi(ulong address, uint data) => true;
    }

    [Fact]
    public void RuntimeAccessesAllocateNothing()
    {
        Exercise(200);
        var best = long.MaxValue;
        for (var round = 0; round < 3; round++)
            best = Math.Min(best, Exercise(1000));
        Assert.Equal(0, best);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private long Exercise(int iterations)
    {
        Span<byte> d = stackalloc byte[4];
        Span<byte> one = stackalloc byte[1];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < iterations; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d, 0x8000_2000u); // 00:04.0 reg 0
            _pio.Write(0xCF8, d);
            _pio.Read(0xCFC, d);
            _mmio.Read(0xE000_0000 + (4UL << 15), d);
            _mmio.Read(Bar2 + 0x1000, d);
            _mmio.Read(Bar2 + 8, d);
            _f.Msix!.Notify(0);
            _f.Intx(true);
            _f.Intx(false);
            _pio.Read(PmConstants.PmTimerBlock, d);
            _pio.Read(PmConstants.Pm1aEventBlock, d[..2]);
            one[0] = 0x00;
            _pio.Write(0x70, one);
            _pio.Read(0x71, one);
            one[0] = 0x0C;
            _pio.Write(0x70, one);
            _pio.Read(0x71, one);
        }
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}

using Microsoft.Extensions.Logging;
using Propolis.Core.Buses;

namespace Propolis.Core.Tests.Buses;

internal sealed class RecordingDevice : IPortIoHandler, IMmioHandler
{
    public readonly List<string> Log = [];
    public byte Fill = 0x5A;

    public void PortRead(ushort offset, Span<byte> data)
    {
        data.Fill(Fill);
        Log.Add($"r{offset:X}/{data.Length}");
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data) => Log.Add($"w{offset:X}={Convert.ToHexString(data)}");

    public void MmioRead(ulong offset, Span<byte> data)
    {
        data.Fill(Fill);
        Log.Add($"r{offset:X}/{data.Length}");
    }

    public void MmioWrite(ulong offset, ReadOnlySpan<byte> data) => Log.Add($"w{offset:X}={Convert.ToHexString(data)}");
}

/// <summary>Counts log entries by message, to check "logged once".</summary>
internal sealed class CountingLogger<T> : ILogger<T>
{
    public readonly List<(LogLevel Level, string Message)> Entries = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Entries)
        {
            Entries.Add((logLevel, formatter(state, exception)));
        }
    }
}

public class PortIoBusTests
{
    [Fact]
    public void DispatchesToTheClaimingDeviceWithOffset()
    {
        var bus = new PortIoBus();
        var com1 = new RecordingDevice();
        var pic = new RecordingDevice();
        bus.Register(0x3F8, 8, com1, "com1");
        bus.Register(0x20, 2, pic, "pic");
        bus.Write(0x3FB, [0x80]);
        Span<byte> b = stackalloc byte[2];
        bus.Read(0x21, b);
        Assert.Equal(["w3=80"], com1.Log);
        Assert.Equal(["r1/2"], pic.Log);
        Assert.Equal(0x5A5A, BitConverter.ToUInt16(b));
    }

    [Fact]
    public void UnclaimedReadsAreAllOnesAndLoggedOncePerPort()
    {
        var logger = new CountingLogger<PortIoBus>();
        var bus = new PortIoBus(logger);
        Span<byte> d = stackalloc byte[4];
        for (var i = 0; i < 3; i++)
        {
            d.Clear();
            bus.Read(0x510, d);
            Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(d));
        }
        bus.Read(0x511, d[..1]);
        bus.Write(0x510, [1]);
        bus.Write(0x510, [2]);
        Assert.Equal(3, logger.Entries.Count);
        Assert.All(logger.Entries, e => Assert.Equal(LogLevel.Debug, e.Level));
        Assert.Contains("0x0510", logger.Entries[0].Message);
        Assert.Contains("dropped", logger.Entries[2].Message);
    }

    [Fact]
    public void OverlapsAreRejectedNamingTheOwner()
    {
        var bus = new PortIoBus();
        bus.Register(0x60, 1, new RecordingDevice(), "ps2-data");
        bus.Register(0x64, 1, new RecordingDevice(), "ps2-cmd");
        var e = Assert.Throws<BusConflictException>(() => bus.Register(0x5E, 4, new RecordingDevice(), "rogue"));
        Assert.Contains("rogue", e.Message);
        Assert.Contains("ps2-data", e.Message);
        Assert.Throws<BusConflictException>(() => bus.Register(0x64, 1, new RecordingDevice(), "again"));
        Assert.Throws<BusConflictException>(() => bus.Register(0x61, 4, new RecordingDevice(), "spans ps2-cmd"));
        bus.Register(0x61, 3, new RecordingDevice(), "between"); // adjacent on both sides is fine
        Assert.Equal(3, bus.Ranges.Count);
    }

    [Fact]
    public void RangesMayReachTheLastPortButNotPastIt()
    {
        var bus = new PortIoBus();
        var top = new RecordingDevice();
        bus.Register(0xFFFF, 1, top, "top");
        bus.Write(0xFFFF, [7]);
        Assert.Equal(["w0=07"], top.Log);
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0xFFFF, 2, top, "past"));
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0x10, 0, top, "empty"));
    }

    [Fact]
    public void UnregisterReleasesTheRange()
    {
        var bus = new PortIoBus();
        var dev = new RecordingDevice();
        bus.Register(0x70, 2, dev, "rtc");
        Assert.True(bus.Unregister(0x70));
        Assert.False(bus.Unregister(0x70));
        Span<byte> d = stackalloc byte[1];
        bus.Read(0x71, d);
        Assert.Equal(0xFF, d[0]);
        Assert.Empty(dev.Log);
        bus.Register(0x70, 2, dev, "rtc again");
    }

    [Fact]
    public void BinarySearchFindsEveryOneOfManyRanges()
    {
        var bus = new PortIoBus();
        var devices = new RecordingDevice[200];
        // Register in a scrambled order; each device owns 3 ports with a 2-port gap.
        for (var k = 0; k < devices.Length; k++)
        {
            var i = k * 37 % devices.Length;
            devices[i] = new RecordingDevice { Fill = (byte)i };
            bus.Register((ushort)(i * 5), 3, devices[i], $"dev{i}");
        }
        Span<byte> d = stackalloc byte[1];
        for (var i = 0; i < devices.Length; i++)
        {
            bus.Read((ushort)(i * 5 + 2), d);
            Assert.Equal((byte)i, d[0]);
            bus.Read((ushort)(i * 5 + 3), d); // gap
            Assert.Equal(0xFF, d[0]);
        }
    }

    [Fact]
    public void DispatchAllocatesNothing()
    {
        var bus = new PortIoBus();
        var sink = new NullDevice();
        for (ushort p = 0; p < 64; p++)
        {
            bus.Register((ushort)(p * 16), 8, sink, "d" + p);
        }
        Span<byte> d = stackalloc byte[4];
        bus.Read(0x8, d); // warm up, and the first unclaimed access (logging path)
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            bus.Read((ushort)(i % 1024), d);
            bus.Write((ushort)(i % 1024), d);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private sealed class NullDevice : IPortIoHandler, IMmioHandler
    {
        public void PortRead(ushort offset, Span<byte> data) => data.Clear();
        public void PortWrite(ushort offset, ReadOnlySpan<byte> data) { }
        public void MmioRead(ulong offset, Span<byte> data) => data.Clear();
        public void MmioWrite(ulong offset, ReadOnlySpan<byte> data) { }
    }
}

public class MmioBusTests
{
    [Fact]
    public void DispatchesWithOffsetAndAllWidths()
    {
        var bus = new MmioBus();
        var dev = new RecordingDevice { Fill = 0xAB };
        bus.Register(0xFEC0_0000, 0x1000, dev, "ioapic");
        Span<byte> d = stackalloc byte[8];
        bus.Read(0xFEC0_0010, d);
        bus.Write(0xFEC0_0FFC, [1, 2, 3, 4]);
        Assert.Equal(["r10/8", "wFFC=01020304"], dev.Log);
        Assert.Equal(0xABABABABABABABABUL, BitConverter.ToUInt64(d));
    }

    [Fact]
    public void UnclaimedAccessIsAMasterAbortLoggedOncePerAddress()
    {
        var logger = new CountingLogger<MmioBus>();
        var bus = new MmioBus(logger);
        Span<byte> d = stackalloc byte[4];
        bus.Read(0xC000_0000, d);
        bus.Read(0xC000_0000, d);
        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(d));
        bus.Write(0xC000_0004, d);
        Assert.Equal(2, logger.Entries.Count);
    }

    [Fact]
    public void ARangeMayEndAtTheTopOfTheAddressSpace()
    {
        var bus = new MmioBus();
        var dev = new RecordingDevice();
        bus.Register(ulong.MaxValue - 0xFFF, 0x1000, dev, "top");
        bus.Write(ulong.MaxValue, [9]);
        Assert.Equal(["wFFF=09"], dev.Log);
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(ulong.MaxValue - 0xFFF, 0x1001, dev, "wraps"));
        Assert.Throws<BusConflictException>(() => bus.Register(ulong.MaxValue - 0x1FFF, 0x1001, dev, "overlaps"));
    }
}

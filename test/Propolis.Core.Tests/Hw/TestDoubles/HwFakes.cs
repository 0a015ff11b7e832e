using Propolis.Core.Hw.Chipset;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Intr;

namespace Propolis.Core.Tests.Hw.TestDoubles;

/// <summary>An IRQ line that records its level and counts pulses.</summary>
internal sealed class FakeIrqLine(uint gsi) : IIrqLine
{
    private int _level;
    private int _pulses;

    public uint Gsi => gsi;
    public bool Level => Volatile.Read(ref _level) != 0;
    public int Pulses => Volatile.Read(ref _pulses);
    public int Rises { get; private set; }

    public void SetLevel(bool asserted)
    {
        if (asserted && _level == 0)
            Rises++;
        Volatile.Write(ref _level, asserted ? 1 : 0);
    }

    public void Pulse() => Interlocked.Increment(ref _pulses);
}

/// <summary>Sixteen fake ISA lines behind an <see cref="IsaIrqLines"/>.</summary>
internal sealed class FakeIsa
{
    public FakeIrqLine[] Lines { get; } = Enumerable.Range(0, 16).Select(i => new FakeIrqLine((uint)i)).ToArray();
    public IsaIrqLines Irqs { get; }

    public FakeIsa() => Irqs = new IsaIrqLines(gsi => Lines[gsi]);
}

internal sealed class FakeMsiSink : IMsiSink
{
    public List<(ulong Address, uint Data)> Messages { get; } = [];

    public bool SignalMsi(ulong address, uint data)
    {
        lock (Messages)
            Messages.Add((address, data));
        return true;
    }
}

internal sealed class FakeMachineControl : IMachineControl
{
    public List<string> Resets { get; } = [];
    public List<string> PowerOffs { get; } = [];

    public void RequestReset(string reason) => Resets.Add(reason);
    public void RequestPowerOff(string reason) => PowerOffs.Add(reason);
}

/// <summary>A clock the test moves by hand: wall time, a monotonic timestamp (100 ns ticks), and
/// timers that fire (on the calling thread) when <see cref="Advance"/> passes their due time.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now = start;
    private long _timestamp = 1_000_000;

    public override DateTimeOffset GetUtcNow() => _now;
    public override long GetTimestamp() => _timestamp;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public int ActiveTimers => _timers.Count(t => t.Due != null);

    public void Advance(TimeSpan by)
    {
        var end = _timestamp + by.Ticks;
        while (true)
        {
            var next = _timers.Where(t => t.Due is { } d && d <= end).OrderBy(t => t.Due).FirstOrDefault();
            if (next == null)
                break;
            var step = next.Due!.Value - _timestamp;
            if (step > 0)
            {
                _timestamp += step;
                _now += TimeSpan.FromTicks(step);
            }
            next.Due = null;
            next.Callback(next.State);
        }
        _now += TimeSpan.FromTicks(end - _timestamp);
        _timestamp = end;
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var t = new ManualTimer(this, callback, state);
        t.Change(dueTime, period);
        _timers.Add(t);
        return t;
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public long? Due;
        public TimerCallback Callback => callback;
        public object? State => state;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner._timestamp + Math.Max(dueTime.Ticks, 0);
            return true;
        }

        public void Dispose() => Due = null;
        public ValueTask DisposeAsync() { Due = null; return ValueTask.CompletedTask; }
    }
}

using System.Collections.Concurrent;
using Propolis.Core.Buses;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Vmm;

/// <summary>A scripted vCPU: Run returns queued exits, and blocks (as a halted guest would)
/// until an exit is queued or it is kicked.</summary>
internal sealed class FakeVcpu(int id) : IVcpu
{
    public sealed record Step(VcpuExitKind Kind, ushort Port = 0, ulong Address = 0, int Size = 1, int Count = 1, byte[]? Data = null);

    private readonly ConcurrentQueue<Step> _script = new();
    private readonly SemaphoreSlim _signal = new(0);
    private int _kicked;
    public int Runs;
    public int BoundThread;

    public int Id => id;

    public void Enqueue(Step step)
    {
        _script.Enqueue(step);
        _signal.Release();
    }

    public void BindToCurrentThread() => BoundThread = Environment.CurrentManagedThreadId;

    public VcpuExit Run()
    {
        Interlocked.Increment(ref Runs);
        while (true)
        {
            if (Interlocked.Exchange(ref _kicked, 0) == 1)
            {
                return new VcpuExit { Kind = VcpuExitKind.Interrupted };
            }
            if (_script.TryDequeue(out var s))
            {
                return new VcpuExit { Kind = s.Kind, Port = s.Port, Address = s.Address, Size = s.Size, Count = s.Count, Data = s.Data };
            }
            _signal.Wait();
        }
    }

    public void Kick()
    {
        Volatile.Write(ref _kicked, 1);
        _signal.Release();
    }

    public string DumpState() => $"FAKE DUMP {id}";

    public ulong Rflags = X86.RFLAGS_RESERVED1;
    public GeneralRegisters GetGeneralRegisters() => new() { Rflags = Rflags };
    public void SetGeneralRegisters(in GeneralRegisters regs) { }
    public SpecialRegisters GetSpecialRegisters() => default;
    public void SetSpecialRegisters(in SpecialRegisters sregs) { }
    public void SetFpu(in FpuControl fpu) => Fpu = fpu;
    public CpuidEntry[] Cpuid = [];
    public MsrValue[] Msrs = [];
    public volatile VcpuMpState MpState = VcpuMpState.Runnable;
    public bool VirtualWire;
    public FpuControl Fpu;
    public void SetCpuid(ReadOnlySpan<CpuidEntry> entries) => Cpuid = entries.ToArray();
    public void SetMsrs(ReadOnlySpan<MsrValue> msrs) => Msrs = msrs.ToArray();
    public ulong GetMsr(uint index) => 0;
    public VcpuMpState GetMpState() => MpState;
    public void SetMpState(VcpuMpState state) => MpState = state;
    public void ConfigureLocalApicVirtualWire() => VirtualWire = true;
    public readonly List<(uint, ulong)> MsrWrites = [];
    public int ResetStateSaves, Resets;
    public bool TrySetMsr(uint index, ulong value)
    {
        MsrWrites.Add((index, value));
        return index != 0x12; // pretend the legacy kvmclock MSR is not implemented
    }
    public void SaveResetState() => ResetStateSaves++;
    public void Reset() => Resets++;
    public void Dispose() => _signal.Dispose();
}

internal sealed class QueueDevice : IPortIoHandler, IMmioHandler
{
    public readonly BlockingCollection<string> Seen = [];
    public bool Throw;

    public void PortRead(ushort offset, Span<byte> data)
    {
        data.Fill((byte)(0xA0 + offset));
        Seen.Add($"in {offset:X}/{data.Length}");
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        if (Throw)
        {
            throw new InvalidOperationException("device exploded");
        }
        Seen.Add($"out {offset:X}={Convert.ToHexString(data)}");
    }

    public void MmioRead(ulong offset, Span<byte> data)
    {
        data.Fill(0xEE);
        Seen.Add($"mr {offset:X}/{data.Length}");
    }

    public void MmioWrite(ulong offset, ReadOnlySpan<byte> data) => Seen.Add($"mw {offset:X}={Convert.ToHexString(data)}");
}

internal sealed class QueueSink : IVcpuEventSink
{
    public readonly BlockingCollection<VcpuEvent> Events = [];

    public void OnVcpuEvent(VcpuEvent vcpuEvent) => Events.Add(vcpuEvent);
}

public sealed class VcpuRunnerTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly FakeVcpu _v0 = new(0), _v1 = new(1);
    private readonly PortIoBus _pio = new();
    private readonly MmioBus _mmio = new();
    private readonly QueueDevice _dev = new();
    private readonly QueueSink _sink = new();
    private readonly VcpuRunner _runner;

    public VcpuRunnerTests()
    {
        _pio.Register(0x3F8, 8, _dev, "com1");
        _mmio.Register(0xFEB0_0000, 0x1000, _dev, "dev");
        _runner = new VcpuRunner([_v0, _v1], _pio, _mmio, _sink);
        _runner.Start();
    }

    public void Dispose() => _runner.Stop();

    private string Next()
    {
        Assert.True(_dev.Seen.TryTake(out var s, Timeout), "the device saw nothing");
        return s!;
    }

    private VcpuEvent NextEvent()
    {
        Assert.True(_sink.Events.TryTake(out var e, Timeout), "no vCPU event");
        return e!;
    }

    [Fact]
    public void StringIoIsSplitIntoAccessesAndInFillsTheExitBuffer()
    {
        _runner.Resume();
        _v0.Enqueue(new(VcpuExitKind.IoOut, Port: 0x3F8, Size: 2, Count: 3, Data: [1, 2, 3, 4, 5, 6]));
        Assert.Equal("out 0=0102", Next());
        Assert.Equal("out 0=0304", Next());
        Assert.Equal("out 0=0506", Next());
        var inBuffer = new byte[2];
        _v1.Enqueue(new(VcpuExitKind.IoIn, Port: 0x3F9, Size: 1, Count: 2, Data: inBuffer));
        Assert.Equal("in 1/1", Next());
        Assert.Equal("in 1/1", Next());
        var mmioBuffer = new byte[4];
        _v0.Enqueue(new(VcpuExitKind.MmioRead, Address: 0xFEB0_0010, Size: 4, Data: mmioBuffer));
        Assert.Equal("mr 10/4", Next());
        _v0.Enqueue(new(VcpuExitKind.MmioWrite, Address: 0xFEB0_0FF8, Size: 8, Data: [1, 0, 0, 0, 0, 0, 0, 0x80]));
        Assert.Equal("mw FF8=0100000000000080", Next());
        _runner.Pause();
        Assert.Equal([0xA1, 0xA1], inBuffer);
        Assert.Equal([0xEE, 0xEE, 0xEE, 0xEE], mmioBuffer);
        Assert.NotEqual(0, _v0.BoundThread);
        Assert.NotEqual(_v0.BoundThread, _v1.BoundThread);
    }

    [Fact]
    public void HaltProbeReportsOnceWhenEveryVcpuIsHaltedWithInterruptsOff()
    {
        _runner.Resume();
        // vCPU 0 halted with interrupts off (stop_this_cpu); vCPU 1 idle in HLT with IF=1.
        _v0.MpState = VcpuMpState.Halted;
        _v1.MpState = VcpuMpState.Halted;
        _v1.Rflags = X86.RFLAGS_RESERVED1 | X86.RFLAGS_IF;
        _runner.RequestHaltProbe();
        Assert.False(_sink.Events.TryTake(out _, TimeSpan.FromMilliseconds(300)), "an idle vCPU is not a halted guest");

        _v1.Rflags = X86.RFLAGS_RESERVED1;
        _runner.RequestHaltProbe();
        var e = NextEvent();
        Assert.Equal(VcpuEventKind.Halted, e.Kind);
        Assert.Contains("every vCPU is halted", e.Detail);
        _runner.RequestHaltProbe();
        Assert.False(_sink.Events.TryTake(out _, TimeSpan.FromMilliseconds(300)), "reported twice");
    }

    [Fact]
    public void AnApNeverStartedCountsAsHaltedOnceTheBspIs()
    {
        _runner.Resume();
        _v1.MpState = VcpuMpState.Uninitialized;
        _runner.RequestHaltProbe();
        Assert.False(_sink.Events.TryTake(out _, TimeSpan.FromMilliseconds(300)), "the BSP still runs");
        _v0.MpState = VcpuMpState.Halted;
        _runner.RequestHaltProbe();
        Assert.Equal(VcpuEventKind.Halted, NextEvent().Kind);
    }

    [Fact]
    public void ThreadStartedRunsOnEachVcpuThreadAndAFailureIsFatal()
    {
        var v0 = new FakeVcpu(0);
        var v1 = new FakeVcpu(1);
        var sink = new QueueSink();
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var runner = new VcpuRunner([v0, v1], _pio, _mmio, sink)
        {
            ThreadStarted = i =>
            {
                seen[i] = Environment.CurrentManagedThreadId;
                if (i == 1)
                    throw new HypervisorException("cannot pin");
            },
        };
        runner.Start();
        try
        {
            Assert.Equal([0, 1], seen.Keys.Order());
            Assert.Equal(v0.BoundThread, seen[0]);
            Assert.True(sink.Events.TryTake(out var e, Timeout));
            Assert.Equal((1, VcpuEventKind.Fatal), (e!.VcpuId, e.Kind));
            Assert.Contains("cannot pin", e.Detail);
        }
        finally
        {
            runner.Stop();
        }
    }

    [Fact]
    public void PausedVcpusDoNotRunUntilResumed()
    {
        // Start() leaves the vCPUs parked.
        _v0.Enqueue(new(VcpuExitKind.IoOut, Port: 0x3F8, Data: [0x42]));
        Assert.False(_dev.Seen.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        Assert.Equal(0, _v0.Runs);
        _runner.Resume();
        Assert.Equal("out 0=42", Next());
        _runner.Pause(); // both vCPUs are blocked in Run: Pause must kick them out
        var runs = _v0.Runs;
        _v0.Enqueue(new(VcpuExitKind.IoOut, Port: 0x3F8, Data: [0x43]));
        Assert.False(_dev.Seen.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        Assert.Equal(runs, _v0.Runs);
        _runner.Resume();
        Assert.Equal("out 0=43", Next());
    }

    [Fact]
    public void AGuestEventIsReportedAndParksOnlyThatVcpu()
    {
        _runner.Resume();
        _v0.Enqueue(new(VcpuExitKind.PowerOff));
        var e = NextEvent();
        Assert.Equal((0, VcpuEventKind.PowerOff), (e.VcpuId, e.Kind));
        // vCPU 0 is parked: its next exit waits; vCPU 1 still runs.
        _v0.Enqueue(new(VcpuExitKind.IoOut, Port: 0x3F8, Data: [0x10]));
        _v1.Enqueue(new(VcpuExitKind.IoOut, Port: 0x3F8, Data: [0x11]));
        Assert.Equal("out 0=11", Next());
        Assert.False(_dev.Seen.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        // Pause counts the self-parked vCPU as parked; Resume releases it.
        _runner.Pause();
        _runner.Resume();
        Assert.Equal("out 0=10", Next());
    }

    [Theory]
    [InlineData(VcpuExitKind.Reset, VcpuEventKind.Reset, false)]
    [InlineData(VcpuExitKind.TripleFault, VcpuEventKind.TripleFault, true)]
    [InlineData(VcpuExitKind.Halt, VcpuEventKind.Halted, false)]
    [InlineData(VcpuExitKind.Crash, VcpuEventKind.GuestCrash, true)]
    [InlineData(VcpuExitKind.InternalError, VcpuEventKind.Fatal, true)]
    [InlineData(VcpuExitKind.FailedEntry, VcpuEventKind.Fatal, true)]
    [InlineData(VcpuExitKind.Unhandled, VcpuEventKind.Fatal, true)]
    public void ExitsMapToLifecycleEvents(VcpuExitKind exit, VcpuEventKind expected, bool dumpsRegisters)
    {
        _runner.Resume();
        _v1.Enqueue(new(exit));
        var e = NextEvent();
        Assert.Equal((1, expected), (e.VcpuId, e.Kind));
        Assert.Equal(dumpsRegisters, e.Detail.Contains("FAKE DUMP 1"));
    }

    [Fact]
    public void AThrowingDeviceIsAFatalEventNotADeadThread()
    {
        _dev.Throw = true;
        _runner.Resume();
        _v0.Enqueue(new(VcpuExitKind.IoOut, Port: 0x3F8, Data: [1]));
        var e = NextEvent();
        Assert.Equal(VcpuEventKind.Fatal, e.Kind);
        Assert.Contains("device exploded", e.Detail);
        Assert.Contains("FAKE DUMP 0", e.Detail);
        _dev.Throw = false;
        _runner.Pause();
        _runner.Resume();
        _v0.Enqueue(new(VcpuExitKind.IoOut, Port: 0x3F8, Data: [2]));
        Assert.Equal("out 0=02", Next());
    }

    [Fact]
    public async Task StopEndsThreadsFromAnyState()
    {
        _runner.Resume();
        _v0.Enqueue(new(VcpuExitKind.PowerOff));
        NextEvent();
        await Task.Run(_runner.Stop).WaitAsync(Timeout);
        Assert.Throws<InvalidOperationException>(_runner.Resume);
    }
}

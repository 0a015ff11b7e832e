using Propolis.Core.Lifecycle;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Lifecycle;

/// <summary>The instance state machine against a recording board and devices.</summary>
public sealed class InstanceTests
{
    /// <summary>Records every hook in one shared journal; can be told to fail one hook.</summary>
    private sealed class Journal
    {
        private readonly List<string> _entries = [];
        public void Add(string entry)
        {
            lock (_entries)
                _entries.Add(entry);
        }
        public string[] Entries
        {
            get { lock (_entries) return [.. _entries]; }
        }
    }

    private sealed class Board(Journal journal) : IVcpuControl
    {
        public Action? OnResume;
        public Action? OnProbe;
        public bool FailReset;
        public int Probes;
        public void Start() => journal.Add("vcpus.start");
        public void Resume()
        {
            journal.Add("vcpus.resume");
            OnResume?.Invoke();
        }
        public void Pause() => journal.Add("vcpus.pause");
        public void Reset()
        {
            journal.Add("board.reset");
            if (FailReset)
                throw new IOException("kernel gone");
        }
        public void Stop() => journal.Add("vcpus.stop");
        public void ProbeHalted()
        {
            Interlocked.Increment(ref Probes);
            OnProbe?.Invoke();
        }
    }

    private sealed class Device(string name, Journal journal) : ILifecycle
    {
        public string Name => name;
        public void Start() => journal.Add(name + ".start");
        public void Pause() => journal.Add(name + ".pause");
        public void Resume() => journal.Add(name + ".resume");
        public void Reset() => journal.Add(name + ".reset");
        public void Halt() => journal.Add(name + ".halt");
    }

    private sealed class Bare : ILifecycle
    {
        public string Name => "bare";
    }

    private static (Instance, Board, Journal) Build(RebootPolicy policy = RebootPolicy.ResetInPlace)
    {
        var journal = new Journal();
        var board = new Board(journal);
        var instance = new Instance(board, [new Device("a", journal), new Device("b", journal)], policy)
        {
            HaltProbeInterval = TimeSpan.FromMilliseconds(20),
        };
        return (instance, board, journal);
    }

    [Fact]
    public void GuestHaltStopsInOrderAndReportsHalted()
    {
        var (instance, board, journal) = Build();
        board.OnResume = () => instance.Post(new InstanceEvent(InstanceEventKind.GuestHalt, "poweroff", 0));
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.GuestHalted, outcome.Kind);
        Assert.Equal(InstanceState.Halt, instance.State);
        Assert.Equal(
            ["vcpus.start", "a.start", "b.start", "vcpus.resume", "vcpus.pause", "b.pause", "a.pause", "b.halt", "a.halt", "vcpus.stop"],
            journal.Entries);
    }

    [Fact]
    public void RebootResetsEverythingWhilePausedThenRunsAgain()
    {
        var (instance, board, journal) = Build();
        var resumes = 0;
        board.OnResume = () =>
        {
            resumes++;
            instance.Post(resumes == 1
                ? new InstanceEvent(InstanceEventKind.TripleFault, "triple fault", 0)
                : new InstanceEvent(InstanceEventKind.HostStop, "SIGINT"));
        };
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.HostStopped, outcome.Kind);
        Assert.Equal(1, instance.Resets);
        Assert.Equal(
            ["vcpus.start", "a.start", "b.start", "vcpus.resume",
             "vcpus.pause", "b.pause", "a.pause", "a.reset", "b.reset", "board.reset", "a.resume", "b.resume", "vcpus.resume",
             "vcpus.pause", "b.pause", "a.pause", "b.halt", "a.halt", "vcpus.stop"],
            journal.Entries);
    }

    [Fact]
    public void ResetEventsFromTheOldGuestAreDroppedButAStopIsKept()
    {
        var (instance, board, journal) = Build();
        var resumes = 0;
        board.OnResume = () =>
        {
            if (++resumes == 1)
            {
                // Both vCPUs report the reset, and the host asks to stop meanwhile.
                instance.Post(new InstanceEvent(InstanceEventKind.GuestReset, "kbd", 0));
                instance.Post(new InstanceEvent(InstanceEventKind.TripleFault, "late", 1));
                instance.Post(new InstanceEvent(InstanceEventKind.HostStop, "SIGTERM"));
            }
        };
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.HostStopped, outcome.Kind);
        Assert.Equal("SIGTERM", outcome.Detail);
        Assert.Equal(1, instance.Resets);
        Assert.Single(journal.Entries, e => e == "board.reset");
    }

    [Fact]
    public void RebootWithStopPolicyHaltsAndReportsRebooted()
    {
        var (instance, board, journal) = Build(RebootPolicy.Stop);
        board.OnResume = () => instance.Post(new InstanceEvent(InstanceEventKind.GuestReset, "kbd", 0));
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.GuestRebooted, outcome.Kind);
        Assert.DoesNotContain("board.reset", journal.Entries);
        Assert.Equal("vcpus.stop", journal.Entries[^1]);
    }

    [Fact]
    public void AStopBeforeRunHaltsDevicesWithoutStartingAnything()
    {
        var (instance, _, journal) = Build();
        instance.Post(new InstanceEvent(InstanceEventKind.HostStop, "SIGINT"));
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.HostStopped, outcome.Kind);
        Assert.Equal(["b.halt", "a.halt"], journal.Entries);
    }

    [Fact]
    public void ASecondStopIsIgnored()
    {
        var (instance, board, journal) = Build();
        board.OnResume = () =>
        {
            instance.Post(new InstanceEvent(InstanceEventKind.HostStop, "SIGINT"));
            instance.Post(new InstanceEvent(InstanceEventKind.HostStop, "SIGINT again"));
        };
        var outcome = instance.Run();
        Assert.Equal("SIGINT", outcome.Detail);
        Assert.Single(journal.Entries, e => e == "vcpus.stop");
    }

    [Fact]
    public void AFatalExitFailsTheInstanceAndStillHaltsDevices()
    {
        var (instance, board, journal) = Build();
        board.OnResume = () => instance.Post(new VcpuEvent(1, VcpuEventKind.Fatal, "KVM_EXIT_INTERNAL_ERROR"));
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.Failed, outcome.Kind);
        Assert.Equal("KVM_EXIT_INTERNAL_ERROR", outcome.Detail);
        Assert.Contains("a.halt", journal.Entries);
        Assert.Equal("vcpus.stop", journal.Entries[^1]);
    }

    [Fact]
    public void AFailedResetFailsTheInstance()
    {
        var (instance, board, journal) = Build();
        board.FailReset = true;
        board.OnResume = () => instance.Post(new InstanceEvent(InstanceEventKind.GuestReset, "kbd", 0));
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.Failed, outcome.Kind);
        Assert.Contains("kernel gone", outcome.Detail);
        Assert.Equal(["b.halt", "a.halt", "vcpus.stop"], journal.Entries[^3..]);
    }

    [Fact]
    public void AnIdleInstanceProbesForAHaltedGuest()
    {
        var (instance, board, _) = Build();
        board.OnProbe = () =>
        {
            if (board.Probes == 3)
                instance.Post(new VcpuEvent(0, VcpuEventKind.Halted, "every vCPU halted"));
        };
        var outcome = instance.Run();
        Assert.Equal(InstanceOutcomeKind.GuestHalted, outcome.Kind);
        Assert.Equal(3, board.Probes);
    }

    [Theory]
    [InlineData(VcpuEventKind.PowerOff, InstanceEventKind.GuestHalt)]
    [InlineData(VcpuEventKind.Halted, InstanceEventKind.GuestHalt)]
    [InlineData(VcpuEventKind.GuestCrash, InstanceEventKind.GuestHalt)]
    [InlineData(VcpuEventKind.Reset, InstanceEventKind.GuestReset)]
    [InlineData(VcpuEventKind.TripleFault, InstanceEventKind.TripleFault)]
    [InlineData(VcpuEventKind.Fatal, InstanceEventKind.Fatal)]
    public void VcpuEventsMapToInstanceEvents(VcpuEventKind vcpu, InstanceEventKind expected)
    {
        var e = Instance.FromVcpu(new VcpuEvent(2, vcpu, "detail"));
        Assert.Equal((expected, "detail", (int?)2), (e.Kind, e.Detail, e.VcpuId));
    }

    [Fact]
    public void HooksDefaultToNothing()
    {
        ILifecycle bare = new Bare();
        bare.Start();
        bare.Pause();
        bare.Resume();
        bare.Reset();
        bare.Halt();
        Assert.Equal("bare", bare.Name);
    }

    [Fact]
    public void AnInstanceRunsOnce()
    {
        var (instance, _, _) = Build();
        instance.Post(new InstanceEvent(InstanceEventKind.HostStop, "SIGINT"));
        instance.Run();
        Assert.Throws<InvalidOperationException>(() => instance.Run());
    }
}

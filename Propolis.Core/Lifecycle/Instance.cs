using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Vmm;

namespace Propolis.Core.Lifecycle;

/// <summary>What the instance does when the guest reboots.</summary>
public enum RebootPolicy
{
    /// <summary>Reset the machine in place and boot again.</summary>
    ResetInPlace,
    /// <summary>Stop the instance (propolis-standalone's <c>exit_on_reboot</c>).</summary>
    Stop,
}

/// <summary>The lifecycle state machine of one machine: Initialize → Run ⇄ (Quiesce → Reset)
/// → … → Quiesce → Halt. Events come from vCPU threads (power-off, reboot, triple fault, fatal
/// exits) and from the host (a signal), through <see cref="Post"/>; one driver thread, the one
/// that calls <see cref="Run"/>, performs every transition.</summary>
/// <remarks>
/// Ordering (as propolis's state driver): on the way down vCPUs are parked first, then devices
/// paused in reverse order; on the way up devices are resumed in order, then vCPUs let in. A
/// reset happens with everything paused: devices reset, then the board (memory, vCPUs, kernel
/// reload), then everything resumes. Events a previous incarnation of the guest posted before a
/// reset completed are dropped, except a host stop.
/// </remarks>
public sealed partial class Instance
{
    /// <summary>How often a running instance asks the vCPUs whether the guest halted for good.</summary>
    public static readonly TimeSpan DefaultHaltProbeInterval = TimeSpan.FromMilliseconds(250);

    private readonly IVcpuControl _board;
    private readonly IReadOnlyList<ILifecycle> _devices;
    private readonly RebootPolicy _rebootPolicy;
    private readonly ILogger _logger;
    private readonly Queue<InstanceEvent> _events = new();
    private readonly object _gate = new();
    private bool _stopRequested;
    private volatile InstanceState _state = InstanceState.Initialize;
    private int _resets;

    public Instance(IVcpuControl board, IReadOnlyList<ILifecycle> devices, RebootPolicy rebootPolicy, ILogger? logger = null)
    {
        _board = board ?? throw new ArgumentNullException(nameof(board));
        _devices = devices ?? throw new ArgumentNullException(nameof(devices));
        _rebootPolicy = rebootPolicy;
        _logger = logger ?? NullLogger.Instance;
    }

    public InstanceState State => _state;

    /// <summary>How many times the guest was reset in place.</summary>
    public int Resets => Volatile.Read(ref _resets);

    public TimeSpan HaltProbeInterval { get; init; } = DefaultHaltProbeInterval;

    /// <summary>Raised on the driver thread after every state change.</summary>
    public event Action<InstanceState>? StateChanged;

    /// <summary>Queues an event for the driver thread. Never blocks; callable from any thread.
    /// A second host stop while one is pending or in progress is logged and ignored.</summary>
    public void Post(InstanceEvent instanceEvent)
    {
        ArgumentNullException.ThrowIfNull(instanceEvent);
        lock (_gate)
        {
            if (instanceEvent.Kind == InstanceEventKind.HostStop)
            {
                if (_stopRequested)
                {
                    LogStopIgnored(instanceEvent.Detail);
                    return;
                }
                _stopRequested = true;
            }
            _events.Enqueue(instanceEvent);
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Translates a vCPU's report into an instance event and posts it.</summary>
    public void Post(VcpuEvent vcpuEvent)
    {
        ArgumentNullException.ThrowIfNull(vcpuEvent);
        Post(FromVcpu(vcpuEvent));
    }

    /// <summary>The instance event a vCPU event stands for.</summary>
    public static InstanceEvent FromVcpu(VcpuEvent e) => new(e.Kind switch
    {
        VcpuEventKind.PowerOff => InstanceEventKind.GuestHalt,
        VcpuEventKind.Halted => InstanceEventKind.GuestHalt,
        // A guest that reports its own crash stops running; like propolis, treat it as a halt.
        VcpuEventKind.GuestCrash => InstanceEventKind.GuestHalt,
        VcpuEventKind.Reset => InstanceEventKind.GuestReset,
        VcpuEventKind.TripleFault => InstanceEventKind.TripleFault,
        _ => InstanceEventKind.Fatal,
    }, e.Detail, e.VcpuId);

    /// <summary>Starts the machine and drives it until it halts; returns why. A host stop
    /// posted before this call halts the devices without starting anything.</summary>
    public InstanceOutcome Run()
    {
        if (_state != InstanceState.Initialize)
            throw new InvalidOperationException("an instance runs once");

        if (TryTake(TimeSpan.Zero) is { Kind: InstanceEventKind.HostStop } early)
        {
            LogEvent(early.Kind, early.VcpuId, early.Detail);
            HaltDevices();
            SetState(InstanceState.Halt);
            return new InstanceOutcome(InstanceOutcomeKind.HostStopped, early.Detail);
        }

        try
        {
            _board.Start();
            foreach (var d in _devices)
                d.Start();
            SetState(InstanceState.Run);
            _board.Resume();
        }
        catch (Exception e)
        {
            return Stop(new InstanceOutcome(InstanceOutcomeKind.Failed, $"the machine could not start: {e.Message}"), e);
        }

        while (true)
        {
            var next = TryTake(HaltProbeInterval);
            if (next is null)
            {
                try
                {
                    _board.ProbeHalted();
                }
                catch (Exception e)
                {
                    return Stop(new InstanceOutcome(InstanceOutcomeKind.Failed, $"probing the vCPUs failed: {e.Message}"), e);
                }
                continue;
            }
            LogEvent(next.Kind, next.VcpuId, next.Detail);
            switch (next.Kind)
            {
                case InstanceEventKind.HostStop:
                    return Stop(new InstanceOutcome(InstanceOutcomeKind.HostStopped, next.Detail), null);
                case InstanceEventKind.GuestHalt:
                    return Stop(new InstanceOutcome(InstanceOutcomeKind.GuestHalted, next.Detail), null);
                case InstanceEventKind.Fatal:
                    return Stop(new InstanceOutcome(InstanceOutcomeKind.Failed, next.Detail), null);
                case InstanceEventKind.GuestReset or InstanceEventKind.TripleFault:
                    if (_rebootPolicy == RebootPolicy.Stop)
                        return Stop(new InstanceOutcome(InstanceOutcomeKind.GuestRebooted, next.Detail), null);
                    if (ResetInPlace() is { } failed)
                        return failed;
                    break;
            }
        }
    }

    private InstanceEvent? TryTake(TimeSpan timeout)
    {
        lock (_gate)
        {
            if (_events.Count == 0 && timeout > TimeSpan.Zero)
                Monitor.Wait(_gate, timeout);
            return _events.Count > 0 ? _events.Dequeue() : null;
        }
    }

    /// <summary>Quiesce, reset, run again. Returns an outcome only when the reset failed.</summary>
    private InstanceOutcome? ResetInPlace()
    {
        try
        {
            Quiesce();
            SetState(InstanceState.Reset);
            foreach (var d in _devices)
                d.Reset();
            _board.Reset();
            // What the old guest posted (its other vCPUs' reset or halt reports) is history.
            lock (_gate)
            {
                var keep = _events.Where(e => e.Kind == InstanceEventKind.HostStop).ToArray();
                _events.Clear();
                foreach (var e in keep)
                    _events.Enqueue(e);
            }
            foreach (var d in _devices)
                d.Resume();
            Interlocked.Increment(ref _resets);
            SetState(InstanceState.Run);
            _board.Resume();
            LogReset(Resets);
            return null;
        }
        catch (Exception e)
        {
            return Stop(new InstanceOutcome(InstanceOutcomeKind.Failed, $"resetting the machine failed: {e.Message}"), e);
        }
    }

    private void Quiesce()
    {
        SetState(InstanceState.Quiesce);
        _board.Pause();
        for (var i = _devices.Count - 1; i >= 0; i--)
            _devices[i].Pause();
    }

    /// <summary>Quiesce (as far as possible), halt devices, end the vCPU threads.</summary>
    private InstanceOutcome Stop(InstanceOutcome outcome, Exception? cause)
    {
        if (cause is not null)
            LogFailure(cause, outcome.Detail);
        try
        {
            if (_state is InstanceState.Run or InstanceState.Reset)
                Quiesce();
        }
        catch (Exception e)
        {
            LogFailure(e, "pausing the machine for shutdown failed");
        }
        HaltDevices();
        try
        {
            _board.Stop();
        }
        catch (Exception e)
        {
            LogFailure(e, "stopping the vCPUs failed");
        }
        SetState(InstanceState.Halt);
        return outcome;
    }

    private void HaltDevices()
    {
        for (var i = _devices.Count - 1; i >= 0; i--)
        {
            try
            {
                _devices[i].Halt();
            }
            catch (Exception e)
            {
                LogFailure(e, $"halting {_devices[i].Name} failed");
            }
        }
    }

    private void SetState(InstanceState state)
    {
        _state = state;
        LogState(state);
        StateChanged?.Invoke(state);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "instance state: {State}")]
    private partial void LogState(InstanceState state);

    [LoggerMessage(Level = LogLevel.Information, Message = "instance event {Kind} (vCPU {VcpuId}): {Detail}")]
    private partial void LogEvent(InstanceEventKind kind, int? vcpuId, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "stop already in progress; ignoring {Detail}")]
    private partial void LogStopIgnored(string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "guest reset in place (reset #{Count}); booting again")]
    private partial void LogReset(int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "{What}")]
    private partial void LogFailure(Exception e, string what);
}

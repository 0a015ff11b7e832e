using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;

namespace Propolis.Core.Vmm;

/// <summary>What a vCPU reports to the machine's lifecycle.</summary>
public enum VcpuEventKind
{
    /// <summary>The guest asked for power-off.</summary>
    PowerOff,
    /// <summary>The guest asked for a reset.</summary>
    Reset,
    /// <summary>The guest triple-faulted; on a PC this resets the machine.</summary>
    TripleFault,
    /// <summary>The guest reported a crash (pvpanic-style) to the hypervisor.</summary>
    GuestCrash,
    /// <summary>The vCPU halted with no interrupt source that could wake it.</summary>
    Halted,
    /// <summary>The hypervisor or a device failed; <see cref="VcpuEvent.Detail"/> has a register dump.</summary>
    Fatal,
}

/// <summary>An event from one vCPU. <see cref="Detail"/> is for people (register dumps, errors).</summary>
public sealed record VcpuEvent(int VcpuId, VcpuEventKind Kind, string Detail);

/// <summary>Receives vCPU events. Called on the vCPU thread, which parks itself right after;
/// the sink must return promptly and must not call <see cref="VcpuRunner"/> methods from the
/// callback (hand the event to the lifecycle thread instead).</summary>
public interface IVcpuEventSink
{
    void OnVcpuEvent(VcpuEvent vcpuEvent);
}

/// <summary>One thread per vCPU, each looping in <see cref="IVcpu.Run"/> and dispatching I/O
/// and MMIO exits to the buses; pausing kicks every vCPU out of the guest and parks it.</summary>
/// <remarks>
/// States: a runner starts paused. <see cref="Resume"/> lets all vCPUs run; <see cref="Pause"/>
/// returns once every vCPU is parked outside the guest (so device state can be inspected or
/// reset); <see cref="Stop"/> ends the threads. A vCPU that reports an event parks itself until
/// the next <see cref="Resume"/>; the other vCPUs keep running until the lifecycle pauses them.
/// The exit path allocates nothing; a device that throws is reported as <see cref="VcpuEventKind.Fatal"/>
/// instead of killing the thread.
/// </remarks>
public sealed partial class VcpuRunner : IDisposable
{
    private enum State
    {
        Paused,
        Running,
        Stopping,
    }

    private readonly IReadOnlyList<IVcpu> _vcpus;
    private readonly PortIoBus _pio;
    private readonly MmioBus _mmio;
    private readonly IVcpuEventSink _sink;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Thread[] _threads;
    private volatile State _state = State.Paused;
    private int _generation;
    private int _parked;
    private int _live;
    // Halt probe (see RequestHaltProbe): per vCPU, a probe is pending / it was last seen halted
    // with interrupts off; the all-halted event is reported once.
    private readonly int[] _probePending;
    private readonly bool[] _haltedIrqsOff;
    private int _allHaltedReported;

    public VcpuRunner(IReadOnlyList<IVcpu> vcpus, PortIoBus pio, MmioBus mmio, IVcpuEventSink sink, ILogger<VcpuRunner>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(vcpus);
        _vcpus = vcpus;
        _pio = pio ?? throw new ArgumentNullException(nameof(pio));
        _mmio = mmio ?? throw new ArgumentNullException(nameof(mmio));
        _sink = sink ?? throw new ArgumentNullException(nameof(sink));
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _threads = new Thread[vcpus.Count];
        _probePending = new int[vcpus.Count];
        _haltedIrqsOff = new bool[vcpus.Count];
    }

    /// <summary>Called on each vCPU thread once, before it first enters the guest, with the vCPU
    /// index (host CPU pinning goes here). An exception is reported as a fatal vCPU event.</summary>
    public Action<int>? ThreadStarted { get; init; }

    /// <summary>Kicks every vCPU and has it check whether it is halted with interrupts disabled
    /// (HLT with RFLAGS.IF = 0: only NMI, INIT or SMI can wake it). With an in-kernel local
    /// APIC such a HLT never exits to user space, which is how a Linux guest without ACPI ends
    /// <c>poweroff</c> and <c>halt</c> (every CPU in <c>stop_this_cpu</c>). When every vCPU was
    /// found so (or still waiting for INIT/SIPI), one <see cref="VcpuEventKind.Halted"/> event is reported.</summary>
    public void RequestHaltProbe()
    {
        if (_state != State.Running)
        {
            return;
        }
        for (var i = 0; i < _vcpus.Count; i++)
        {
            Volatile.Write(ref _probePending[i], 1);
            _vcpus[i].Kick();
        }
    }

    /// <summary>On the vCPU thread after a kick: records whether this vCPU is halted with
    /// interrupts off; true if every vCPU now is (and nobody has reported it yet).</summary>
    private bool ProbeHalt(IVcpu vcpu, int index)
    {
        if (Interlocked.Exchange(ref _probePending[index], 0) == 0)
        {
            return false;
        }
        // An AP still waiting for INIT/SIPI (the guest never started it, e.g. nosmp) counts as
        // halted: once every other vCPU is, nobody is left to send it one.
        var state = vcpu.GetMpState();
        var halted = state is VcpuMpState.Uninitialized or VcpuMpState.InitReceived
            || (state == VcpuMpState.Halted && (vcpu.GetGeneralRegisters().Rflags & X86.RFLAGS_IF) == 0);
        lock (_gate)
        {
            _haltedIrqsOff[index] = halted;
            if (!halted || Array.IndexOf(_haltedIrqsOff, false) >= 0)
            {
                return false;
            }
        }
        return Interlocked.Exchange(ref _allHaltedReported, 1) == 0;
    }

    /// <summary>Starts the vCPU threads, parked. Call <see cref="Resume"/> to enter the guest.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_live != 0 || _threads[0] is not null)
            {
                throw new InvalidOperationException("the vCPU threads are already started");
            }
            _live = _vcpus.Count;
        }
        for (var i = 0; i < _vcpus.Count; i++)
        {
            var vcpu = _vcpus[i];
            var index = i;
            _threads[i] = new Thread(() => ThreadMain(vcpu, index))
            {
                Name = "vcpu" + vcpu.Id.ToString(CultureInfo.InvariantCulture),
                IsBackground = true,
            };
            _threads[i].Start();
        }
        WaitAllParked();
    }

    /// <summary>Lets every vCPU (including ones parked after an event) run.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            if (_state == State.Stopping)
            {
                throw new InvalidOperationException("the vCPUs are stopped");
            }
            _state = State.Running;
            _generation++;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Kicks every vCPU out of the guest and returns when all are parked.</summary>
    public void Pause()
    {
        lock (_gate)
        {
            if (_state == State.Stopping)
            {
                return;
            }
            _state = State.Paused;
        }
        foreach (var v in _vcpus)
        {
            v.Kick();
        }
        WaitAllParked();
    }

    /// <summary>Ends the vCPU threads (from any state) and waits for them.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _state = State.Stopping;
            Monitor.PulseAll(_gate);
        }
        foreach (var v in _vcpus)
        {
            v.Kick();
        }
        foreach (var t in _threads)
        {
            t?.Join();
        }
    }

    private void WaitAllParked()
    {
        lock (_gate)
        {
            while (_parked < _live)
            {
                Monitor.Wait(_gate);
            }
        }
    }

    private void ThreadMain(IVcpu vcpu, int index)
    {
        var selfParkedAt = -1; // generation in which this vCPU parked itself after an event
        try
        {
            vcpu.BindToCurrentThread();
            ThreadStarted?.Invoke(index);
        }
        catch (Exception e)
        {
            Report(vcpu, VcpuEventKind.Fatal, $"vCPU {vcpu.Id} could not be set up on its thread: {e.Message}");
            selfParkedAt = int.MaxValue;
        }

        while (true)
        {
            if (_state != State.Running || selfParkedAt >= 0)
            {
                lock (_gate)
                {
                    _parked++;
                    Monitor.PulseAll(_gate);
                    while (_state != State.Stopping && (_state == State.Paused || selfParkedAt >= _generation))
                    {
                        Monitor.Wait(_gate);
                    }
                    _parked--;
                    if (_state == State.Stopping)
                    {
                        _live--;
                        Monitor.PulseAll(_gate);
                        return;
                    }
                    selfParkedAt = -1;
                }
            }

            VcpuEventKind kind;
            string detail;
            try
            {
                var exit = vcpu.Run();
                if (exit.Kind == VcpuExitKind.Interrupted && ProbeHalt(vcpu, index))
                {
                    kind = VcpuEventKind.Halted;
                    detail = "every vCPU is halted with interrupts disabled (the guest halted or powered off)";
                }
                else if (Dispatch(ref exit, out kind, out detail))
                {
                    continue;
                }
            }
            catch (Exception e)
            {
                kind = VcpuEventKind.Fatal;
                detail = $"device or hypervisor failure while running vCPU {vcpu.Id}: {e}";
            }

            if (kind is VcpuEventKind.Fatal or VcpuEventKind.TripleFault or VcpuEventKind.GuestCrash)
            {
                detail += "\n" + SafeDump(vcpu);
            }
            lock (_gate)
            {
                selfParkedAt = _generation;
            }
            Report(vcpu, kind, detail);
        }
    }

    /// <summary>Handles one exit. True if the vCPU should simply run again.</summary>
    private bool Dispatch(ref VcpuExit exit, out VcpuEventKind kind, out string detail)
    {
        kind = default;
        detail = "";
        switch (exit.Kind)
        {
            case VcpuExitKind.IoIn:
                for (var i = 0; i < exit.Count; i++)
                {
                    _pio.Read(exit.Port, exit.Data.Slice(i * exit.Size, exit.Size));
                }
                return true;
            case VcpuExitKind.IoOut:
                for (var i = 0; i < exit.Count; i++)
                {
                    _pio.Write(exit.Port, exit.Data.Slice(i * exit.Size, exit.Size));
                }
                return true;
            case VcpuExitKind.MmioRead:
                _mmio.Read(exit.Address, exit.Data);
                return true;
            case VcpuExitKind.MmioWrite:
                _mmio.Write(exit.Address, exit.Data);
                return true;
            case VcpuExitKind.Interrupted:
                return true;
            case VcpuExitKind.Halt:
                kind = VcpuEventKind.Halted;
                detail = "halted with interrupts not deliverable by the hypervisor";
                return false;
            case VcpuExitKind.PowerOff:
                kind = VcpuEventKind.PowerOff;
                detail = "guest requested power-off";
                return false;
            case VcpuExitKind.Reset:
                kind = VcpuEventKind.Reset;
                detail = "guest requested reset";
                return false;
            case VcpuExitKind.TripleFault:
                kind = VcpuEventKind.TripleFault;
                detail = "triple fault";
                return false;
            case VcpuExitKind.Crash:
                kind = VcpuEventKind.GuestCrash;
                detail = "guest reported a crash";
                return false;
            case VcpuExitKind.InternalError:
                kind = VcpuEventKind.Fatal;
                detail = $"hypervisor internal error (suberror {exit.Detail}{InternalErrorName(exit.Detail)})";
                return false;
            case VcpuExitKind.FailedEntry:
                kind = VcpuEventKind.Fatal;
                detail = $"VM entry failed, hardware reason 0x{exit.HardwareReason:X}";
                return false;
            case VcpuExitKind.RunFailed:
                kind = VcpuEventKind.Fatal;
                detail = $"running the vCPU failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(exit.Errno)} (errno {exit.Errno})";
                return false;
            default:
                kind = VcpuEventKind.Fatal;
                detail = $"unhandled exit (reason 0x{exit.HardwareReason:X})";
                return false;
        }
    }

    private static string InternalErrorName(uint suberror) => suberror switch
    {
        1 => ": instruction emulation failed",
        2 => ": exception while delivering an exception",
        3 => ": event delivery failed",
        4 => ": unexpected exit reason",
        _ => "",
    };

    private static string SafeDump(IVcpu vcpu)
    {
        try
        {
            return vcpu.DumpState();
        }
        catch (Exception e)
        {
            return $"(no register dump: {e.Message})";
        }
    }

    private void Report(IVcpu vcpu, VcpuEventKind kind, string detail)
    {
        LogEvent(vcpu.Id, kind, detail);
        try
        {
            _sink.OnVcpuEvent(new VcpuEvent(vcpu.Id, kind, detail));
        }
        catch (Exception e)
        {
            LogSinkFailed(e, vcpu.Id);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "vCPU {VcpuId}: {Kind}: {Detail}")]
    private partial void LogEvent(int vcpuId, VcpuEventKind kind, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "vCPU {VcpuId}: the event sink threw")]
    private partial void LogSinkFailed(Exception e, int vcpuId);

    public void Dispose() => Stop();
}

using System.Threading.Channels;

namespace Propolis.Crucible.Dsc;

/// <summary>A state report from a monitor to the main task (dsc <c>MonitorInfo</c>).</summary>
public readonly record struct MonitorInfo(int Port, int ClientId, DownstairsState State, int? Pid);

/// <summary>What the main task asks of a monitor (dsc <c>DownstairsAction</c>).</summary>
public enum DownstairsAction
{
    Start,
    Stop,
    DisableRestart,
    EnableRestart,
}

/// <summary>
/// Starts and watches one downstairs process (dsc <c>ds_start_monitor</c>): reports its state,
/// stops it on request (SIGTERM, then SIGKILL after <see cref="StopGrace"/>), and restarts it
/// when it ends if auto-restart is on or a start was asked for. A downstairs that exits on its
/// own with a status is Failed and is not restarted, not even by enabling auto-restart: only an
/// explicit start runs it again. One ended by a signal or a stop is Exit.
/// </summary>
internal sealed class DownstairsMonitor : IDisposable
{
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private readonly ChannelWriter<MonitorInfo> _reports;
    private readonly TextWriter _out;
    private readonly Channel<object> _inbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _dispose = new();
    private ChildProcess? _child;
    private bool _keepRunning;
    private bool _startOnce;
    private bool _stopRequested;
    private bool _failed;
    private Task? _loop;

    public DownstairsMonitor(DownstairsInfo info, ChannelWriter<MonitorInfo> reports, TextWriter stdout)
    {
        Info = info;
        _reports = reports;
        _out = stdout;
    }

    public DownstairsInfo Info { get; }

    /// <summary>Whether a process of this downstairs may still be alive.</summary>
    public bool HasChild => Volatile.Read(ref _child) is { HasExited: false };

    /// <summary>Starts the downstairs, then serves actions until disposed.</summary>
    public void Start()
    {
        _loop = Task.Run(async () =>
        {
            StartChild();
            await foreach (object item in _inbox.Reader.ReadAllAsync(_dispose.Token).ConfigureAwait(false))
            {
                Handle(item);
            }
        });
    }

    public void Post(DownstairsAction action) => _inbox.Writer.TryWrite(action);

    private sealed record ChildEnded(ChildProcess Child, ChildExit Exit);

    private sealed record KillDeadline(ChildProcess Child);

    private void Handle(object item)
    {
        switch (item)
        {
            case DownstairsAction.Start:
                _out.WriteLine($"[{Info.Port}] got start action");
                if (_child is null)
                {
                    _failed = false;
                    StartChild();
                }
                break;
            case DownstairsAction.Stop:
                _out.WriteLine($"[{Info.Port}] Got stop action so:{_startOnce} kr:{_keepRunning}");
                _startOnce = false;
                if (_child is { } c && !_stopRequested)
                {
                    _stopRequested = true;
                    Report(DownstairsState.Stopping, c.Pid);
                    if (!c.Signal(Interop.Sys.SIGTERM))
                    {
                        _out.WriteLine($"[{Info.Port}] Kill attempt: process {c.Pid} already gone");
                    }
                    _ = Task.Delay(StopGrace, _dispose.Token).ContinueWith(
                        _ => _inbox.Writer.TryWrite(new KillDeadline(c)), TaskContinuationOptions.OnlyOnRanToCompletion);
                }
                break;
            case DownstairsAction.DisableRestart:
                _keepRunning = false;
                _startOnce = false;
                _out.WriteLine($"[{Info.Port}] Disable keep_running");
                break;
            case DownstairsAction.EnableRestart:
                _keepRunning = true;
                _out.WriteLine($"[{Info.Port}] Enable  keep_running");
                if (_child is null && !_failed)
                {
                    StartChild();
                }
                break;
            case KillDeadline k:
                if (k.Child == _child && !k.Child.HasExited)
                {
                    _out.WriteLine($"[{Info.Port}] still running {StopGrace.TotalSeconds} s after SIGTERM, sending SIGKILL");
                    k.Child.Signal(Interop.Sys.SIGKILL);
                }
                break;
            case ChildEnded ended when ended.Child == _child:
                _out.WriteLine($"[{Info.Port}] Exited with: {ended.Exit}");
                DownstairsState state;
                if (_stopRequested || ended.Exit.Signal is not null)
                {
                    state = DownstairsState.Exit;
                }
                else
                {
                    // A problem in the downstairs: do not restart it, even if asked to.
                    _keepRunning = false;
                    _startOnce = false;
                    _failed = true;
                    state = DownstairsState.Failed;
                }
                _child = null;
                Report(state, null);
                if (_keepRunning || _startOnce)
                {
                    _out.WriteLine($"[{Info.Port}] I am going to restart");
                    _startOnce = false;
                    StartChild();
                }
                break;
        }
    }

    private void StartChild()
    {
        _out.WriteLine($"Starting downstairs at port {Info.Port}");
        Report(DownstairsState.Starting, null);
        _stopRequested = false;
        ChildProcess child;
        try
        {
            _out.WriteLine($"Make output file at \"{Info.OutputFile}\"");
            child = ChildProcess.Start(Info.DsBin, Info.RunArguments(), Info.OutputFile);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or UnauthorizedAccessException)
        {
            _out.WriteLine($"[{Info.Port}] Failed trying to run downstairs: {e.Message}");
            Report(DownstairsState.Error, null);
            return;
        }
        _child = child;
        _out.WriteLine($"Downstairs {Info.RegionDir} port {Info.Port} PID:Some({child.Pid})");
        Report(DownstairsState.Running, child.Pid);
        _ = child.Exited.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                _inbox.Writer.TryWrite(new ChildEnded(child, t.Result));
            }
            else
            {
                Report(DownstairsState.Error, null);
            }
        }, TaskScheduler.Default);
    }

    private void Report(DownstairsState state, int? pid) =>
        _reports.TryWrite(new MonitorInfo(Info.Port, Info.ClientId, state, pid));

    /// <summary>Stops serving actions and kills a process still running (dsc is going away).</summary>
    public void Dispose()
    {
        _dispose.Cancel();
        try
        {
            _loop?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        if (Volatile.Read(ref _child) is { HasExited: false } c)
        {
            c.Signal(Interop.Sys.SIGKILL);
        }
    }
}

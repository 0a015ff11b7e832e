using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sys = Propolis.Core.Interop.Interop.Sys;

namespace Propolis.Core.Vmm;

/// <summary>A thread that waits on a fixed set of <see cref="EventFd"/>s (ioeventfd doorbells)
/// and calls <c>handler(index)</c> for each one that was signalled, after consuming its count.
/// The handler runs on this thread only, one call at a time; it must not throw (a throw is
/// logged and the loop goes on). Allocation-free once started.</summary>
public sealed unsafe partial class EventFdWaiter : IDisposable
{
    private readonly EventFd[] _events;
    private readonly EventFd _stop = EventFd.Create();
    private readonly Action<int> _handler;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private readonly Propolis.Core.Interop.pollfd* _fds;
    private int _stopped;

    /// <param name="count">Event fds to create; <see cref="this[int]"/> hands them out for registration.</param>
    public EventFdWaiter(string name, int count, Action<int> handler, ILogger? logger = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentNullException.ThrowIfNull(handler);
        _handler = handler;
        _logger = logger ?? NullLogger.Instance;
        _events = new EventFd[count];
        for (var i = 0; i < count; i++)
        {
            _events[i] = EventFd.Create();
        }
        _fds = (Propolis.Core.Interop.pollfd*)NativeMemory.AllocZeroed((nuint)(count + 1), (nuint)sizeof(Propolis.Core.Interop.pollfd));
        for (var i = 0; i < count; i++)
        {
            _fds[i].fd = _events[i].Handle.Fd;
            _fds[i].events = Sys.POLLIN;
        }
        _fds[count].fd = _stop.Handle.Fd;
        _fds[count].events = Sys.POLLIN;
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public int Count => _events.Length;

    public EventFd this[int index] => _events[index];

    private void Loop()
    {
        var n = (nuint)(_events.Length + 1);
        while (Volatile.Read(ref _stopped) == 0)
        {
            var r = Sys.Poll(_fds, n, -1);
            if (r < 0)
            {
                continue;   // EINTR
            }
            if (_fds[_events.Length].revents != 0)
            {
                return;
            }
            for (var i = 0; i < _events.Length; i++)
            {
                if (_fds[i].revents == 0 || !_events[i].TryConsume(out _))
                {
                    continue;
                }
                try
                {
                    _handler(i);
                }
                catch (Exception e)
                {
                    LogHandlerThrew(_logger, _thread.Name ?? "", i, e);
                }
            }
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        _stop.Signal();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
        NativeMemory.Free(_fds);
        foreach (var e in _events)
        {
            e.Dispose();
        }
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Thread}: handler for event {Index} threw")]
    private static partial void LogHandlerThrew(ILogger logger, string thread, int index, Exception e);
}

using Propolis.Core.Hw.Pci;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Hw.TestDoubles;

/// <summary>An MSI sink with irqfd routes that record what they carry: messages signalled by this
/// process (<see cref="RouteSignals"/>), and for a route whose eventfd was handed out, the message
/// and mask it was last updated to (<see cref="Route.Current"/>).</summary>
internal sealed class RouteSink : IMsiSink, IMsiRouteSource
{
    public List<(ulong, uint)> Direct { get; } = [];
    public List<(ulong Address, uint Data)> RouteSignals { get; } = [];
    public List<Route> Routes { get; } = [];
    public int RoutesCreated => Routes.Count;

    public bool SignalMsi(ulong address, uint data)
    {
        lock (Direct) Direct.Add((address, data));
        return true;
    }

    public IMsiRoute CreateMsiRoute()
    {
        var r = new Route(this);
        Routes.Add(r);
        return r;
    }

    internal sealed class Route(RouteSink sink) : IMsiRoute, IDisposable
    {
        private EventFd? _fd;

        /// <summary>The last <see cref="Update"/>: the message the GSI carries and whether the irqfd is detached.</summary>
        public (ulong Address, uint Data, bool Masked)? Current { get; private set; }

        public EventFd? IrqFd => _fd ??= EventFd.Create();

        public bool Signal(ulong address, uint data)
        {
            lock (sink.RouteSignals) sink.RouteSignals.Add((address, data));
            return true;
        }

        public bool Update(ulong address, uint data, bool masked)
        {
            Current = (address, data, masked);
            return true;
        }

        public void Dispose() => _fd?.Dispose();
    }
}

/// <summary>Records ioeventfd registrations; a test signals a registered eventfd as KVM would.</summary>
internal sealed class FakeRegistrar : IIoEventRegistrar
{
    private readonly List<(EventFd Fd, IoEventSpace Space, ulong Address, int Length, ulong? Match)> _active = [];

    public List<(IoEventSpace Space, ulong Address, int Length, ulong? Match)> Active =>
        [.. _active.Select(a => (a.Space, a.Address, a.Length, a.Match))];

    public EventFd FdAt(IoEventSpace space, ulong address, ulong? match = null) =>
        _active.Single(a => a.Space == space && a.Address == address && (match is null || a.Match == match)).Fd;

    public bool TryRegister(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch)
    {
        Assert.DoesNotContain(_active, a => a.Space == space && a.Address == address && a.Length == length && a.Match == dataMatch);
        _active.Add((eventFd, space, address, length, dataMatch));
        return true;
    }

    public void Unregister(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) =>
        Assert.Equal(1, _active.RemoveAll(a => a.Fd == eventFd && a.Space == space && a.Address == address && a.Length == length && a.Match == dataMatch));
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Propolis.Core.Vmm;

/// <summary>Lets a device have guest writes to a doorbell address signal an <see cref="EventFd"/>
/// inside the hypervisor (KVM ioeventfd) instead of exiting to userspace.</summary>
public interface IIoEventRegistrar
{
    /// <summary>Watches <paramref name="length"/>-byte writes at <paramref name="address"/> (only
    /// those of value <paramref name="dataMatch"/> if given). False when the hypervisor refuses:
    /// the write then keeps reaching the device's trapped handler, which must stay correct.</summary>
    bool TryRegister(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch);

    void Unregister(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch);
}

/// <summary>One message-signalled interrupt vector delivered through an irqfd bound to a GSI
/// route that carries the vector's message (KVM_SET_GSI_ROUTING + KVM_IRQFD): signalling it is
/// one eventfd write from any thread, and the hypervisor injects the interrupt.</summary>
public interface IMsiRoute
{
    /// <summary>Delivers <paramref name="address"/>/<paramref name="data"/>; the route is
    /// reprogrammed first if the message differs from the last one. False if it could not be
    /// delivered this way (the caller falls back to a direct MSI).</summary>
    bool Signal(ulong address, uint data);

    /// <summary>The irqfd itself, for a producer outside this process (vhost) that signals the
    /// vector by writing it; the route must then be kept current with <see cref="Update"/>.
    /// Null if the route cannot be bound.</summary>
    EventFd? IrqFd { get; }

    /// <summary>Makes the route carry <paramref name="address"/>/<paramref name="data"/> now (not
    /// on the next <see cref="Signal"/>). While <paramref name="masked"/>, the irqfd is detached
    /// from its GSI, so writes to it accumulate in the eventfd; attaching it again delivers
    /// what accumulated (KVM checks the eventfd when an irqfd is assigned). False if the route
    /// cannot be bound.</summary>
    bool Update(ulong address, uint data, bool masked);
}

/// <summary>A machine's hypervisor-side event plumbing for devices: ioeventfds and irqfd MSI
/// routes, all remembered so that a machine that replaces its VM (a reset that builds a fresh
/// one) moves them with <see cref="Retarget"/>. Thread-safe.</summary>
public sealed partial class HypervisorEvents : IIoEventRegistrar, IDisposable
{
    private readonly object _gate = new();
    private readonly List<(EventFd Fd, IoEventSpace Space, ulong Address, int Length, ulong? DataMatch)> _ioEvents = [];
    private readonly List<MsiRoute> _routes = [];
    private readonly ILogger _logger;
    private IVm _vm;
    private bool _ioEventRefusedLogged;
    private bool _irqFdRefusedLogged;

    public HypervisorEvents(IVm vm, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        _vm = vm;
        _logger = logger ?? NullLogger.Instance;
    }

    public IVm Vm { get { lock (_gate) { return _vm; } } }

    /// <summary>Disables ioeventfds (tests, or a hypervisor known not to have them).</summary>
    public bool IoEventsEnabled { get; init; } = true;

    /// <summary>Disables irqfd MSI routes; MSIs then go through <see cref="IVm.SignalMsi"/>.</summary>
    public bool IrqFdsEnabled { get; init; } = true;

    /// <summary>Registrations currently held (ioeventfds, MSI routes bound to a GSI).</summary>
    public (int IoEvents, int MsiRoutes) Counts
    {
        get { lock (_gate) { return (_ioEvents.Count, _routes.Count(r => r.Bound)); } }
    }

    public bool TryRegister(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        if (!IoEventsEnabled)
        {
            return false;
        }
        lock (_gate)
        {
            try
            {
                _vm.RegisterIoEventFd(eventFd, space, address, length, dataMatch);
            }
            catch (Exception e) when (e is HypervisorException or Interop.ErrnoException or ArgumentException)
            {
                if (!_ioEventRefusedLogged)
                {
                    _ioEventRefusedLogged = true;
                    LogIoEventRefused(_logger, space, address, e.Message);
                }
                return false;
            }
            _ioEvents.Add((eventFd, space, address, length, dataMatch));
            return true;
        }
    }

    public void Unregister(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch)
    {
        lock (_gate)
        {
            var i = _ioEvents.FindIndex(x => x.Fd == eventFd && x.Space == space && x.Address == address && x.Length == length && x.DataMatch == dataMatch);
            if (i < 0)
            {
                return;
            }
            _ioEvents.RemoveAt(i);
            try
            {
                _vm.UnregisterIoEventFd(eventFd, space, address, length, dataMatch);
            }
            catch (Exception e) when (e is HypervisorException or Interop.ErrnoException)
            {
                LogUnregisterFailed(_logger, space, address, e.Message);
            }
        }
    }

    /// <summary>A route for one MSI vector; its GSI is allocated on the first signal. Never null:
    /// a route that cannot be bound reports false from <see cref="IMsiRoute.Signal"/>.</summary>
    public IMsiRoute CreateMsiRoute()
    {
        var route = new MsiRoute(this);
        lock (_gate)
        {
            _routes.Add(route);
        }
        return route;
    }

    /// <summary>Moves every registration to <paramref name="vm"/> (the old VM is about to be
    /// disposed with its registrations). MSI routes are bound again on their next signal.</summary>
    public void Retarget(IVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        lock (_gate)
        {
            _vm = vm;
            var kept = new List<(EventFd, IoEventSpace, ulong, int, ulong?)>();
            foreach (var (fd, space, address, length, match) in _ioEvents)
            {
                try
                {
                    vm.RegisterIoEventFd(fd, space, address, length, match);
                    kept.Add((fd, space, address, length, match));
                }
                catch (Exception e) when (e is HypervisorException or Interop.ErrnoException or ArgumentException)
                {
                    LogIoEventRefused(_logger, space, address, e.Message);
                }
            }
            _ioEvents.Clear();
            _ioEvents.AddRange(kept);
            foreach (var r in _routes)
            {
                r.Unbind();
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var r in _routes)
            {
                r.Dispose();
            }
            _routes.Clear();
        }
    }

    private sealed class MsiRoute(HypervisorEvents owner) : IMsiRoute, IDisposable
    {
        private EventFd? _fd;
        private IVm? _boundTo;
        private bool _attached;
        private uint _gsi;
        private ulong _address;
        private uint _data;
        private bool _failed;

        public bool Bound => _boundTo is not null;

        public bool Signal(ulong address, uint data)
        {
            // Serialised by the caller (the MSI-X capability's lock); binding takes the owner's gate.
            return Attach(address, data) && _fd!.Signal();
        }

        public EventFd? IrqFd
        {
            get
            {
                if (_failed || !owner.IrqFdsEnabled)
                {
                    return null;
                }
                lock (owner._gate)
                {
                    try
                    {
                        return _fd ??= EventFd.Create();
                    }
                    catch (Interop.ErrnoException)
                    {
                        return null;
                    }
                }
            }
        }

        public bool Update(ulong address, uint data, bool masked)
        {
            if (!masked)
            {
                return Attach(address, data);
            }
            lock (owner._gate)
            {
                if (_attached && ReferenceEquals(_boundTo, owner._vm))
                {
                    try
                    {
                        owner._vm.UnregisterIrqFd(_fd!, _gsi);
                    }
                    catch (Exception e) when (e is HypervisorException or Interop.ErrnoException)
                    {
                        LogIrqFdDetachFailed(owner._logger, _gsi, e.Message);
                    }
                }
                _attached = false;
                return !_failed;
            }
        }

        private bool Attach(ulong address, uint data)
        {
            if (_failed || !owner.IrqFdsEnabled)
            {
                return false;
            }
            var vm = Volatile.Read(ref owner._vm);
            if (!ReferenceEquals(_boundTo, vm) || !_attached || address != _address || data != _data)
            {
                return Bind(address, data);
            }
            return true;
        }

        private bool Bind(ulong address, uint data)
        {
            lock (owner._gate)
            {
                var vm = owner._vm;
                try
                {
                    _fd ??= EventFd.Create();
                    if (ReferenceEquals(_boundTo, vm))
                    {
                        if (address != _address || data != _data)
                        {
                            vm.SetMsiRoute(_gsi, address, data);
                        }
                        if (!_attached)
                        {
                            vm.RegisterIrqFd(_fd, _gsi);
                        }
                    }
                    else
                    {
                        _gsi = vm.AllocateMsiRoute(address, data);
                        vm.RegisterIrqFd(_fd, _gsi);
                        _boundTo = vm;
                    }
                    _attached = true;
                    _address = address;
                    _data = data;
                    return true;
                }
                catch (Exception e) when (e is HypervisorException or Interop.ErrnoException or ArgumentException)
                {
                    _failed = true;
                    if (!owner._irqFdRefusedLogged)
                    {
                        owner._irqFdRefusedLogged = true;
                        LogIrqFdRefused(owner._logger, e.Message);
                    }
                    return false;
                }
            }
        }

        /// <summary>The VM that held the binding is gone; bind again on the next signal or update.</summary>
        public void Unbind()
        {
            _boundTo = null;
            _attached = false;
        }

        public void Dispose()
        {
            _fd?.Dispose();
            _fd = null;
            _boundTo = null;
            _attached = false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "ioeventfd for a {Space} doorbell at 0x{Address:X} refused ({Reason}); doorbells there exit to userspace (logged once)")]
    private static partial void LogIoEventRefused(ILogger logger, IoEventSpace space, ulong address, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ioeventfd for {Space} 0x{Address:X} could not be removed: {Reason}")]
    private static partial void LogUnregisterFailed(ILogger logger, IoEventSpace space, ulong address, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "irqfd for MSI route GSI {Gsi} could not be detached while its vector is masked: {Reason}")]
    private static partial void LogIrqFdDetachFailed(ILogger logger, uint gsi, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "irqfd MSI routing refused ({Reason}); MSIs are delivered with KVM_SIGNAL_MSI (logged once)")]
    private static partial void LogIrqFdRefused(ILogger logger, string reason);
}

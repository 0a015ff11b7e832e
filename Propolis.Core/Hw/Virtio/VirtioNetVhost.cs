using Microsoft.Extensions.Logging;
using Propolis.Core.Net;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Virtio;

/// <summary>Hands a <see cref="VirtioNet"/>'s data queues to an in-kernel data path (vhost-net)
/// while the driver runs the device, and takes them back when it stops, pauses or resets it. The
/// control queue always stays with the device (receive modes, MAC table, queue pairs).</summary>
/// <remarks>
/// <para>Hand-over (DRIVER_OK, resume): per queue pair whose two queues the driver enabled, the
/// packet thread lets go of them (<see cref="VirtioNet.StopQueue"/>), and the kernel gets their
/// size, ring addresses and next avail index (<see cref="VirtQueue.Ring"/>), the eventfd both
/// doorbells signal (the kick), the irqfd of the queue's MSI-X vector (the call) and the pair's TAP
/// queue. Both kicks are then signalled once so that buffers made available meanwhile are seen.
/// If anything is missing (MSI-X off, a vector without an irqfd, a ring feature the kernel lacks)
/// or the kernel refuses, every queue stays with the packet threads and the log says why.</para>
/// <para>Take-back (reset, pause, teardown): the kernel unbinds the TAP and reports where each ring
/// stopped; the queue continues from there (<see cref="VirtQueue.RestoreLastAvailIndex"/>) in the
/// packet thread (<see cref="VirtioNet.StartQueue"/>), which is itself paused by a pause. At a
/// device reset the packet thread gets the queue only once it is reset (<see cref="ResetDone"/>).</para>
/// <para>Threads: called on a vCPU (DRIVER_OK, reset) or the lifecycle thread (pause, resume,
/// teardown) one at a time; a lock orders them anyway. Ring errors reported by the kernel break
/// the queue (DEVICE_NEEDS_RESET), so the driver resets the device.</para>
/// </remarks>
public sealed class VirtioNetVhost : IDisposable
{
    /// <summary>Negotiated features that change how the rings are read and written: the kernel
    /// must offer each of these that the driver negotiated.</summary>
    public const ulong RingFeatures = VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx | VirtioFeatures.Version1
        | VirtioFeatures.AnyLayout | VirtioNetSpec.FeatureMrgRxbuf;

    private readonly VirtioNet _net;
    private readonly IVhostNetBackend _vhost;
    private readonly INetBackend _backend;
    private readonly Func<int, EventFd?> _kick;
    private readonly Func<ushort, EventFd?> _call;
    private readonly Func<bool> _msixEnabled;
    private readonly ILogger? _logger;
    private readonly Lock _lock = new();
    private readonly bool[] _running;
    private bool _driverRunning;
    private bool _paused;
    private bool _disposed;

    /// <param name="kick">The eventfd the doorbells of data queue n signal (<see cref="PciVirtioNet.KickEventFd"/>).</param>
    /// <param name="call">The irqfd of an MSI-X vector (<see cref="PciVirtioFunction.VectorIrqFd"/>), null if none.</param>
    /// <param name="msixEnabled">Whether the function's MSI-X is enabled (with INTx there is no irqfd to give).</param>
    public VirtioNetVhost(VirtioNet net, IVhostNetBackend vhost, INetBackend backend,
        Func<int, EventFd?> kick, Func<ushort, EventFd?> call, Func<bool> msixEnabled, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(vhost);
        ArgumentNullException.ThrowIfNull(backend);
        _net = net;
        _vhost = vhost;
        _backend = backend;
        _kick = kick;
        _call = call;
        _msixEnabled = msixEnabled;
        _logger = logger;
        _running = new bool[Math.Min(net.MaxQueuePairs, vhost.Pairs)];
        vhost.RingError = OnRingError;
    }

    /// <summary>Queue pairs whose data queues are with the kernel now.</summary>
    public int RunningPairs
    {
        get
        {
            lock (_lock)
            {
                var n = 0;
                foreach (var r in _running)
                {
                    if (r) { n++; }
                }
                return n;
            }
        }
    }

    /// <summary>Why the last hand-over left the queues with the packet threads; null after one that worked.</summary>
    public string? FallbackReason { get; private set; }

    /// <summary>The driver set DRIVER_OK: hand the enabled pairs over (unless paused: then at resume).</summary>
    public void DriverOk()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _driverRunning = true;
            if (!_paused)
            {
                HandOverLocked(LogLevel.Information);
            }
        }
    }

    /// <summary>Device reset, first step: the kernel lets go of the rings, and the packet threads
    /// stay off them too, because the driver is discarding them; the device resets its queues and
    /// then calls <see cref="ResetDone"/>. Nothing goes to the kernel until the next DRIVER_OK.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _driverRunning = false;
            TakeBackLocked(restartQueues: false);
        }
    }

    /// <summary>Device reset, last step (the queues are reset): the packet threads may use the
    /// queues that were with the kernel again.</summary>
    public void ResetDone()
    {
        lock (_lock)
        {
            // Every pair is back from the kernel here: a queue still stopped is one Reset held back.
            for (var pair = 0; pair < _running.Length; pair++)
            {
                if (_net.IsQueueStopped(2 * pair))
                {
                    _net.StartQueue(2 * pair);
                    _net.StartQueue(2 * pair + 1);
                }
            }
        }
    }

    /// <summary>Lifecycle pause: the queues come back from the kernel (and the packet threads are paused by the device).</summary>
    public void Pause()
    {
        lock (_lock)
        {
            _paused = true;
            TakeBackLocked();
        }
    }

    /// <summary>Lifecycle resume: the queues go to the kernel again if the driver is running the device.</summary>
    public void Resume()
    {
        lock (_lock)
        {
            _paused = false;
            if (_driverRunning && !_disposed)
            {
                HandOverLocked(LogLevel.Debug);
            }
        }
    }

    private void HandOverLocked(LogLevel successLevel)
    {
        var features = _net.NegotiatedFeatures;
        var queues = _net.Queues;
        if (_vhost.CannotServe(features, RingFeatures) is { } unsupported)
        {
            Fallback(unsupported);
            return;
        }
        if (!_msixEnabled())
        {
            // Firmware drivers (OVMF) work this way: not worth a warning.
            Fallback("the driver uses INTx, not MSI-X, so the kernel has no irqfd to interrupt it with", LogLevel.Information);
            return;
        }
        var pairs = 0;
        // Without VIRTIO_NET_F_MQ queue 2 is the control queue: only pair 0 carries packets.
        var usable = (features & VirtioNetSpec.FeatureMq) != 0 ? _running.Length : 1;
        for (var pair = 0; pair < usable; pair++)
        {
            var rx = queues[2 * pair];
            var tx = queues[2 * pair + 1];
            if (rx.Ring is null || tx.Ring is null)
            {
                continue;   // the driver did not enable this pair (no MQ, or fewer pairs)
            }
            _net.StopQueue(2 * pair);
            _net.StopQueue(2 * pair + 1);
            try
            {
                // Read after the packet thread let go: its last_avail_idx is final now.
                var rxQueue = Describe(rx, 2 * pair);
                var txQueue = Describe(tx, 2 * pair + 1);
                _vhost.Start(pair, features, rxQueue, txQueue, _backend.QueueDescriptor(pair));
                _running[pair] = true;
                pairs++;
                // Buffers made available while the queues changed hands: the kernel looks now.
                rxQueue.Kick.Signal();
                txQueue.Kick.Signal();
            }
            catch (NetBackendException e)
            {
                _net.StartQueue(2 * pair);
                _net.StartQueue(2 * pair + 1);
                TakeBackLocked();
                Fallback(e.Message);
                return;
            }
        }
        if (pairs == 0)
        {
            Fallback("the driver enabled no queue pair");
            return;
        }
        FallbackReason = null;
        _logger?.Log(successLevel, "vhost-net: {Pairs} queue pair(s) moved by the kernel ({Backend}); the control queue stays here", pairs, _backend.Description);
    }

    private VhostQueue Describe(VirtQueue q, int index)
    {
        var ring = q.Ring ?? throw new NetBackendException($"queue {index} was disabled while it changed hands");
        var kick = _kick(index) ?? throw new NetBackendException($"queue {index} has no notify eventfd");
        EventFd? call = null;
        if (q.MsixVector != VirtioPciLayout.NoVector)
        {
            call = _call(q.MsixVector) ?? throw new NetBackendException($"MSI-X vector {q.MsixVector} of queue {index} has no irqfd (the hypervisor has no irqfd routes)");
        }
        return new VhostQueue(ring.Size, ring.DescriptorTable, ring.AvailRing, ring.UsedRing, ring.LastAvailIndex, kick, call);
    }

    private void Fallback(string reason, LogLevel level = LogLevel.Warning)
    {
        FallbackReason = reason;
        _logger?.Log(level, "vhost-net not used while this driver runs the device: {Reason}; the userspace packet threads move the frames", reason);
    }

    /// <param name="restartQueues">False at a device reset: the packet threads get the queues
    /// back only after they were reset (<see cref="ResetDone"/>), so that nothing reads or
    /// completes buffers of rings the driver is discarding.</param>
    private void TakeBackLocked(bool restartQueues = true)
    {
        var queues = _net.Queues;
        for (var pair = 0; pair < _running.Length; pair++)
        {
            if (!_running[pair])
            {
                continue;
            }
            _running[pair] = false;
            try
            {
                if (_vhost.Stop(pair) is { } stopped)
                {
                    queues[2 * pair].RestoreLastAvailIndex(stopped.Rx);
                    queues[2 * pair + 1].RestoreLastAvailIndex(stopped.Tx);
                }
            }
            catch (NetBackendException e)
            {
                // Where the kernel stopped is unknown: the driver must reset the device.
                queues[2 * pair].Break(e.Message);
                queues[2 * pair + 1].Break(e.Message);
            }
            if (restartQueues)
            {
                _net.StartQueue(2 * pair);
                _net.StartQueue(2 * pair + 1);
            }
        }
    }

    private void OnRingError(int queue)
    {
        var queues = _net.Queues;
        if ((uint)queue < (uint)queues.Length)
        {
            queues[queue].Break("vhost-net reported an error on this queue");
        }
    }

    /// <summary>Takes the queues back (teardown); the vhost backend's owner closes it afterwards.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            TakeBackLocked();
            _disposed = true;
        }
        _vhost.RingError = null;
    }
}

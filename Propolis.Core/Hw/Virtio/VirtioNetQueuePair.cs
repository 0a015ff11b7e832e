using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Propolis.Core.Interop;
using Propolis.Core.Vmm;
using Iovec = Propolis.Core.Interop.Interop.BlockIo.Iovec;
using Tun = Propolis.Core.Interop.Interop.Tun;

namespace Propolis.Core.Hw.Virtio;

/// <summary>One virtio-net queue pair and the thread that moves its frames between the guest's
/// rings and one backend descriptor (see <see cref="VirtioNet"/> for the design).</summary>
/// <remarks>
/// Everything here runs on the pair's thread except <see cref="Configure"/>, <see cref="Quiesce"/>,
/// <see cref="Wake"/> and <see cref="Dispose"/>. The thread holds <c>_ioLock</c> while it
/// processes a batch (non-blocking I/O only, bounded by the batch budgets), so a device reset
/// on a vCPU thread can wait for the batch to end and then drop the buffers the thread held.
/// Allocation-free after construction.
/// </remarks>
internal sealed unsafe class NetQueuePair : IDisposable
{
    private const int TxBudget = 256;
    private const int RxBudget = 256;

    /// <summary>iovecs one readv may use: IOV_MAX.</summary>
    private const int MaxIov = Interop.Interop.BlockIo.IOV_MAX;

    private readonly VirtioNet _device;
    private readonly Memory.GuestMemory _memory;
    private readonly int _index;
    private readonly VirtQueue _rx;
    private readonly VirtQueue _tx;
    private readonly int _fd;
    private readonly ILogger? _logger;
    private readonly Lock _ioLock = new();
    private readonly EventFd _wake = EventFd.Create();
    private readonly Thread _thread;
    private volatile bool _stopping;
    private volatile bool _paused;

    // Queues handed to another data path (StopQueue): the thread neither polls nor touches them.
    // _epoch counts changes; the thread publishes in _seenEpoch the one its poll set reflects.
    private volatile bool _rxStopped;
    private volatile bool _txStopped;
    private int _epoch;
    private int _seenEpoch;

    // Negotiated framing (set by Configure under _ioLock).
    private int _header = VirtioNetSpec.Header.Size;
    private bool _mergeable;
    private int _maxFrame = VirtioNetSpec.Header.Size + 1518;

    // Transmit: a chain the backend could not take yet (EAGAIN), retried when it is writable.
    private readonly ChainSegment[] _txSegments = new ChainSegment[VirtioNet.MaxChainSegments];
    private readonly Iovec* _txIov;
    private bool _txHeld;
    private DescriptorChain _txChain;
    private int _txGeneration;
    private ushort _txAvailIndex;

    // Receive: chains popped ahead of the frame they will hold, their segments stored back to back.
    private struct HeldChain
    {
        public ushort Head;
        public int SegmentStart;
        public int SegmentCount;
        public uint Writable;
        /// <summary>The available-ring index the chain was taken from.</summary>
        public ushort AvailIndex;
    }

    private readonly ChainSegment[] _rxSegments = new ChainSegment[MaxIov];
    private readonly HeldChain[] _held = new HeldChain[MaxIov];
    private readonly UsedElement[] _used = new UsedElement[MaxIov];
    private readonly Iovec* _rxIov;
    private int _heldCount;
    private int _heldSegments;
    private ulong _heldWritable;
    private int _rxGeneration;

    // A frame read into the bounce buffer because the held buffers were too small for the largest frame.
    private readonly byte* _bounce;
    private int _bounceLength;

    private long _txFrames, _txErrors, _rxFrames, _rxDropped;
    private int _loggedTxError, _loggedRxError;

    public NetQueuePair(VirtioNet device, Memory.GuestMemory memory, int index, VirtQueue rx, VirtQueue tx, int fd, ILogger? logger)
    {
        _device = device;
        _memory = memory;
        _index = index;
        _rx = rx;
        _tx = tx;
        _fd = fd;
        _logger = logger;
        RxNotify = EventFd.Create();
        TxNotify = EventFd.Create();
        _txIov = (Iovec*)NativeMemory.Alloc((nuint)VirtioNet.MaxChainSegments, (nuint)sizeof(Iovec));
        _rxIov = (Iovec*)NativeMemory.Alloc(MaxIov, (nuint)sizeof(Iovec));
        _bounce = (byte*)NativeMemory.Alloc((nuint)(VirtioNetSpec.Header.Size + VirtioNet.MaxGsoFrame));
        _thread = new Thread(Run) { IsBackground = true, Name = $"virtio-net q{index}" };
    }

    /// <summary>Signalled by a notification of the receive queue (the driver posted buffers).</summary>
    public EventFd RxNotify { get; }

    /// <summary>Signalled by a notification of the transmit queue.</summary>
    public EventFd TxNotify { get; }

    public long TxFrames => Interlocked.Read(ref _txFrames);
    public long TxErrors => Interlocked.Read(ref _txErrors);
    public long RxFrames => Interlocked.Read(ref _rxFrames);
    public long RxDropped => Interlocked.Read(ref _rxDropped);

    public void StartThread() => _thread.Start();

    public bool IsStopped(bool receive) => receive ? _rxStopped : _txStopped;

    /// <summary>Hands the receive or transmit queue to another data path: returns once the thread
    /// polls neither its notify eventfd nor the backend for it, with the chains it held given back.</summary>
    public void Stop(bool receive)
    {
        if (receive) { _rxStopped = true; } else { _txStopped = true; }
        var epoch = Interlocked.Increment(ref _epoch);
        _wake.Signal();
        // The thread acknowledges the epoch after building its next poll set (or is not running).
        SpinWait.SpinUntil(() => Volatile.Read(ref _seenEpoch) >= epoch || _stopping || !_thread.IsAlive);
        lock (_ioLock)
        {
            if (receive)
            {
                GiveBackRx();
            }
            else
            {
                GiveBackTx();
            }
        }
    }

    /// <summary>Takes the queue back (see <see cref="VirtioNet.StartQueue"/>).</summary>
    public void Start(bool receive)
    {
        if (receive) { _rxStopped = false; } else { _txStopped = false; }
        Interlocked.Increment(ref _epoch);
        _wake.Signal();
    }

    /// <summary>Receive chains popped and not completed go back to the driver's ring: last_avail_idx
    /// moves back to the first of them, when they are all that was taken since. (A chain refused
    /// in between was completed already and cannot be taken twice: then the held chains are
    /// completed with 0 bytes, which a driver drops as a runt frame.)</summary>
    private void GiveBackRx()
    {
        if (_heldCount > 0 && _rx.Generation == _rxGeneration)
        {
            if ((ushort)(_rx.LastAvailIndex - _held[0].AvailIndex) == _heldCount)
            {
                _rx.RestoreLastAvailIndex(_held[0].AvailIndex);
            }
            else
            {
                for (var i = 0; i < _heldCount; i++)
                {
                    _used[i] = new UsedElement(_held[i].Head, 0);
                }
                _rx.PushUsedBatch(_used.AsSpan(0, _heldCount), _rxGeneration);
            }
        }
        if (_bounceLength > 0)
        {
            Interlocked.Increment(ref _rxDropped);
        }
        _heldCount = _heldSegments = 0;
        _heldWritable = 0;
        _bounceLength = 0;
    }

    /// <summary>The transmit chain waiting for the backend goes back to the ring (it is always the last one taken).</summary>
    private void GiveBackTx()
    {
        if (_txHeld && _tx.Generation == _txGeneration && (ushort)(_tx.LastAvailIndex - 1) == _txAvailIndex)
        {
            _tx.RestoreLastAvailIndex(_txAvailIndex);
        }
        _txHeld = false;
    }

    public void Wake() => _wake.Signal();

    public void Configure(int header, bool mergeable, int maxFrame)
    {
        lock (_ioLock)
        {
            DropHeld();
            _header = header;
            _mergeable = mergeable;
            _maxFrame = maxFrame;
        }
        Wake();
    }

    /// <summary>Stops moving frames (lifecycle pause): returns once the batch in progress has ended.
    /// Frames arriving meanwhile wait in the backend; notifications are remembered.</summary>
    public void Pause()
    {
        _paused = true;
        lock (_ioLock)
        {
        }
    }

    public void Resume()
    {
        _paused = false;
        Wake();
    }

    /// <summary>Device reset: waits for the batch in progress and forgets the buffers held from the old rings.</summary>
    public void Quiesce()
    {
        lock (_ioLock)
        {
            DropHeld();
        }
    }

    private void DropHeld()
    {
        _heldCount = _heldSegments = 0;
        _heldWritable = 0;
        _bounceLength = 0;
        _txHeld = false;
    }

    // ---- the thread ----

    private enum RxState : byte { NeedBuffers, BackendEmpty, More }

    private void Run()
    {
        var fds = stackalloc Tun.pollfd[4];
        fds[0].fd = _wake.Handle.Fd;
        fds[1].fd = RxNotify.Handle.Fd;
        fds[2].fd = TxNotify.Handle.Fd;
        fds[0].events = fds[1].events = fds[2].events = Tun.POLLIN;
        var rxState = RxState.NeedBuffers;
        var txMore = true;
        var rxWake = true;
        while (!_stopping)
        {
            var epoch = Volatile.Read(ref _epoch);
            var rxOn = !_rxStopped;
            var txOn = !_txStopped;
            fds[1].fd = rxOn ? RxNotify.Handle.Fd : -1;
            fds[2].fd = txOn ? TxNotify.Handle.Fd : -1;
            fds[1].revents = fds[2].revents = 0;
            if (epoch != _seenEpoch)
            {
                // A queue was stopped or started: look at everything again.
                Volatile.Write(ref _seenEpoch, epoch);
                txMore = txOn;
                rxWake = rxOn;
                rxState = RxState.NeedBuffers;
            }
            var active = !_paused && _device.IsPairActive(_index);
            var timeout = -1;
            if (active)
            {
                timeout = (txOn && txMore) || (rxOn && (rxState == RxState.More || rxWake)) ? 0 : -1;
                short events = 0;
                if (rxOn && rxState == RxState.BackendEmpty) { events |= Tun.POLLIN; }
                if (txOn && _txHeld) { events |= Tun.POLLOUT; }
                fds[3].fd = events != 0 ? _fd : -1;
                fds[3].events = events;
            }
            else
            {
                fds[3].fd = -1;
            }
            fds[3].revents = 0;
            var n = Tun.Poll(fds, 4, timeout);
            if (n < 0 && Interop.Interop.LastErrno != Tun.EINTR)
            {
                _logger?.LogError("virtio-net q{Index}: poll failed: {Error}; the queue pair stops", _index, new ErrnoException("poll", Interop.Interop.LastErrno).Message);
                return;
            }
            if ((fds[0].revents & Tun.POLLIN) != 0) { _wake.TryConsume(out _); rxWake = true; }
            if ((fds[1].revents & Tun.POLLIN) != 0) { RxNotify.TryConsume(out _); rxWake = true; }
            if ((fds[2].revents & Tun.POLLIN) != 0) { TxNotify.TryConsume(out _); txMore = true; }
            if (_stopping || _paused || !_device.IsPairActive(_index))
            {
                continue;
            }
            if ((fds[3].revents & Tun.POLLOUT) != 0) { txMore = true; }
            if ((fds[3].revents & (Tun.POLLIN | Tun.POLLERR | Tun.POLLHUP)) != 0) { rxWake = true; }
            lock (_ioLock)
            {
                if (_paused || epoch != Volatile.Read(ref _epoch))
                {
                    continue;   // a queue is being stopped: its owner waits for the new poll set
                }
                if (txMore && txOn)
                {
                    txMore = ProcessTx();
                }
                if (rxOn && (rxWake || rxState == RxState.More))
                {
                    rxState = ProcessRx();
                    rxWake = false;
                }
            }
        }
    }

    // ---- transmit (§5.1.6.2) ----

    /// <summary>Sends what the driver made available. True if there is more to do right away.</summary>
    private bool ProcessTx()
    {
        if (_txHeld)
        {
            if (!TrySend())
            {
                return false;   // still blocked: wait for POLLOUT
            }
        }
        _tx.DisableNotification();
        for (var budget = TxBudget; budget > 0; budget--)
        {
            var r = _tx.TryPop(_txSegments, out var chain);
            if (r == PopResult.Broken)
            {
                return false;
            }
            if (r == PopResult.Empty)
            {
                if (!_tx.EnableNotification())
                {
                    return false;
                }
                _tx.DisableNotification();
                continue;
            }
            // The frame is the device-readable part: header then Ethernet frame. A device-writable
            // part has no meaning on transmit and is ignored (returned with 0 bytes written).
            if (chain.ReadableLength < _header)
            {
                _tx.RefuseChain(chain.Head, ChainError.DeviceRejected);
                continue;
            }
            _txChain = chain;
            _txGeneration = _tx.Generation;
            _txAvailIndex = (ushort)(_tx.LastAvailIndex - 1);
            _txHeld = true;
            if (!TrySend())
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Writes the held chain to the backend; false if the backend is full (EAGAIN).</summary>
    private bool TrySend()
    {
        var chain = _txChain;
        var iov = 0;
        for (var i = 0; i < chain.SegmentCount; i++)
        {
            var s = _txSegments[i];
            if (s.Writable)
            {
                break;
            }
            _txIov[iov].Base = Host(s);
            _txIov[iov].Length = s.Length;
            iov++;
        }
        var n = Tun.Writev(_fd, _txIov, iov);
        if (n < 0)
        {
            var errno = Interop.Interop.LastErrno;
            if (errno == Tun.EAGAIN)
            {
                return false;
            }
            Interlocked.Increment(ref _txErrors);
            if (Interlocked.Exchange(ref _loggedTxError, 1) == 0)
            {
                _logger?.LogWarning("virtio-net q{Index}: the backend refused a {Length}-byte frame from the guest: {Error} (further errors are only counted)",
                    _index, chain.ReadableLength, new ErrnoException("writev", errno).Message);
            }
        }
        else
        {
            Interlocked.Increment(ref _txFrames);
        }
        _txHeld = false;
        _tx.PushUsed(chain.Head, 0, _txGeneration);
        return true;
    }

    /// <summary>Host address of a segment the queue already checked to lie in RAM (guest RAM never moves).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nint Host(ChainSegment s)
    {
        _memory.TryTranslate(s.Address, s.Length, out var host);
        return host;
    }

    // ---- receive (§5.1.6.3, §5.1.6.4) ----

    private RxState ProcessRx()
    {
        if (_heldCount > 0 && _rx.Generation != _rxGeneration)
        {
            DropHeld();
        }
        for (var budget = RxBudget; budget > 0; budget--)
        {
            if (_bounceLength > 0)
            {
                // A frame is waiting for buffers.
                FillHeld(_mergeable ? _bounceLength : 1);
                if (!HeldFits(_bounceLength))
                {
                    if (_heldCount > 0 && !_mergeable)
                    {
                        // One chain per frame and the driver's next chain is too small: the frame is lost.
                        Drop(_bounceLength);
                        continue;
                    }
                    if (_rx.EnableNotification())
                    {
                        continue;
                    }
                    return RxState.NeedBuffers;
                }
                CopyBounceToHeld();
                continue;
            }
            FillHeld(_mergeable ? _maxFrame : 1);
            if (_heldCount == 0)
            {
                if (_rx.EnableNotification())
                {
                    continue;
                }
                return RxState.NeedBuffers;
            }
            _rx.DisableNotification();
            long n;
            var direct = HeldFits(_maxFrame);
            if (direct)
            {
                var iov = BuildRxIov(_mergeable ? _heldCount : 1);
                n = Tun.Readv(_fd, _rxIov, iov);
            }
            else
            {
                Iovec one;
                one.Base = (nint)_bounce;
                one.Length = (nuint)(VirtioNetSpec.Header.Size + VirtioNet.MaxGsoFrame);
                n = Tun.Readv(_fd, &one, 1);
            }
            if (n < 0)
            {
                var errno = Interop.Interop.LastErrno;
                if (errno != Tun.EAGAIN && Interlocked.Exchange(ref _loggedRxError, 1) == 0)
                {
                    _logger?.LogWarning("virtio-net q{Index}: reading a frame from the backend failed: {Error} (further errors are only counted)",
                        _index, new ErrnoException("readv", errno).Message);
                }
                if (errno != Tun.EAGAIN)
                {
                    Interlocked.Increment(ref _rxDropped);
                }
                return RxState.BackendEmpty;
            }
            if (n < _header)
            {
                Interlocked.Increment(ref _rxDropped);
                continue;
            }
            if (direct)
            {
                CompleteHeld((uint)n);
            }
            else
            {
                _bounceLength = (int)n;
            }
        }
        return RxState.More;
    }

    private bool HeldFits(int length) =>
        _mergeable ? _heldWritable >= (ulong)length : _heldCount > 0 && _held[0].Writable >= (uint)length;

    /// <summary>Pops receive chains until the held ones can take <paramref name="target"/> bytes
    /// (mergeable) or one chain is held, the ring is empty, or the iovec space is used up.</summary>
    private void FillHeld(int target)
    {
        while ((_mergeable ? _heldWritable < (ulong)target : _heldCount < 1) && _heldSegments + VirtioNet.MaxChainSegments <= MaxIov)
        {
            var r = _rx.TryPop(_rxSegments.AsSpan(_heldSegments, VirtioNet.MaxChainSegments), out var chain);
            if (r != PopResult.Chain)
            {
                return;
            }
            // §5.1.6.3: receive buffers are device-writable and hold at least the header.
            if (chain.ReadableLength != 0 || chain.WritableLength < _header)
            {
                _rx.RefuseChain(chain.Head, ChainError.DeviceRejected);
                continue;
            }
            if (_heldCount == 0)
            {
                _rxGeneration = _rx.Generation;
            }
            _held[_heldCount++] = new HeldChain
            {
                Head = chain.Head, SegmentStart = _heldSegments, SegmentCount = chain.SegmentCount, Writable = chain.WritableLength,
                AvailIndex = (ushort)(_rx.LastAvailIndex - 1),
            };
            _heldSegments += chain.SegmentCount;
            _heldWritable += chain.WritableLength;
        }
    }

    private int BuildRxIov(int chains)
    {
        var iov = 0;
        for (var c = 0; c < chains; c++)
        {
            var h = _held[c];
            for (var i = 0; i < h.SegmentCount; i++)
            {
                var s = _rxSegments[h.SegmentStart + i];
                _rxIov[iov].Base = Host(s);
                _rxIov[iov].Length = s.Length;
                iov++;
            }
        }
        return iov;
    }

    /// <summary>A frame of <paramref name="length"/> bytes (header included) is in the held chains:
    /// sets num_buffers, publishes the chains it used in one go, keeps the rest.</summary>
    private void CompleteHeld(uint length)
    {
        var used = 0;
        var remaining = length;
        while (remaining > 0 && used < _heldCount)
        {
            var take = Math.Min(remaining, _held[used].Writable);
            _used[used] = new UsedElement(_held[used].Head, take);
            remaining -= take;
            used++;
        }
        if (_header == VirtioNetSpec.Header.Size)
        {
            // The TAP leaves num_buffers alone (it writes the 10-byte struct virtio_net_hdr and
            // skips the rest of the header): 1 without MRG_RXBUF (§5.1.6.4), else the chains used.
            WriteChainBytes(_held[0], VirtioNetSpec.Header.NumBuffers, (ushort)used);
        }
        _rx.PushUsedBatch(_used.AsSpan(0, used), _rxGeneration);
        Interlocked.Increment(ref _rxFrames);
        Release(used);
    }

    private void CopyBounceToHeld()
    {
        var src = new ReadOnlySpan<byte>(_bounce, _bounceLength);
        var chains = _mergeable ? _heldCount : 1;
        for (var c = 0; c < chains && !src.IsEmpty; c++)
        {
            var h = _held[c];
            for (var i = 0; i < h.SegmentCount && !src.IsEmpty; i++)
            {
                var s = _rxSegments[h.SegmentStart + i];
                var n = (int)Math.Min(s.Length, (uint)src.Length);
                _memory.TryWrite(s.Address, src[..n]);
                src = src[n..];
            }
        }
        var length = (uint)_bounceLength;
        _bounceLength = 0;
        CompleteHeld(length);
    }

    private void Drop(int length)
    {
        _bounceLength = 0;
        Interlocked.Increment(ref _rxDropped);
        if (Interlocked.Exchange(ref _loggedRxError, 1) == 0)
        {
            _logger?.LogWarning("virtio-net q{Index}: a {Length}-byte frame fits no receive buffer the driver offers; dropped (further drops are only counted)", _index, length);
        }
    }

    /// <summary>Forgets the first <paramref name="count"/> held chains (published), moving the rest to the front.</summary>
    private void Release(int count)
    {
        if (count >= _heldCount)
        {
            _heldCount = _heldSegments = 0;
            _heldWritable = 0;
            return;
        }
        var firstSegment = _held[count].SegmentStart;
        _rxSegments.AsSpan(firstSegment, _heldSegments - firstSegment).CopyTo(_rxSegments);
        ulong writable = 0;
        for (var i = count; i < _heldCount; i++)
        {
            var h = _held[i];
            h.SegmentStart -= firstSegment;
            _held[i - count] = h;
            writable += h.Writable;
        }
        _heldCount -= count;
        _heldSegments -= firstSegment;
        _heldWritable = writable;
    }

    /// <summary>Writes a little-endian u16 at byte <paramref name="offset"/> of a chain's buffers
    /// (the header may span descriptors, §2.7.4).</summary>
    private void WriteChainBytes(HeldChain h, int offset, ushort value)
    {
        Span<byte> bytes = [(byte)value, (byte)(value >> 8)];
        var pos = 0;
        for (var i = 0; i < h.SegmentCount && !bytes.IsEmpty; i++)
        {
            var s = _rxSegments[h.SegmentStart + i];
            var end = pos + (int)s.Length;
            if (offset < end)
            {
                var at = offset - pos;
                var n = Math.Min(bytes.Length, (int)s.Length - at);
                _memory.TryWrite(s.Address + (ulong)at, bytes[..n]);
                bytes = bytes[n..];
                offset += n;
            }
            pos = end;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Signal();
        if (_thread.IsAlive)
        {
            _thread.Join();
        }
        _wake.Dispose();
        RxNotify.Dispose();
        TxNotify.Dispose();
        NativeMemory.Free(_txIov);
        NativeMemory.Free(_rxIov);
        NativeMemory.Free(_bounce);
    }
}

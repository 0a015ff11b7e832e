using Propolis.Core.Block;
using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Nvme;

/// <summary>An NVMe 1.4 controller with one namespace: the BAR0 registers and doorbells, the
/// admin and I/O queues in guest memory, the admin command set and the NVM command set over
/// an <see cref="INvmeBlockBackend"/>.</summary>
/// <remarks>
/// <para>Threads: register and doorbell accesses arrive on vCPU threads; a doorbell drains its
/// submission queue on that thread (admin commands run to completion there, I/O commands are
/// handed to the backend without blocking); backend completions arrive on backend threads and
/// post to the completion queue under that queue's lock. Nothing on these paths allocates.</para>
/// <para>The PCI glue maps BAR0 (<see cref="Bar0Size"/>) to this <see cref="IMmioHandler"/>,
/// implements <see cref="INvmeInterrupts"/> with MSI-X, and calls <see cref="Reset"/> on a
/// function-level or machine reset.</para>
/// </remarks>
public sealed partial class NvmeController : IMmioHandler, INvmeIoCompletion
{
    /// <summary>I/O submission/completion queue pairs offered (Number of Queues, §5.21.1.7).</summary>
    public const int MaxIoQueuePairs = 16;

    /// <summary>BAR0 size: the registers, then doorbells for 17 queue pairs at 0x1000, rounded up
    /// to a power of two.</summary>
    public const ulong Bar0Size = 0x4000;

    /// <summary>VS: 1.4.0 (§3.1.2).</summary>
    public const uint Version = 0x0001_0400;

    /// <summary>MDTS: 2^8 pages of 4 KiB = 1 MiB.</summary>
    public const byte Mdts = 8;
    public const int MaxTransferBytes = Prp.PageSize << Mdts;

    /// <summary>Outstanding Asynchronous Event Requests accepted (AERL + 1, §5.2).</summary>
    public const byte AsyncEventRequestLimit = 4;

    public const byte SubmissionEntrySizeLog2 = 6;
    public const byte CompletionEntrySizeLog2 = 4;

    /// <summary>Entries of an I/O queue at most (CAP.MQES + 1).</summary>
    public const int MaxQueueEntries = 65536;

    /// <summary>I/O commands in flight at once, over all queues; a queue that finds none free
    /// waits for a completion.</summary>
    public const int MaxInflight = 256;

    /// <summary>Dataset Management ranges per command (NR is 8 bits, 0's based, §6.7).</summary>
    private const int MaxDsmRanges = 256;

    /// <summary>CAP (§3.1.1): MQES 0xFFFF, CQR, TO 10 s, DSTRD 0, NVM command set, 4 KiB pages only.</summary>
    private const ulong CapValue =
        ((ulong)(MaxQueueEntries - 1) << Cap.MqesShift)
        | (1UL << Cap.CqrShift)
        | (20UL << Cap.ToShift)
        | (Cap.CssNvm << Cap.CssShift);

    private readonly GuestMemory _memory;
    private readonly INvmeBlockBackend _backend;
    private readonly INvmeInterrupts _interrupts;
    private readonly NvmeControllerOptions _options;
    private readonly ILogger _logger;
    private readonly object _stateLock = new();

    private readonly byte[] _identifyController;
    private readonly byte[] _identifyNamespace;
    private readonly byte[] _namespaceDescriptors;
    private readonly ulong _namespaceBlocks;
    private readonly int _blockShift;

    // Registers (§3.1).
    private volatile uint _cc;
    private volatile uint _csts;
    private uint _aqa;
    private ulong _asq;
    private ulong _acq;
    private uint _intms;

    // Queue id → queue; index 0 is the admin pair. Read without the state lock on doorbells.
    private readonly SubmissionQueue?[] _sqs = new SubmissionQueue?[MaxIoQueuePairs + 1];
    private readonly CompletionQueue?[] _cqs = new CompletionQueue?[MaxIoQueuePairs + 1];

    // The in-flight I/O pool.
    private readonly NvmeIoRequest[] _pool;
    private readonly int[] _freeList;
    private int _freeCount;
    private readonly object _poolLock = new();
    private volatile bool _poolStarved;

    private readonly NvmeIoRequest _shutdownFlush;
    private static readonly Action<SubmissionQueue, NvmeController> s_drain = static (sq, c) => c.Drain(sq);

    public NvmeController(GuestMemory memory, INvmeBlockBackend backend, INvmeInterrupts interrupts,
        NvmeControllerOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(interrupts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (backend.BlockSize is not (512 or 4096) || backend.Capacity % (ulong)backend.BlockSize != 0)
        {
            throw new ArgumentException(
                $"the NVMe backend has {backend.Capacity} bytes in blocks of {backend.BlockSize}: blocks must be 512 or 4096 bytes and the size a whole number of them",
                nameof(backend));
        }
        _memory = memory;
        _backend = backend;
        _interrupts = interrupts;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _blockShift = System.Numerics.BitOperations.Log2((uint)backend.BlockSize);
        _namespaceBlocks = backend.Capacity >> _blockShift;
        _identifyController = IdentifyData.BuildController(options);
        var nguid = IdentifyData.NamespaceGuid(options.SerialNumber);
        _identifyNamespace = IdentifyData.BuildNamespace(_namespaceBlocks, backend.BlockSize, backend.IsReadOnly, nguid);
        _namespaceDescriptors = IdentifyData.BuildDescriptorList(nguid);

        var maxSegments = Prp.MaxSegments(MaxTransferBytes);
        _pool = new NvmeIoRequest[MaxInflight];
        _freeList = new int[MaxInflight];
        for (var i = 0; i < MaxInflight; i++)
        {
            _pool[i] = new NvmeIoRequest(maxSegments, MaxDsmRanges) { PoolIndex = i };
            _freeList[i] = MaxInflight - 1 - i;
        }
        _freeCount = MaxInflight;
        _shutdownFlush = new NvmeIoRequest(0, 0) { PoolIndex = -1 };
        _adminSegments = new GuestSegment[maxSegments];
        ResetFeatures();
    }

    /// <summary>CSTS as the guest would read it.</summary>
    public uint ControllerStatus => _csts;

    // ---- Registers (§3.1) -------------------------------------------------------------

    public void MmioRead(ulong offset, Span<byte> data)
    {
        for (var i = 0; i < data.Length; i++)
        {
            var o = offset + (ulong)i;
            // Doorbells are write-only; reads of them and of anything past them return 0.
            data[i] = o < NvmeRegisterMap.DoorbellBase ? (byte)(ReadDword((int)o & ~3) >> (8 * ((int)o & 3))) : (byte)0;
        }
    }

    public void MmioWrite(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= NvmeRegisterMap.DoorbellBase)
        {
            if (data.Length == 4 && (offset & 3) == 0 && offset < Bar0Size)
            {
                Doorbell((int)(offset - NvmeRegisterMap.DoorbellBase) >> 2, BinaryPrimitives.ReadUInt32LittleEndian(data));
            }
            return;
        }
        // §3.1: registers are accessed at their own width or as aligned dwords; narrower
        // or misaligned writes are dropped.
        if (data.Length == 8 && (offset & 7) == 0)
        {
            var v = BinaryPrimitives.ReadUInt64LittleEndian(data);
            WriteDword((int)offset, (uint)v);
            WriteDword((int)offset + 4, (uint)(v >> 32));
        }
        else if (data.Length == 4 && (offset & 3) == 0)
        {
            WriteDword((int)offset, BinaryPrimitives.ReadUInt32LittleEndian(data));
        }
    }

    private uint ReadDword(int offset)
    {
        var row = NvmeRegisterMap.ForDword(offset);
        ulong value = row.Register switch
        {
            NvmeRegister.Cap => CapValue,
            NvmeRegister.Vs => Version,
            NvmeRegister.Intms or NvmeRegister.Intmc => Volatile.Read(ref _intms),
            NvmeRegister.Cc => _cc,
            NvmeRegister.Csts => _csts,
            NvmeRegister.Aqa => Volatile.Read(ref _aqa),
            NvmeRegister.Asq => Volatile.Read(ref _asq),
            NvmeRegister.Acq => Volatile.Read(ref _acq),
            _ => 0,
        };
        return (uint)(value >> (8 * (offset - row.Offset)));
    }

    private void WriteDword(int offset, uint value)
    {
        var row = NvmeRegisterMap.ForDword(offset);
        var high = offset - row.Offset == 4;
        lock (_stateLock)
        {
            switch (row.Register)
            {
                case NvmeRegister.Intms:
                    _intms |= value;
                    break;
                case NvmeRegister.Intmc:
                    _intms &= ~value;
                    break;
                case NvmeRegister.Cc:
                    WriteCc(value);
                    break;
                case NvmeRegister.Aqa:
                    _aqa = value & Aqa.WritableMask;
                    break;
                case NvmeRegister.Asq:
                    _asq = SetHalf(_asq, value, high);
                    break;
                case NvmeRegister.Acq:
                    _acq = SetHalf(_acq, value, high);
                    break;
                default:
                    // CAP, VS, CSTS are read-only; NSSR is reserved (CAP.NSSRS = 0).
                    break;
            }
        }
    }

    // ASQ/ACQ bits 11:0 are reserved: the queues are page aligned (§3.1.9, §3.1.10).
    private static ulong SetHalf(ulong reg, uint value, bool high) =>
        high ? (reg & 0xFFFF_FFFFUL) | ((ulong)value << 32) : (reg & ~0xFFFF_FFFFUL) | (value & ~0xFFFu);

    /// <summary>CC write (§3.1.5) and the handshakes of §7.6.1 (initialization: EN 0→1 makes
    /// CSTS.RDY 1), §7.3 (EN 1→0 is a controller reset) and §7.6.2 (shutdown: CC.SHN makes
    /// CSTS.SHST "occurring", then "complete" once the backend has flushed).</summary>
    private void WriteCc(uint value)
    {
        var old = _cc;
        _cc = value;
        var wasEnabled = (old & Cc.En) != 0;
        var enable = (value & Cc.En) != 0;
        if (wasEnabled && !enable)
        {
            ResetLocked();
        }
        else if (!wasEnabled && enable)
        {
            EnableLocked();
        }
        if (Cc.Shn(value) != 0 && Cc.Shn(old) == 0 && (_csts & Csts.ShstMask) == Csts.ShstNormal)
        {
            BeginShutdownLocked();
        }
    }

    private void EnableLocked()
    {
        var cc = _cc;
        var sqEntries = Aqa.Asqs(_aqa) + 1;
        var cqEntries = Aqa.Acqs(_aqa) + 1;
        // §7.6.1: CC.CSS, CC.MPS and CC.AMS must name something CAP offers; the admin queues
        // need at least two entries each and must lie in guest RAM. Anything else is fatal.
        if (Cc.Css(cc) != 0 || Cc.Mps(cc) != 0 || Cc.Ams(cc) != 0 || sqEntries < 2 || cqEntries < 2
            || !_memory.TryTranslate(_asq, sqEntries * SubmissionEntry.Size, out _)
            || !_memory.TryTranslate(_acq, cqEntries * CompletionQueue.EntrySize, out _))
        {
            _logger.LogWarning("NVMe: enable refused (CC 0x{Cc:X8}, AQA 0x{Aqa:X8}, ASQ 0x{Asq:X}, ACQ 0x{Acq:X}); controller fatal status set",
                cc, _aqa, _asq, _acq);
            _csts |= Csts.Cfs;
            return;
        }
        var acq = new CompletionQueue(_memory, 0, _acq, cqEntries, interruptsEnabled: true, vector: 0);
        var asq = new SubmissionQueue(0, _asq, sqEntries, acq);
        acq.AttachedSubmissionQueues = 1;
        Volatile.Write(ref _cqs[0], acq);
        Volatile.Write(ref _sqs[0], asq);
        _csts = (_csts & ~(Csts.ShstMask | Csts.Cfs)) | Csts.Rdy;
    }

    /// <summary>Controller reset (§7.3.2): all queues deleted, commands in flight abandoned
    /// (their backend completions are dropped), features back to defaults, CSTS.RDY cleared.
    /// Registers other than CC.EN and CSTS keep their values.</summary>
    public void Reset()
    {
        lock (_stateLock)
        {
            _cc &= ~Cc.En;
            ResetLocked();
        }
    }

    private void ResetLocked()
    {
        AbortInflight(null, postCompletions: false);
        for (var i = 0; i <= MaxIoQueuePairs; i++)
        {
            var sq = Volatile.Read(ref _sqs[i]);
            if (sq is not null)
            {
                sq.CompletionQueue.DetachSubmissionQueue(sq);
                Volatile.Write(ref _sqs[i], null);
            }
        }
        for (var i = 0; i <= MaxIoQueuePairs; i++)
        {
            Volatile.Read(ref _cqs[i])?.MarkDeleted();
            Volatile.Write(ref _cqs[i], null);
        }
        ResetFeatures();
        _csts = 0;
    }

    private bool _shutdownFlushInFlight;

    private void BeginShutdownLocked()
    {
        _csts = (_csts & ~Csts.ShstMask) | Csts.ShstOccurring;
        if (_shutdownFlushInFlight)
        {
            // A flush from an earlier shutdown is still running; its completion ends this one too.
            return;
        }
        _shutdownFlushInFlight = true;
        _shutdownFlush.Prepare(this, NvmeIoOperation.Flush, 0, 0, 0, 0);
        _backend.Submit(_shutdownFlush);
    }

    // ---- Doorbells (§3.1.24, §3.1.25) ---------------------------------------------------

    private void Doorbell(int index, uint value)
    {
        if ((_csts & Csts.Rdy) == 0)
        {
            return;
        }
        var qid = index >> 1;
        var isCompletion = (index & 1) != 0;
        if (qid > MaxIoQueuePairs)
        {
            RaiseAsyncEvent(AsyncEvent.InvalidDoorbellRegister);
            return;
        }
        if (isCompletion)
        {
            var cq = Volatile.Read(ref _cqs[qid]);
            if (cq is null)
            {
                RaiseAsyncEvent(AsyncEvent.InvalidDoorbellRegister);
            }
            else if (!cq.TrySetHead(value))
            {
                RaiseAsyncEvent(AsyncEvent.InvalidDoorbellWriteValue);
            }
            else if (cq.Starved)
            {
                cq.Starved = false;
                KickQueuesOf(cq);
            }
        }
        else
        {
            var sq = Volatile.Read(ref _sqs[qid]);
            if (sq is null)
            {
                RaiseAsyncEvent(AsyncEvent.InvalidDoorbellRegister);
            }
            else if (!sq.TrySetTail(value))
            {
                RaiseAsyncEvent(AsyncEvent.InvalidDoorbellWriteValue);
            }
            else
            {
                sq.Kick(s_drain, this);
            }
        }
    }

    private void KickQueuesOf(CompletionQueue? cq)
    {
        for (var i = 0; i <= MaxIoQueuePairs; i++)
        {
            var sq = Volatile.Read(ref _sqs[i]);
            if (sq is not null && (cq is null ? i != 0 : sq.CompletionQueue == cq) && !sq.IsEmpty)
            {
                sq.Kick(s_drain, this);
            }
        }
    }

    // ---- Submission queue processing (§4.1, §7.2) ---------------------------------------

    private void Drain(SubmissionQueue sq)
    {
        do
        {
            sq.RefreshFromShadow(_memory);
            if (!DrainOnce(sq))
            {
                return;
            }
        }
        while (!sq.Deleted && sq.PublishEventIndex(_memory));
    }

    /// <summary>Runs commands until the queue is empty (true) or must wait for a completion
    /// queue entry or an in-flight slot (false).</summary>
    private bool DrainOnce(SubmissionQueue sq)
    {
        var cq = sq.CompletionQueue;
        Span<byte> raw = stackalloc byte[SubmissionEntry.Size];
        while (!sq.Deleted && !sq.IsEmpty)
        {
            // Room for the completion first, so it never has to wait.
            if (!cq.TryReserve())
            {
                cq.Starved = true;
                if (!cq.TryReserve())
                {
                    return false;
                }
            }
            NvmeIoRequest? request = null;
            if (sq.Id != 0)
            {
                request = Rent(sq);
                if (request is null)
                {
                    cq.Unreserve();
                    return false;
                }
            }
            if (!_memory.TryRead(sq.EntryAddress(sq.Head), raw))
            {
                // The queue was checked to be RAM when created; nothing to consume.
                cq.Unreserve();
                if (request is not null) { Return(request); }
                return false;
            }
            sq.Head = (sq.Head + 1) % sq.Size;
            var entry = new SubmissionEntry(raw);
            if (request is null)
            {
                ExecuteAdmin(sq, entry);
            }
            else
            {
                ExecuteIo(sq, entry, request);
            }
        }
        return true;
    }

    /// <summary>Posts a completion for a command of <paramref name="sq"/> (whose entry on the
    /// completion queue was reserved when the command was taken) and raises the queue's vector.</summary>
    private void Complete(SubmissionQueue sq, ushort commandId, uint dw0, NvmeStatus status)
    {
        var cq = sq.CompletionQueue;
        // §5.21.1.8–9: coalescing applies to I/O completion queues whose vector does not opt out.
        var coalescing = Volatile.Read(ref _interruptCoalescing);
        var entries = 1;
        long ticks = 0;
        if (cq.Id != 0 && (coalescing & 0xFF) != 0 && !Volatile.Read(ref _coalescingDisabled[cq.Vector]))
        {
            entries = (int)(coalescing & 0xFF) + 1;
            ticks = (long)((coalescing >> 8) & 0xFF) * System.Diagnostics.Stopwatch.Frequency / 10_000;
        }
        if (cq.Post(dw0, (ushort)Volatile.Read(ref sq.Head), sq.Id, commandId, status, sq, entries, ticks))
        {
            _interrupts.Raise(cq.Vector);
        }
    }

    // ---- In-flight pool -----------------------------------------------------------------

    private NvmeIoRequest? Rent(SubmissionQueue sq)
    {
        lock (_poolLock)
        {
            if (_freeCount == 0)
            {
                _poolStarved = true;
                return null;
            }
            var r = _pool[_freeList[--_freeCount]];
            r.Queue = sq;
            r.State = NvmeIoRequest.StatePreparing;
            return r;
        }
    }

    private void Return(NvmeIoRequest r)
    {
        lock (_poolLock)
        {
            r.Queue = null;
            r.State = NvmeIoRequest.StateFree;
            _freeList[_freeCount++] = r.PoolIndex;
        }
    }

    /// <summary>Commands of <paramref name="sq"/> (all queues if null) still in the backend are
    /// abandoned: with <paramref name="postCompletions"/>, each completes now as Command Aborted
    /// due to SQ Deletion (§5.6); the backend's later result is dropped.</summary>
    private void AbortInflight(SubmissionQueue? sq, bool postCompletions)
    {
        lock (_poolLock)
        {
            foreach (var r in _pool)
            {
                var owner = r.Queue;
                if (owner is null || (sq is not null && owner != sq))
                {
                    continue;
                }
                if (Interlocked.CompareExchange(ref r.State, NvmeIoRequest.StateAborted, NvmeIoRequest.StateInFlight) == NvmeIoRequest.StateInFlight
                    && postCompletions)
                {
                    Complete(owner, r.CommandId, 0, NvmeStatus.AbortedSqDeletion);
                }
            }
        }
    }

    void INvmeIoCompletion.OnIoComplete(NvmeIoRequest request, NvmeIoResult result)
    {
        if (request == _shutdownFlush)
        {
            lock (_stateLock)
            {
                _shutdownFlushInFlight = false;
                if ((_csts & Csts.ShstMask) == Csts.ShstOccurring)
                {
                    _csts = (_csts & ~Csts.ShstMask) | Csts.ShstComplete;
                }
            }
            return;
        }
        var sq = request.Queue!;
        var commandId = request.CommandId;
        var op = request.Operation;
        var length = request.Length;
        var won = Interlocked.CompareExchange(ref request.State, NvmeIoRequest.StateCompleting, NvmeIoRequest.StateInFlight)
            == NvmeIoRequest.StateInFlight;
        Return(request);
        if (won)
        {
            NvmeStatus status;
            if (result == NvmeIoResult.Success)
            {
                status = NvmeStatus.Success;
                CountIo(op, length);
            }
            else
            {
                status = op == NvmeIoOperation.Read ? NvmeStatus.UnrecoveredReadError : NvmeStatus.WriteFault;
            }
            Complete(sq, commandId, 0, status);
        }
        if (_poolStarved)
        {
            _poolStarved = false;
            KickQueuesOf(null);
        }
    }
}

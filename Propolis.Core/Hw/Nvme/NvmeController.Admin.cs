using Propolis.Core.Block;
using System.Buffers.Binary;

namespace Propolis.Core.Hw.Nvme;

/// <summary>Admin command opcodes (NVMe 1.4 §5).</summary>
internal static class AdminOpcode
{
    public const byte DeleteIoSubmissionQueue = 0x00;
    public const byte CreateIoSubmissionQueue = 0x01;
    public const byte GetLogPage = 0x02;
    public const byte DeleteIoCompletionQueue = 0x04;
    public const byte CreateIoCompletionQueue = 0x05;
    public const byte Identify = 0x06;
    public const byte Abort = 0x08;
    public const byte SetFeatures = 0x09;
    public const byte GetFeatures = 0x0A;
    public const byte AsyncEventRequest = 0x0C;
    public const byte DoorbellBufferConfig = 0x7C;
}

/// <summary>Completion DW0 of an Asynchronous Event Request (NVMe 1.4 §5.2.1):
/// event type 2:0, event information 15:8, log page 23:16.</summary>
internal static class AsyncEvent
{
    private const uint TypeError = 0;
    private const uint LogErrorInformation = 0x01;

    /// <summary>Error status "Write to Invalid Doorbell Register" (00h).</summary>
    public const uint InvalidDoorbellRegister = TypeError | (0x00 << 8) | (LogErrorInformation << 16);
    /// <summary>Error status "Invalid Doorbell Write Value" (01h).</summary>
    public const uint InvalidDoorbellWriteValue = TypeError | (0x01 << 8) | (LogErrorInformation << 16);
}

/// <summary>Feature Identifiers (NVMe 1.4 §5.21.1).</summary>
internal static class FeatureId
{
    public const byte Arbitration = 0x01;
    public const byte PowerManagement = 0x02;
    public const byte ErrorRecovery = 0x05;
    public const byte VolatileWriteCache = 0x06;
    public const byte NumberOfQueues = 0x07;
    public const byte InterruptCoalescing = 0x08;
    public const byte InterruptVectorConfiguration = 0x09;
    public const byte WriteAtomicityNormal = 0x0A;
    public const byte AsyncEventConfiguration = 0x0B;
}

/// <summary>Log Page Identifiers (NVMe 1.4 §5.14.1).</summary>
internal static class LogPageId
{
    public const byte ErrorInformation = 0x01;
    public const byte SmartHealth = 0x02;
    public const byte FirmwareSlot = 0x03;

    public const int ErrorInformationEntrySize = 64;
    public const int SmartHealthSize = 512;
    public const int FirmwareSlotSize = 512;
}

public sealed partial class NvmeController
{
    private readonly GuestSegment[] _adminSegments;
    private readonly byte[] _adminScratch = new byte[IdentifyData.Size];

    // Features (§5.21.1), current values.
    private uint _arbitration;
    private uint _powerManagement;
    private uint _errorRecovery;
    private bool _volatileWriteCache;
    private uint _interruptCoalescing;
    private uint _asyncEventConfig;
    private uint _writeAtomicityNormal;
    private readonly bool[] _coalescingDisabled = new bool[2048];
    private int _ioSubmissionQueuesGranted;
    private int _ioCompletionQueuesGranted;
    private bool _ioQueueCreated;

    // Asynchronous events (§5.2): outstanding requests and events waiting for one.
    private readonly ushort[] _aerCommandIds = new ushort[AsyncEventRequestLimit];
    private int _aerCount;
    private readonly uint[] _pendingEvents = new uint[8];
    private int _pendingEventCount;

    // SMART / Health counters (§5.14.1.2).
    private long _bytesRead;
    private long _bytesWritten;
    private long _readCommands;
    private long _writeCommands;

    /// <summary>Interrupt Coalescing (FID 08h) as last set: aggregation threshold 7:0 (0's based),
    /// time 15:8 (100 µs units). Applied to I/O completion queues: an interrupt is held until THR+1
    /// entries are waiting, TIME has passed since the first (checked as completions arrive), or
    /// no other command for that queue is in progress, whichever comes first.</summary>
    public uint InterruptCoalescing => Volatile.Read(ref _interruptCoalescing);

    /// <summary>Volatile Write Cache Enable (FID 06h) as last set.</summary>
    public bool VolatileWriteCacheEnabled => Volatile.Read(ref _volatileWriteCache);

    private void ResetFeatures()
    {
        _arbitration = 0;
        _powerManagement = 0;
        _errorRecovery = 0;
        _volatileWriteCache = true;
        _interruptCoalescing = 0;
        _asyncEventConfig = 0;
        _writeAtomicityNormal = 0;
        Array.Clear(_coalescingDisabled);
        _ioSubmissionQueuesGranted = MaxIoQueuePairs;
        _ioCompletionQueuesGranted = MaxIoQueuePairs;
        _ioQueueCreated = false;
        _aerCount = 0;
        _pendingEventCount = 0;
        if (_shadowDoorbells != 0)
        {
            _shadowDoorbells = 0;
            ShadowDoorbellsChanged?.Invoke(false);
        }
        _eventIndexes = 0;
    }

    private void CountIo(NvmeIoOperation op, ulong length)
    {
        if (op == NvmeIoOperation.Read)
        {
            Interlocked.Add(ref _bytesRead, (long)length);
            Interlocked.Increment(ref _readCommands);
        }
        else if (op == NvmeIoOperation.Write)
        {
            Interlocked.Add(ref _bytesWritten, (long)length);
            Interlocked.Increment(ref _writeCommands);
        }
    }

    private void ExecuteAdmin(SubmissionQueue sq, in SubmissionEntry e)
    {
        uint dw0 = 0;
        NvmeStatus status;
        bool deferred = false;
        lock (_stateLock)
        {
            if (sq.Deleted)
            {
                sq.CompletionQueue.Unreserve();
                return;
            }
            status = e.Fuse != 0 || e.Psdt != 0
                ? NvmeStatus.InvalidField
                : e.Opcode switch
                {
                    AdminOpcode.DeleteIoSubmissionQueue => DeleteIoSubmissionQueue(e),
                    AdminOpcode.CreateIoSubmissionQueue => CreateIoSubmissionQueue(e),
                    AdminOpcode.GetLogPage => GetLogPage(e),
                    AdminOpcode.DeleteIoCompletionQueue => DeleteIoCompletionQueue(e),
                    AdminOpcode.CreateIoCompletionQueue => CreateIoCompletionQueue(e),
                    AdminOpcode.Identify => Identify(e),
                    // §5.1: an Abort completes successfully with DW0 bit 0 set: "command not aborted".
                    AdminOpcode.Abort => Result(1, out dw0),
                    AdminOpcode.SetFeatures => SetFeatures(e, out dw0),
                    AdminOpcode.GetFeatures => GetFeatures(e, out dw0),
                    AdminOpcode.AsyncEventRequest => AsyncEventRequest(e, out dw0, out deferred),
                    AdminOpcode.DoorbellBufferConfig => DoorbellBufferConfig(e),
                    _ => NvmeStatus.InvalidOpcode,
                };
        }
        if (!deferred)
        {
            Complete(sq, e.CommandId, dw0, status);
        }
    }

    private static NvmeStatus Result(uint value, out uint dw0)
    {
        dw0 = value;
        return NvmeStatus.Success;
    }

    /// <summary>Resolves the PRPs of an admin command's data buffer of <paramref name="length"/> bytes.</summary>
    private NvmeStatus AdminBuffer(in SubmissionEntry e, int length, out ReadOnlySpan<GuestSegment> segments)
    {
        var status = Prp.Resolve(_memory, e.Prp1, e.Prp2, (ulong)length, _adminSegments, out var count);
        segments = status.IsSuccess ? _adminSegments.AsSpan(0, count) : default;
        return status;
    }

    // ---- Queue management (§5.3–§5.7) ---------------------------------------------------

    /// <summary>Create I/O Completion Queue (§5.3): CDW10 QSIZE 31:16 (0's based), QID 15:0;
    /// CDW11 IV 31:16, IEN bit 1, PC bit 0; PRP1 the queue's base.</summary>
    private NvmeStatus CreateIoCompletionQueue(in SubmissionEntry e)
    {
        var qid = (int)(e.Cdw10 & 0xFFFF);
        var entries = (e.Cdw10 >> 16) + 1;
        var contiguous = (e.Cdw11 & 1) != 0;
        var interruptsEnabled = (e.Cdw11 & 2) != 0;
        var vector = (ushort)(e.Cdw11 >> 16);
        if (qid == 0 || qid > _ioCompletionQueuesGranted || _cqs[qid] is not null)
        {
            return NvmeStatus.InvalidQueueIdentifier;
        }
        // A one-entry queue can hold nothing (§4.1.3); entries must match CC.IOCQES.
        if (entries < 2 || Cc.Iocqes(_cc) != CompletionEntrySizeLog2)
        {
            return NvmeStatus.InvalidQueueSize;
        }
        if (interruptsEnabled && vector >= _options.InterruptVectorCount)
        {
            return NvmeStatus.InvalidInterruptVector;
        }
        // CAP.CQR = 1: queues must be physically contiguous (PC = 1), page aligned and in RAM.
        if (!contiguous || (e.Prp1 & (Prp.PageSize - 1)) != 0
            || !_memory.TryTranslate(e.Prp1, entries * CompletionQueue.EntrySize, out _))
        {
            return NvmeStatus.InvalidField;
        }
        var cq = new CompletionQueue(_memory, (ushort)qid, e.Prp1, entries, interruptsEnabled, vector);
        AttachShadow(cq);
        Volatile.Write(ref _cqs[qid], cq);
        _ioQueueCreated = true;
        return NvmeStatus.Success;
    }

    /// <summary>Create I/O Submission Queue (§5.4): CDW10 QSIZE/QID as for a CQ; CDW11 CQID
    /// 31:16, QPRIO 2:1 (ignored: round robin), PC bit 0.</summary>
    private NvmeStatus CreateIoSubmissionQueue(in SubmissionEntry e)
    {
        var qid = (int)(e.Cdw10 & 0xFFFF);
        var entries = (e.Cdw10 >> 16) + 1;
        var contiguous = (e.Cdw11 & 1) != 0;
        var cqid = (int)(e.Cdw11 >> 16);
        if (qid == 0 || qid > _ioSubmissionQueuesGranted || _sqs[qid] is not null)
        {
            return NvmeStatus.InvalidQueueIdentifier;
        }
        if (entries < 2 || Cc.Iosqes(_cc) != SubmissionEntrySizeLog2)
        {
            return NvmeStatus.InvalidQueueSize;
        }
        if (cqid == 0 || cqid > MaxIoQueuePairs || _cqs[cqid] is not { } cq)
        {
            return NvmeStatus.CompletionQueueInvalid;
        }
        if (!contiguous || (e.Prp1 & (Prp.PageSize - 1)) != 0
            || !_memory.TryTranslate(e.Prp1, entries * SubmissionEntry.Size, out _))
        {
            return NvmeStatus.InvalidField;
        }
        var sq = new SubmissionQueue((ushort)qid, e.Prp1, entries, cq);
        AttachShadow(sq);
        Interlocked.Increment(ref cq.AttachedSubmissionQueues);
        Volatile.Write(ref _sqs[qid], sq);
        _ioQueueCreated = true;
        return NvmeStatus.Success;
    }

    /// <summary>Delete I/O Submission Queue (§5.6): commands still in the backend complete as
    /// Command Aborted due to SQ Deletion before this command does.</summary>
    private NvmeStatus DeleteIoSubmissionQueue(in SubmissionEntry e)
    {
        var qid = (int)(e.Cdw10 & 0xFFFF);
        if (qid == 0 || qid > MaxIoQueuePairs || _sqs[qid] is not { } sq)
        {
            return NvmeStatus.InvalidQueueIdentifier;
        }
        AbortInflight(sq, postCompletions: true);
        sq.CompletionQueue.DetachSubmissionQueue(sq);
        Volatile.Write(ref _sqs[qid], null);
        return NvmeStatus.Success;
    }

    /// <summary>Delete I/O Completion Queue (§5.5): refused with Invalid Queue Deletion while a
    /// submission queue still completes into it.</summary>
    private NvmeStatus DeleteIoCompletionQueue(in SubmissionEntry e)
    {
        var qid = (int)(e.Cdw10 & 0xFFFF);
        if (qid == 0 || qid > MaxIoQueuePairs || _cqs[qid] is not { } cq)
        {
            return NvmeStatus.InvalidQueueIdentifier;
        }
        if (Volatile.Read(ref cq.AttachedSubmissionQueues) != 0)
        {
            return NvmeStatus.InvalidQueueDeletion;
        }
        cq.MarkDeleted();
        Volatile.Write(ref _cqs[qid], null);
        return NvmeStatus.Success;
    }

    // ---- Identify (§5.15) ---------------------------------------------------------------

    private const byte CnsNamespace = 0x00;
    private const byte CnsController = 0x01;
    private const byte CnsActiveNamespaceList = 0x02;
    private const byte CnsNamespaceIdentificationDescriptors = 0x03;

    private NvmeStatus Identify(in SubmissionEntry e)
    {
        var cns = (byte)e.Cdw10;
        var data = _adminScratch.AsSpan();
        data.Clear();
        switch (cns)
        {
            case CnsNamespace:
                if (e.Nsid != 1)
                {
                    return NvmeStatus.InvalidNamespace;
                }
                _identifyNamespace.CopyTo(data);
                break;
            case CnsController:
                _identifyController.CopyTo(data);
                break;
            case CnsActiveNamespaceList:
                // Active NSIDs greater than CDW1.NSID, ascending; FFFFFFFEh and up are invalid.
                if (e.Nsid >= 0xFFFF_FFFE)
                {
                    return NvmeStatus.InvalidNamespace;
                }
                if (e.Nsid < 1)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(data, 1);
                }
                break;
            case CnsNamespaceIdentificationDescriptors:
                if (e.Nsid != 1)
                {
                    return NvmeStatus.InvalidNamespace;
                }
                _namespaceDescriptors.CopyTo(data);
                break;
            default:
                return NvmeStatus.InvalidField;
        }
        var status = AdminBuffer(e, IdentifyData.Size, out var segments);
        if (status.IsSuccess)
        {
            Prp.CopyTo(_memory, data, segments);
        }
        return status;
    }

    // ---- Get Log Page (§5.14) -----------------------------------------------------------

    /// <summary>CDW10 LID 7:0, RAE 15, NUMDL 31:16; CDW11 NUMDU 15:0; CDW12/13 the byte offset
    /// (dword aligned). Bytes past the end of the log read as zero.</summary>
    private NvmeStatus GetLogPage(in SubmissionEntry e)
    {
        var lid = (byte)e.Cdw10;
        var dwords = (((ulong)(e.Cdw11 & 0xFFFF) << 16) | (e.Cdw10 >> 16)) + 1;
        var offset = ((ulong)e.Cdw13 << 32) | e.Cdw12;
        var log = _adminScratch.AsSpan();
        log.Clear();
        int size;
        switch (lid)
        {
            case LogPageId.ErrorInformation:
                // ELPE = 0: one entry, and no error has been logged in it.
                size = LogPageId.ErrorInformationEntrySize;
                break;
            case LogPageId.SmartHealth:
                if (e.Nsid is not (0 or 1 or 0xFFFF_FFFF))
                {
                    return NvmeStatus.InvalidNamespace;
                }
                size = LogPageId.SmartHealthSize;
                BuildSmartLog(log);
                break;
            case LogPageId.FirmwareSlot:
                size = LogPageId.FirmwareSlotSize;
                // AFI: slot 1 active (bits 2:0); FRS1 at byte 8.
                log[0] = 1;
                _identifyController.AsSpan(IdentifyData.Controller.Fr, 8).CopyTo(log[8..]);
                break;
            default:
                return NvmeStatus.InvalidLogPage;
        }
        if ((offset & 3) != 0 || offset >= (ulong)size || dwords * 4 > MaxTransferBytes)
        {
            return NvmeStatus.InvalidField;
        }
        var status = AdminBuffer(e, (int)(dwords * 4), out var segments);
        if (status.IsSuccess)
        {
            Prp.CopyTo(_memory, log[(int)offset..size], segments);
        }
        return status;
    }

    /// <summary>SMART / Health Information (§5.14.1.2).</summary>
    private void BuildSmartLog(Span<byte> log)
    {
        // Composite temperature 1:2 in kelvins, Available Spare 3, threshold 4, Percentage Used 5.
        BinaryPrimitives.WriteUInt16LittleEndian(log[1..], 310);
        log[3] = 100;
        log[4] = 10;
        log[5] = 0;
        // Data Units Read/Written (thousands of 512-byte units, rounded up), Host Read/Write Commands: u128 each.
        BinaryPrimitives.WriteUInt64LittleEndian(log[32..], DataUnits(Interlocked.Read(ref _bytesRead)));
        BinaryPrimitives.WriteUInt64LittleEndian(log[48..], DataUnits(Interlocked.Read(ref _bytesWritten)));
        BinaryPrimitives.WriteUInt64LittleEndian(log[64..], (ulong)Interlocked.Read(ref _readCommands));
        BinaryPrimitives.WriteUInt64LittleEndian(log[80..], (ulong)Interlocked.Read(ref _writeCommands));
    }

    private static ulong DataUnits(long bytes) => ((ulong)bytes + 512_000 - 1) / 512_000;

    // ---- Features (§5.21) ---------------------------------------------------------------

    private const uint FeatureChangeable = 1 << 2;

    private NvmeStatus SetFeatures(in SubmissionEntry e, out uint dw0)
    {
        dw0 = 0;
        var fid = (byte)e.Cdw10;
        // SV (CDW10 bit 31): nothing is saveable.
        if ((e.Cdw10 & 0x8000_0000) != 0)
        {
            return NvmeStatus.FeatureNotSaveable;
        }
        var v = e.Cdw11;
        switch (fid)
        {
            case FeatureId.Arbitration:
                _arbitration = v;
                break;
            case FeatureId.PowerManagement:
                // PS 4:0 must name a power state; NPSS = 0 offers only state 0.
                if ((v & 0x1F) != 0)
                {
                    return NvmeStatus.InvalidField;
                }
                _powerManagement = v & 0xFF;
                break;
            case FeatureId.ErrorRecovery:
                _errorRecovery = v & 0x1_FFFF;
                break;
            case FeatureId.VolatileWriteCache:
                Volatile.Write(ref _volatileWriteCache, (v & 1) != 0);
                break;
            case FeatureId.NumberOfQueues:
            {
                // §5.21.1.7: only before any I/O queue exists; NSQR 15:0 and NCQR 31:16 are 0's based, FFFFh invalid.
                if (_ioQueueCreated)
                {
                    return NvmeStatus.CommandSequenceError;
                }
                var nsqr = v & 0xFFFF;
                var ncqr = v >> 16;
                if (nsqr == 0xFFFF || ncqr == 0xFFFF)
                {
                    return NvmeStatus.InvalidField;
                }
                _ioSubmissionQueuesGranted = (int)Math.Min(nsqr + 1, MaxIoQueuePairs);
                _ioCompletionQueuesGranted = (int)Math.Min(ncqr + 1, MaxIoQueuePairs);
                dw0 = QueuesGranted();
                break;
            }
            case FeatureId.InterruptCoalescing:
                Volatile.Write(ref _interruptCoalescing, v & 0xFFFF);
                break;
            case FeatureId.InterruptVectorConfiguration:
            {
                var iv = (int)(v & 0xFFFF);
                if (iv >= _options.InterruptVectorCount)
                {
                    return NvmeStatus.InvalidField;
                }
                _coalescingDisabled[iv] = (v & 0x1_0000) != 0;
                break;
            }
            case FeatureId.WriteAtomicityNormal:
                _writeAtomicityNormal = v & 1;
                break;
            case FeatureId.AsyncEventConfiguration:
                _asyncEventConfig = v;
                break;
            default:
                return NvmeStatus.InvalidField;
        }
        return NvmeStatus.Success;
    }

    private uint QueuesGranted() =>
        (uint)(_ioSubmissionQueuesGranted - 1) | ((uint)(_ioCompletionQueuesGranted - 1) << 16);

    /// <summary>Get Features (§5.13): SEL 10:8 picks current (0),
    /// default (1), saved (2, equal to default: nothing is saveable) or capabilities (3).</summary>
    private NvmeStatus GetFeatures(in SubmissionEntry e, out uint dw0)
    {
        dw0 = 0;
        var fid = (byte)e.Cdw10;
        var select = (e.Cdw10 >> 8) & 0x7;
        if (select > 3)
        {
            return NvmeStatus.InvalidField;
        }
        var current = select == 0;
        switch (fid)
        {
            case FeatureId.Arbitration:
                dw0 = current ? _arbitration : 0;
                break;
            case FeatureId.PowerManagement:
                dw0 = current ? _powerManagement : 0;
                break;
            case FeatureId.ErrorRecovery:
                dw0 = current ? _errorRecovery : 0;
                break;
            case FeatureId.VolatileWriteCache:
                dw0 = !current || _volatileWriteCache ? 1u : 0u;
                break;
            case FeatureId.NumberOfQueues:
                dw0 = current ? QueuesGranted() : (MaxIoQueuePairs - 1) | ((MaxIoQueuePairs - 1) << 16);
                break;
            case FeatureId.InterruptCoalescing:
                dw0 = current ? _interruptCoalescing : 0;
                break;
            case FeatureId.InterruptVectorConfiguration:
            {
                var iv = (int)(e.Cdw11 & 0xFFFF);
                if (iv >= _options.InterruptVectorCount)
                {
                    return NvmeStatus.InvalidField;
                }
                dw0 = (uint)iv | (current && _coalescingDisabled[iv] ? 0x1_0000u : 0);
                break;
            }
            case FeatureId.WriteAtomicityNormal:
                dw0 = current ? _writeAtomicityNormal : 0;
                break;
            case FeatureId.AsyncEventConfiguration:
                dw0 = current ? _asyncEventConfig : 0;
                break;
            default:
                return NvmeStatus.InvalidField;
        }
        if (select == 3)
        {
            // bit 2 changeable, bit 1 namespace specific, bit 0 saveable.
            dw0 = FeatureChangeable;
        }
        return NvmeStatus.Success;
    }

    // ---- Asynchronous events (§5.2) -----------------------------------------------------

    /// <summary>Held until an event happens; at most AERL + 1 outstanding, more fail with
    /// Asynchronous Event Request Limit Exceeded. The completion entry reserved for it stays
    /// reserved while it is held.</summary>
    private NvmeStatus AsyncEventRequest(in SubmissionEntry e, out uint dw0, out bool deferred)
    {
        dw0 = 0;
        deferred = false;
        if (_pendingEventCount > 0)
        {
            dw0 = _pendingEvents[0];
            _pendingEvents.AsSpan(1, --_pendingEventCount).CopyTo(_pendingEvents);
            return NvmeStatus.Success;
        }
        if (_aerCount == AsyncEventRequestLimit)
        {
            return NvmeStatus.AsyncEventRequestLimitExceeded;
        }
        _aerCommandIds[_aerCount++] = e.CommandId;
        deferred = true;
        return NvmeStatus.Success;
    }

    /// <summary>Reports <paramref name="eventDw0"/> through an outstanding Asynchronous Event
    /// Request, or keeps it (up to 8; more are dropped) for the next one.</summary>
    private void RaiseAsyncEvent(uint eventDw0)
    {
        SubmissionQueue? asq;
        ushort commandId;
        lock (_stateLock)
        {
            asq = _sqs[0];
            if (asq is null)
            {
                return;
            }
            if (_aerCount == 0)
            {
                if (_pendingEventCount < _pendingEvents.Length)
                {
                    _pendingEvents[_pendingEventCount++] = eventDw0;
                }
                return;
            }
            commandId = _aerCommandIds[0];
            _aerCommandIds.AsSpan(1, --_aerCount).CopyTo(_aerCommandIds);
        }
        Complete(asq, commandId, eventDw0, NvmeStatus.Success);
    }
}

namespace Propolis.Core.Hw.Nvme;

/// <summary>NVM command set opcodes (NVMe 1.4 §6).</summary>
internal static class IoOpcode
{
    public const byte Flush = 0x00;
    public const byte Write = 0x01;
    public const byte Read = 0x02;
    public const byte WriteZeroes = 0x08;
    public const byte DatasetManagement = 0x09;
}

public sealed partial class NvmeController
{
    /// <summary>Starts an I/O command; a command that fails validation completes at once.</summary>
    private void ExecuteIo(SubmissionQueue sq, in SubmissionEntry e, NvmeIoRequest request)
    {
        request.CommandId = e.CommandId;
        var status = e.Fuse != 0 || e.Psdt != 0
            ? NvmeStatus.InvalidField
            : e.Opcode switch
            {
                IoOpcode.Flush => PrepareFlush(e, request),
                IoOpcode.Write => PrepareReadWrite(e, request, write: true),
                IoOpcode.Read => PrepareReadWrite(e, request, write: false),
                IoOpcode.WriteZeroes => PrepareWriteZeroes(e, request),
                IoOpcode.DatasetManagement => PrepareDatasetManagement(e, request),
                _ => NvmeStatus.InvalidOpcode,
            };
        if (status.IsSuccess && request.State == NvmeIoRequest.StatePreparing)
        {
            Volatile.Write(ref request.State, NvmeIoRequest.StateInFlight);
            _backend.Submit(request);
            return;
        }
        // Failed validation, or nothing for the backend to do.
        Return(request);
        Complete(sq, e.CommandId, 0, status);
    }

    /// <summary>Flush (§6.8): NSID 1, or FFFFFFFFh for all namespaces (Identify VWC bits 2:1 = 11b).</summary>
    private NvmeStatus PrepareFlush(in SubmissionEntry e, NvmeIoRequest r)
    {
        if (e.Nsid is not (1 or 0xFFFF_FFFF))
        {
            return NvmeStatus.InvalidNamespace;
        }
        r.Prepare(this, NvmeIoOperation.Flush, 0, 0, 0, 0);
        r.ForceUnitAccess = false;
        return NvmeStatus.Success;
    }

    /// <summary>Checks NSID and the LBA range [SLBA, SLBA + NLB] (CDW10–11 SLBA, CDW12 NLB 15:0,
    /// 0's based) against the namespace size, without overflow.</summary>
    private NvmeStatus CheckRange(in SubmissionEntry e, out ulong offset, out ulong length)
    {
        offset = 0;
        length = 0;
        if (e.Nsid != 1)
        {
            return NvmeStatus.InvalidNamespace;
        }
        var slba = ((ulong)e.Cdw11 << 32) | e.Cdw10;
        var blocks = (ulong)(e.Cdw12 & 0xFFFF) + 1;
        if (slba > _namespaceBlocks || blocks > _namespaceBlocks - slba)
        {
            return NvmeStatus.LbaOutOfRange;
        }
        offset = slba << _blockShift;
        length = blocks << _blockShift;
        return NvmeStatus.Success;
    }

    /// <summary>Read (§6.9) and Write (§6.15): CDW12 FUA bit 30; data through PRP1/PRP2 (§4.3),
    /// at most MDTS (1 MiB), else Invalid Field in Command.</summary>
    private NvmeStatus PrepareReadWrite(in SubmissionEntry e, NvmeIoRequest r, bool write)
    {
        var status = CheckRange(e, out var offset, out var length);
        if (!status.IsSuccess)
        {
            return status;
        }
        if (length > MaxTransferBytes)
        {
            return NvmeStatus.InvalidField;
        }
        if (write && _backend.IsReadOnly)
        {
            return NvmeStatus.NamespaceWriteProtected;
        }
        status = Prp.Resolve(_memory, e.Prp1, e.Prp2, length, r.SegmentBuffer, out var count);
        if (!status.IsSuccess)
        {
            return status;
        }
        r.Prepare(this, write ? NvmeIoOperation.Write : NvmeIoOperation.Read, offset, length, count, 0);
        r.ForceUnitAccess = (e.Cdw12 & (1u << 30)) != 0;
        return NvmeStatus.Success;
    }

    /// <summary>Write Zeroes (§6.16): the same LBA range rules; no data transfer, so MDTS does
    /// not apply (WZSL is not reported).</summary>
    private NvmeStatus PrepareWriteZeroes(in SubmissionEntry e, NvmeIoRequest r)
    {
        var status = CheckRange(e, out var offset, out var length);
        if (!status.IsSuccess)
        {
            return status;
        }
        if (_backend.IsReadOnly)
        {
            return NvmeStatus.NamespaceWriteProtected;
        }
        r.Prepare(this, NvmeIoOperation.WriteZeroes, offset, length, 0, 0);
        r.ForceUnitAccess = (e.Cdw12 & (1u << 30)) != 0;
        return NvmeStatus.Success;
    }

    /// <summary>Dataset Management (§6.7): CDW10 NR 7:0 (ranges, 0's based), CDW11 AD bit 2
    /// (deallocate). Each 16-byte range is context attributes 3:0, length in
    /// logical blocks 7:4, starting LBA 15:8. Without AD the ranges are hints and the command
    /// completes with nothing done.</summary>
    private NvmeStatus PrepareDatasetManagement(in SubmissionEntry e, NvmeIoRequest r)
    {
        if (e.Nsid != 1)
        {
            return NvmeStatus.InvalidNamespace;
        }
        if ((e.Cdw11 & (1u << 2)) == 0)
        {
            r.State = NvmeIoRequest.StateCompleting;
            return NvmeStatus.Success;
        }
        if (_backend.IsReadOnly)
        {
            return NvmeStatus.NamespaceWriteProtected;
        }
        var rangeCount = (int)(e.Cdw10 & 0xFF) + 1;
        Span<byte> raw = stackalloc byte[MaxDsmRanges * 16];
        raw = raw[..(rangeCount * 16)];
        var status = Prp.Resolve(_memory, e.Prp1, e.Prp2, (ulong)raw.Length, r.SegmentBuffer, out var count);
        if (!status.IsSuccess)
        {
            return status;
        }
        Prp.CopyFrom(_memory, r.SegmentBuffer[..count], raw);
        var ranges = r.RangeBuffer;
        var kept = 0;
        for (var i = 0; i < rangeCount; i++)
        {
            var d = raw.Slice(i * 16, 16);
            var blocks = (ulong)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d[4..]);
            var slba = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(d[8..]);
            if (slba > _namespaceBlocks || blocks > _namespaceBlocks - slba)
            {
                return NvmeStatus.LbaOutOfRange;
            }
            if (blocks != 0)
            {
                ranges[kept++] = new ByteRange(slba << _blockShift, blocks << _blockShift);
            }
        }
        if (kept == 0)
        {
            r.State = NvmeIoRequest.StateCompleting;
            return NvmeStatus.Success;
        }
        r.Prepare(this, NvmeIoOperation.Discard, 0, 0, 0, kept);
        r.ForceUnitAccess = false;
        return NvmeStatus.Success;
    }

    // ---- Shadow doorbells (§5.10) ------------------------------------------------

    private ulong _shadowDoorbells;
    private ulong _eventIndexes;

    /// <summary>Doorbell Buffer Config (§5.10): PRP1 the Shadow Doorbell buffer, PRP2 the EventIdx
    /// buffer, each one page-aligned page laid out like the doorbell registers. The host then
    /// writes new I/O queue tails and heads to the shadow buffer and rings the MMIO doorbell only
    /// when the value passes the EventIdx the controller published. As in Linux, which uses the
    /// buffers for I/O queues only, the admin queue keeps its MMIO doorbells.</summary>
    private NvmeStatus DoorbellBufferConfig(in SubmissionEntry e)
    {
        if (e.Prp1 == 0 || e.Prp2 == 0 || ((e.Prp1 | e.Prp2) & (Prp.PageSize - 1)) != 0
            || !_memory.TryTranslate(e.Prp1, Prp.PageSize, out _) || !_memory.TryTranslate(e.Prp2, Prp.PageSize, out _))
        {
            return NvmeStatus.InvalidField;
        }
        var first = _shadowDoorbells == 0;
        _shadowDoorbells = e.Prp1;
        _eventIndexes = e.Prp2;
        if (first)
        {
            ShadowDoorbellsChanged?.Invoke(true);
        }
        for (var i = 1; i <= MaxIoQueuePairs; i++)
        {
            if (_sqs[i] is { } sq) { AttachShadow(sq); }
            if (_cqs[i] is { } cq) { AttachShadow(cq); }
        }
        return NvmeStatus.Success;
    }

    /// <summary>Called (under the controller's state lock) when shadow doorbells start being used
    /// (true) or stop on a controller reset (false). With them the host's doorbell value is in guest
    /// memory, so the PCI glue may have the hypervisor swallow the I/O doorbell writes (ioeventfd,
    /// which loses the value) and call <see cref="ShadowDoorbellRung"/> instead.</summary>
    public Action<bool>? ShadowDoorbellsChanged { get; set; }

    /// <summary>I/O doorbell <paramref name="index"/> (2·qid for a submission queue's tail, 2·qid+1
    /// for a completion queue's head, §3.1.24–25) was written while shadow doorbells are in use:
    /// the new value is read from the shadow buffer. Callable from any thread.</summary>
    public void ShadowDoorbellRung(int index)
    {
        var qid = index >> 1;
        if ((_csts & Csts.Rdy) == 0 || qid == 0 || qid > MaxIoQueuePairs)
        {
            return;
        }
        if ((index & 1) == 0)
        {
            // Drain reads the tail from the shadow buffer first.
            Volatile.Read(ref _sqs[qid])?.Kick(s_drain, this);
            return;
        }
        if (Volatile.Read(ref _cqs[qid]) is { } cq)
        {
            cq.RefreshFromShadow();
            if (cq.Starved)
            {
                cq.Starved = false;
                KickQueuesOf(cq);
            }
        }
    }

    private void AttachShadow(SubmissionQueue sq)
    {
        if (_shadowDoorbells != 0 && sq.Id != 0)
        {
            var offset = (ulong)(2 * sq.Id) * 4;
            sq.SetShadow(_memory, _shadowDoorbells + offset, _eventIndexes + offset);
        }
    }

    private void AttachShadow(CompletionQueue cq)
    {
        if (_shadowDoorbells != 0 && cq.Id != 0)
        {
            var offset = (ulong)(2 * cq.Id + 1) * 4;
            cq.SetShadow(_shadowDoorbells + offset, _eventIndexes + offset);
        }
    }
}

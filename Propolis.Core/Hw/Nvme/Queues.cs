using System.Buffers.Binary;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Nvme;

/// <summary>A submission queue entry (NVMe 1.4 §4.2), read once from guest memory.</summary>
internal readonly struct SubmissionEntry
{
    public const int Size = 64;

    public readonly uint Cdw0;
    public readonly uint Nsid;
    public readonly ulong Prp1;
    public readonly ulong Prp2;
    public readonly uint Cdw10, Cdw11, Cdw12, Cdw13, Cdw14, Cdw15;

    public SubmissionEntry(ReadOnlySpan<byte> b)
    {
        Cdw0 = BinaryPrimitives.ReadUInt32LittleEndian(b);
        Nsid = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]);
        // Bytes 8..23: CDW2-3 (reserved) and MPTR (metadata: no namespace here has any).
        Prp1 = BinaryPrimitives.ReadUInt64LittleEndian(b[24..]);
        Prp2 = BinaryPrimitives.ReadUInt64LittleEndian(b[32..]);
        Cdw10 = BinaryPrimitives.ReadUInt32LittleEndian(b[40..]);
        Cdw11 = BinaryPrimitives.ReadUInt32LittleEndian(b[44..]);
        Cdw12 = BinaryPrimitives.ReadUInt32LittleEndian(b[48..]);
        Cdw13 = BinaryPrimitives.ReadUInt32LittleEndian(b[52..]);
        Cdw14 = BinaryPrimitives.ReadUInt32LittleEndian(b[56..]);
        Cdw15 = BinaryPrimitives.ReadUInt32LittleEndian(b[60..]);
    }

    /// <summary>CDW0 7:0.</summary>
    public byte Opcode => (byte)Cdw0;
    /// <summary>CDW0 9:8 Fused Operation.</summary>
    public uint Fuse => (Cdw0 >> 8) & 0x3;
    /// <summary>CDW0 15:14 PRP or SGL for Data Transfer.</summary>
    public uint Psdt => (Cdw0 >> 14) & 0x3;
    /// <summary>CDW0 31:16.</summary>
    public ushort CommandId => (ushort)(Cdw0 >> 16);
}

/// <summary>A completion queue in guest memory (NVMe 1.4 §4.6): the controller owns the tail
/// and the phase tag, the host owns the head through its doorbell.</summary>
/// <remarks>Every command taken from a submission queue first reserves an entry here, so a
/// completion always has room and is never held back. Posting is serialised by a lock per
/// queue (completions arrive from vCPU and backend threads) and allocates nothing.</remarks>
internal sealed class CompletionQueue
{
    public const int EntrySize = 16;

    private readonly GuestMemory _memory;
    private readonly object _lock = new();
    private uint _head;
    private uint _tail;
    private bool _phase = true;
    private uint _reserved;
    private bool _deleted;

    public CompletionQueue(GuestMemory memory, ushort id, ulong baseAddress, uint size, bool interruptsEnabled, ushort vector)
    {
        _memory = memory;
        Id = id;
        BaseAddress = baseAddress;
        Size = size;
        InterruptsEnabled = interruptsEnabled;
        Vector = vector;
    }

    public ushort Id { get; }
    public ulong BaseAddress { get; }
    public uint Size { get; }
    public bool InterruptsEnabled { get; }
    public ushort Vector { get; }

    /// <summary>Submission queues completing here (for Invalid Queue Deletion and for resuming
    /// a queue that stalled on a full completion queue).</summary>
    public int AttachedSubmissionQueues;

    /// <summary>Set when a submission queue stopped because no entry here was free.</summary>
    public volatile bool Starved;

    public uint Head { get { lock (_lock) { return _head; } } }

    /// <summary>Entries posted and not yet released by the host, plus entries reserved.</summary>
    private uint Used => ((_tail + Size - _head) % Size) + _reserved;

    private ulong _shadowHead;
    private ulong _eventIndex;

    /// <summary>Where the host writes this queue's head when shadow doorbells are configured
    /// (§5.10), and where the controller publishes the head it wants to hear about. Both start
    /// out holding the head the doorbell last set, so a queue already in use keeps its place.</summary>
    public void SetShadow(ulong shadowHead, ulong eventIndex)
    {
        lock (_lock)
        {
            _shadowHead = shadowHead;
            _eventIndex = eventIndex;
            _memory.TryWriteUInt32(shadowHead, _head);
            _memory.TryWriteUInt32(eventIndex, _head);
        }
    }

    /// <summary>Reserves room for one completion; false when the queue is full (one entry always
    /// stays empty: a full queue has head = tail + 1, §4.1.2).</summary>
    public bool TryReserve()
    {
        lock (_lock)
        {
            if (_deleted)
            {
                return false;
            }
            if (Used >= Size - 1 && _shadowHead != 0)
            {
                // The host may have released entries in the shadow buffer only. Ask to be told
                // (EventIdx = the head we know) before looking again, so no release is missed.
                RefreshFromShadowLocked();
                if (Used >= Size - 1)
                {
                    _memory.TryWriteUInt32(_eventIndex, _head);
                    Interlocked.MemoryBarrier();
                    RefreshFromShadowLocked();
                }
            }
            if (Used >= Size - 1)
            {
                return false;
            }
            _reserved++;
            return true;
        }
    }

    /// <summary>Takes the head from the shadow buffer, if there is one (ioeventfd doorbells).</summary>
    public void RefreshFromShadow()
    {
        lock (_lock)
        {
            if (_shadowHead != 0)
            {
                RefreshFromShadowLocked();
            }
        }
    }

    private void RefreshFromShadowLocked()
    {
        if (_memory.TryReadUInt32(_shadowHead, out var head))
        {
            _ = TrySetHeadLocked(head);
        }
    }

    public void Unreserve()
    {
        lock (_lock)
        {
            if (_reserved > 0) { _reserved--; }
        }
    }

    /// <summary>Writes a completion entry into a reserved slot (§4.6): DW0 the command
    /// specific result, DW2 SQ head and SQ id, DW3 command id, phase tag and status. Returns
    /// whether the host should be interrupted.</summary>
    /// <remarks>Interrupt coalescing (§5.21.1.8): with <paramref name="coalesceEntries"/> above 1,
    /// the interrupt is held until that many entries are unsignalled, <paramref name="coalesceTicks"/>
    /// (Stopwatch ticks) have passed since the first of them, or no other command that completes
    /// here is in progress (nothing else would come to trigger it).</remarks>
    public bool Post(uint dw0, ushort sqHead, ushort sqId, ushort commandId, NvmeStatus status, SubmissionQueue? source,
        int coalesceEntries = 1, long coalesceTicks = 0)
    {
        lock (_lock)
        {
            if (_reserved > 0) { _reserved--; }
            if (_deleted || (source is not null && source.Deleted))
            {
                return false;
            }
            var gpa = BaseAddress + (ulong)_tail * EntrySize;
            if (!_memory.TryGetSpan(gpa, EntrySize, out var e))
            {
                // The queue was validated at creation; RAM does not shrink.
                return false;
            }
            BinaryPrimitives.WriteUInt32LittleEndian(e, dw0);
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 0);
            BinaryPrimitives.WriteUInt32LittleEndian(e[8..], (uint)(sqHead | (sqId << 16)));
            // The dword holding the phase tag goes last: the host polls on it.
            Volatile.Write(ref System.Runtime.CompilerServices.Unsafe.As<byte, uint>(ref e[12]),
                (uint)(commandId | ((_phase ? 1 : 0) << 16) | (status.Field << 17)));
            if (++_tail == Size)
            {
                _tail = 0;
                _phase = !_phase;
            }
            if (!InterruptsEnabled)
            {
                return false;
            }
            if (coalesceEntries <= 1)
            {
                _unsignalled = 0;
                return true;
            }
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            if (_unsignalled++ == 0)
            {
                _firstUnsignalled = now;
            }
            if (_unsignalled >= coalesceEntries || _reserved == 0 || now - _firstUnsignalled >= coalesceTicks)
            {
                _unsignalled = 0;
                return true;
            }
            return false;
        }
    }

    private int _unsignalled;
    private long _firstUnsignalled;

    /// <summary>Completion Queue y Head Doorbell (§3.1.25). The host may only release entries
    /// that were posted: a value outside [head, tail] (circularly) or ≥ the queue size is an
    /// Invalid Doorbell Write Value (§4.1, §5.2.1) and is ignored.</summary>
    public bool TrySetHead(uint value)
    {
        lock (_lock)
        {
            return TrySetHeadLocked(value);
        }
    }

    private bool TrySetHeadLocked(uint value)
    {
        if (value >= Size)
        {
            return false;
        }
        var posted = (_tail + Size - _head) % Size;
        var released = (value + Size - _head) % Size;
        if (released > posted)
        {
            return false;
        }
        _head = value;
        return true;
    }

    public void MarkDeleted()
    {
        lock (_lock) { _deleted = true; }
    }

    /// <summary>Marks <paramref name="sq"/> deleted under this queue's lock, so no completion of
    /// it lands after its deletion completed.</summary>
    public void DetachSubmissionQueue(SubmissionQueue sq)
    {
        lock (_lock)
        {
            sq.Deleted = true;
            AttachedSubmissionQueues--;
        }
    }
}

/// <summary>A submission queue in guest memory (NVMe 1.4 §4.1): the host owns the tail through
/// its doorbell, the controller the head.</summary>
/// <remarks>One thread at a time drains a queue: a doorbell or a resume "kicks" it, and a kick
/// that arrives while another thread drains makes that thread go round once more.</remarks>
internal sealed class SubmissionQueue
{
    private int _kicks;
    private uint _tail;

    public SubmissionQueue(ushort id, ulong baseAddress, uint size, CompletionQueue completionQueue)
    {
        Id = id;
        BaseAddress = baseAddress;
        Size = size;
        CompletionQueue = completionQueue;
    }

    public ushort Id { get; }
    public ulong BaseAddress { get; }
    public uint Size { get; }
    public CompletionQueue CompletionQueue { get; }

    /// <summary>Next entry the controller consumes; only the draining thread writes it.</summary>
    public uint Head;

    public volatile bool Deleted;

    public uint Tail => Volatile.Read(ref _tail);

    /// <summary>Submission Queue y Tail Doorbell (§3.1.24): a value ≥ the queue size is an
    /// Invalid Doorbell Write Value and is ignored.</summary>
    public bool TrySetTail(uint value)
    {
        if (value >= Size)
        {
            return false;
        }
        Volatile.Write(ref _tail, value);
        return true;
    }

    public bool IsEmpty => Head == Tail;

    private ulong _shadowTail;
    private ulong _eventIndex;

    /// <summary>Where the host writes this queue's tail when shadow doorbells are configured
    /// (§5.10), and where the controller publishes the tail it has seen. Both start out holding
    /// the tail the doorbell last set, so a queue already in use keeps its place.</summary>
    public void SetShadow(GuestMemory memory, ulong shadowTail, ulong eventIndex)
    {
        memory.TryWriteUInt32(shadowTail, Tail);
        memory.TryWriteUInt32(eventIndex, Tail);
        Volatile.Write(ref _eventIndex, eventIndex);
        Volatile.Write(ref _shadowTail, shadowTail);
    }

    /// <summary>Takes the tail from the shadow buffer, if there is one (an out-of-range value
    /// there is ignored like one written to the doorbell).</summary>
    public void RefreshFromShadow(GuestMemory memory)
    {
        var shadow = Volatile.Read(ref _shadowTail);
        if (shadow != 0 && memory.TryReadUInt32(shadow, out var tail))
        {
            _ = TrySetTail(tail);
        }
    }

    /// <summary>After draining: publishes EventIdx = the tail consumed, so the host rings the
    /// doorbell for anything newer, then looks at the shadow once more (the host may have
    /// written it before seeing the new EventIdx). True if there is more to do.</summary>
    public bool PublishEventIndex(GuestMemory memory)
    {
        var shadow = Volatile.Read(ref _shadowTail);
        if (shadow == 0)
        {
            return false;
        }
        memory.TryWriteUInt32(Volatile.Read(ref _eventIndex), Tail);
        Interlocked.MemoryBarrier();
        RefreshFromShadow(memory);
        return !IsEmpty;
    }

    public ulong EntryAddress(uint index) => BaseAddress + (ulong)index * SubmissionEntry.Size;

    /// <summary>Runs <paramref name="drain"/> unless another thread is draining, in which case
    /// that thread drains again after its current pass.</summary>
    public void Kick<TState>(Action<SubmissionQueue, TState> drain, TState state)
    {
        if (Interlocked.Increment(ref _kicks) != 1)
        {
            return;
        }
        while (true)
        {
            Volatile.Write(ref _kicks, 1);
            drain(this, state);
            if (Interlocked.CompareExchange(ref _kicks, 0, 1) == 1)
            {
                return;
            }
        }
    }
}

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Virtio;

/// <summary>One buffer of a descriptor chain: a guest-physical range already checked to lie in RAM.</summary>
public readonly record struct ChainSegment(ulong Address, uint Length, bool Writable);

/// <summary>A validated descriptor chain (virtio 1.2 §2.7.5): its head index (the id returned in
/// the used ring) and the segments the queue wrote into the caller's span, device-readable first.</summary>
public readonly record struct DescriptorChain(ushort Head, int SegmentCount, uint ReadableLength, uint WritableLength);

/// <summary>One used-ring element (§2.7.8): the chain's head id and the bytes the device wrote.</summary>
public readonly record struct UsedElement(ushort Head, uint Length);

/// <summary>Where a split virtqueue lives and where the device is in it: what another data path
/// (vhost: VHOST_SET_VRING_NUM, _ADDR and _BASE) needs to take the queue over, and what it hands back.</summary>
/// <param name="Size">The queue size (vring num).</param>
/// <param name="DescriptorTable">Guest-physical address of the descriptor table.</param>
/// <param name="AvailRing">Guest-physical address of the available ring (driver area).</param>
/// <param name="UsedRing">Guest-physical address of the used ring (device area).</param>
/// <param name="LastAvailIndex">The next available-ring index the device reads (vring base).</param>
public readonly record struct VirtQueueRing(ushort Size, ulong DescriptorTable, ulong AvailRing, ulong UsedRing, ushort LastAvailIndex);

/// <summary>Why a chain was refused. A refused chain whose head index is valid is returned to the
/// driver with 0 bytes written; see <see cref="VirtQueue"/>.</summary>
public enum ChainError : byte
{
    None,
    /// <summary>A <c>next</c> index, or an index inside an indirect table, is not below the table size (§2.7.5).</summary>
    IndexOutOfRange,
    /// <summary>More descriptors visited than the table holds: the chain loops (§2.7.5.2).</summary>
    Loop,
    /// <summary>More buffers than the device accepts in one chain.</summary>
    TooManySegments,
    /// <summary>A buffer or an indirect table is not inside guest RAM.</summary>
    AddressOutOfRange,
    /// <summary>A buffer of length 0.</summary>
    ZeroLength,
    /// <summary>A device-readable buffer after a device-writable one (§2.7.4.2).</summary>
    ReadableAfterWritable,
    /// <summary>INDIRECT inside an indirect table (§2.7.5.3.1).</summary>
    NestedIndirect,
    /// <summary>INDIRECT together with NEXT (§2.7.5.3.1).</summary>
    IndirectWithNext,
    /// <summary>An indirect table whose length is 0, not a multiple of 16, or larger than the device accepts (§2.7.5.3.1).</summary>
    IndirectLength,
    /// <summary>INDIRECT used although VIRTIO_F_INDIRECT_DESC was not negotiated (§2.7.5.3.1).</summary>
    IndirectNotNegotiated,
    /// <summary>The buffers add up to more than 2^32-1 bytes, which no used-ring length can express.</summary>
    LengthOverflow,
    /// <summary>The chain is well formed but the device type cannot answer it (e.g. a virtio-blk
    /// request without a device-writable status byte, §5.2.6).</summary>
    DeviceRejected,
}

/// <summary>Outcome of <see cref="VirtQueue.TryPop"/>.</summary>
public enum PopResult : byte
{
    /// <summary>A valid chain was returned.</summary>
    Chain,
    /// <summary>No buffers available (or the queue is not enabled).</summary>
    Empty,
    /// <summary>The driver corrupted the ring (a head index ≥ queue size, or <c>avail.idx</c> moved
    /// further than the queue size): the queue stops and the device needs a reset (§2.1.2).</summary>
    Broken,
}

/// <summary>What the queue tells the device transport.</summary>
public interface IVirtQueueEvents
{
    /// <summary>Used buffers were published and the driver wants to hear about it (§2.7.7, §2.7.10):
    /// raise the queue's interrupt. Called on the thread that completed the buffer, outside any queue lock.</summary>
    void QueueInterrupt(VirtQueue queue);

    /// <summary>The queue is broken beyond what a single chain refusal can express: set
    /// DEVICE_NEEDS_RESET and send a configuration change notification (§2.1.2).</summary>
    void QueueNeedsReset(VirtQueue queue);
}

/// <summary>A split virtqueue (virtio 1.2 §2.7): the device side of a descriptor table, an available
/// ring and a used ring in guest memory.</summary>
/// <remarks>
/// <para>The driver configures the size and the three ring addresses (modern transport, §4.1.4.3) or
/// one page frame number (legacy, §2.7.2 "Legacy Interfaces: A Note on Virtqueue Layout"), then the
/// queue is enabled: the three areas are checked for alignment (§2.7: 16, 2 and 4 bytes) and for
/// lying in RAM once, and their host addresses are kept, so the hot path does no lookups for them.</para>
/// <para>Errors. Every index and length the driver wrote is checked before use; nothing here throws
/// for a guest value. A malformed chain with a valid head index (a loop, an index beyond the table,
/// a buffer outside RAM, a zero-length buffer, a readable after a writable buffer, nested indirect,
/// a bad indirect length, a total beyond 4 GiB) is refused: it is put in the used ring with length 0
/// so that the driver gets its descriptors back and a device-specific status is never written into
/// memory the device could not trust; it is counted in <see cref="MalformedChains"/> and logged once.
/// A head index ≥ queue size or an <c>avail.idx</c> that moved further than the queue size cannot be
/// answered through the used ring (there is no valid id to return), so the queue stops and
/// <see cref="IVirtQueueEvents.QueueNeedsReset"/> asks the transport for DEVICE_NEEDS_RESET (§2.1.2).</para>
/// <para>Threads. <see cref="TryPop"/> and the notification arming calls belong to one thread at a
/// time (the device's queue-notify handler). <see cref="PushUsed"/> may be called from any thread
/// (block completions arrive on backend threads); used-ring writes are serialised by a small lock
/// that covers no I/O. Configuration calls come from the vCPU thread that wrote the register.</para>
/// </remarks>
public sealed unsafe class VirtQueue
{
    private const int DescriptorSize = 16;

    private readonly GuestMemory _memory;
    private readonly IVirtQueueEvents _events;
    private readonly ILogger? _logger;
    private readonly Lock _usedLock = new();

    /// <summary>Host addresses and size of the rings, fixed for one enablement. Replaced, never
    /// mutated, so a thread still draining the queue while another resets it keeps a consistent
    /// view of mapped memory (guest RAM stays mapped for the VM's life).</summary>
    private sealed class Rings(byte* desc, byte* avail, byte* used, ushort size)
    {
        public readonly byte* Desc = desc;
        public readonly byte* Avail = avail;
        public readonly byte* Used = used;
        public readonly ushort Size = size;
    }

    private volatile Rings? _rings;
    private volatile bool _enabled;
    private volatile bool _broken;

    private ushort _nextAvail;   // last_avail_idx: the next available-ring slot the device reads
    private ushort _nextUsed;    // the used.idx value the device will publish next
    private int _generation;
    private int _loggedMalformed;
    private long _malformedChains;

    public VirtQueue(GuestMemory memory, ushort index, ushort maxSize, IVirtQueueEvents events, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(events);
        if (maxSize == 0 || maxSize > 32768 || !IsPowerOfTwo(maxSize))
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "a split virtqueue's size is a power of two up to 32768 (virtio 1.2 §2.7)");
        }
        _memory = memory;
        _events = events;
        _logger = logger;
        Index = index;
        MaxSize = maxSize;
        Size = maxSize;
    }

    /// <summary>The queue's number within its device.</summary>
    public ushort Index { get; }

    /// <summary>The largest size the device offers (the reset value of queue_size, §4.1.4.3).</summary>
    public ushort MaxSize { get; }

    /// <summary>Queue size as configured by the driver.</summary>
    public ushort Size { get; private set; }

    public ulong DescriptorTableAddress { get; private set; }

    /// <summary>The available ring ("driver area", §2.7).</summary>
    public ulong AvailRingAddress { get; private set; }

    /// <summary>The used ring ("device area", §2.7).</summary>
    public ulong UsedRingAddress { get; private set; }

    /// <summary>The MSI-X vector the transport uses for this queue (0xFFFF: none, §4.1.5.1.2).</summary>
    public ushort MsixVector { get; set; } = 0xFFFF;

    /// <summary>The legacy queue address register: the page frame number of the ring (§4.1.4.8).</summary>
    public uint LegacyPfn { get; private set; }

    /// <summary>True while the queue is enabled and not broken.</summary>
    public bool IsEnabled => _enabled && !_broken;

    public bool IsBroken => _broken;

    /// <summary>Applies the negotiated ring features (§2.7.5.3 indirect descriptors, §2.7.10
    /// EVENT_IDX) to this queue; a device calls it for each of its queues at FEATURES_OK.</summary>
    public void ApplyRingFeatures(ulong features)
    {
        EventIdx = (features & VirtioFeatures.RingEventIdx) != 0;
        IndirectDescriptors = (features & VirtioFeatures.RingIndirectDesc) != 0;
    }

    /// <summary>VIRTIO_F_EVENT_IDX was negotiated (set by the transport at FEATURES_OK).</summary>
    public bool EventIdx { get; set; }

    /// <summary>VIRTIO_F_INDIRECT_DESC was negotiated.</summary>
    public bool IndirectDescriptors { get; set; }

    /// <summary>last_avail_idx: the next available-ring index the device reads (free-running,
    /// modulo 2^16; vhost's vring base). Read it while nothing pops from the queue.</summary>
    public ushort LastAvailIndex => _nextAvail;

    /// <summary>The queue's rings and position while it is enabled, else null. Read it while
    /// nothing pops from the queue (the device stopped it, see <see cref="VirtioNet.StopQueue"/>).</summary>
    public VirtQueueRing? Ring
    {
        get
        {
            lock (_usedLock)
            {
                return _enabled && !_broken ? new VirtQueueRing(Size, DescriptorTableAddress, AvailRingAddress, UsedRingAddress, _nextAvail) : null;
            }
        }
    }

    /// <summary>Continues from where another data path left the queue: the device reads the
    /// available ring from <paramref name="lastAvailIndex"/> on (vhost's VHOST_GET_VRING_BASE)
    /// and publishes used elements after the ring's current used.idx. Call it while nothing pops
    /// from or completes into the queue. False if the queue is not enabled.</summary>
    public bool RestoreLastAvailIndex(ushort lastAvailIndex)
    {
        lock (_usedLock)
        {
            var r = _rings;
            if (r is null || _broken)
            {
                return false;
            }
            _nextAvail = lastAvailIndex;
            _nextUsed = Volatile.Read(ref Unsafe.AsRef<ushort>(r.Used + 2));
            return true;
        }
    }

    /// <summary>Sets up the queue as <paramref name="ring"/> describes and enables it, as the
    /// driver's size, address and enable writes would, then continues from its last_avail_idx
    /// (see <see cref="RestoreLastAvailIndex"/>). False (queue disabled) if the size is not one
    /// the queue accepts or the rings are misaligned or outside RAM.</summary>
    public bool TryRestoreRing(VirtQueueRing ring)
    {
        Disable();
        if (!TrySetSize(ring.Size))
        {
            return false;
        }
        SetAddresses(ring.DescriptorTable, ring.AvailRing, ring.UsedRing);
        return TryEnable() && RestoreLastAvailIndex(ring.LastAvailIndex);
    }

    /// <summary>Chains refused since creation.</summary>
    public long MalformedChains => Interlocked.Read(ref _malformedChains);

    /// <summary>Changes on every reset and disable; a completion carrying an older value is dropped
    /// so that a request finishing after a reset never writes into the driver's new rings.</summary>
    public int Generation => Volatile.Read(ref _generation);

    /// <summary>Driver writes queue_size (§4.1.4.3): a power of two no larger than <see cref="MaxSize"/>.
    /// Ignored while the queue is enabled.</summary>
    public bool TrySetSize(ushort size)
    {
        if (_enabled || size == 0 || size > MaxSize || !IsPowerOfTwo(size))
        {
            return false;
        }
        Size = size;
        return true;
    }

    /// <summary>Driver writes queue_desc / queue_driver / queue_device (modern, §4.1.4.3). Ignored while enabled.</summary>
    public void SetAddresses(ulong descriptorTable, ulong availRing, ulong usedRing)
    {
        if (_enabled)
        {
            return;
        }
        DescriptorTableAddress = descriptorTable;
        AvailRingAddress = availRing;
        UsedRingAddress = usedRing;
    }

    public void SetDescriptorTableAddress(ulong gpa) { if (!_enabled) { DescriptorTableAddress = gpa; } }

    public void SetAvailRingAddress(ulong gpa) { if (!_enabled) { AvailRingAddress = gpa; } }

    public void SetUsedRingAddress(ulong gpa) { if (!_enabled) { UsedRingAddress = gpa; } }

    /// <summary>The legacy layout for a ring at page frame <paramref name="pfn"/> (§2.7.2, legacy
    /// note): descriptors, then the available ring, then the used ring at the next 4096-byte boundary.</summary>
    public static (ulong Desc, ulong Avail, ulong Used) LegacyLayout(ulong pfn, ushort size)
    {
        var desc = pfn << 12;
        var avail = desc + (ulong)size * DescriptorSize;
        var used = (avail + 6 + 2UL * size + 4095) & ~4095UL;
        return (desc, avail, used);
    }

    /// <summary>Legacy queue address write (§4.1.4.8): a non-zero PFN lays the ring out at the legacy
    /// alignment and enables the queue; 0 disables it. Returns false if the ring is not usable.</summary>
    public bool SetLegacyPfn(uint pfn)
    {
        if (pfn == 0)
        {
            // Deactivation (Linux writes 0 when it deletes the queue); negotiated ring features stay.
            Disable();
            LegacyPfn = 0;
            DescriptorTableAddress = AvailRingAddress = UsedRingAddress = 0;
            return true;
        }
        Disable();
        LegacyPfn = pfn;
        var (d, a, u) = LegacyLayout(pfn, Size);
        DescriptorTableAddress = d;
        AvailRingAddress = a;
        UsedRingAddress = u;
        return TryEnable();
    }

    /// <summary>queue_enable = 1 (§4.1.4.3): checks that the three areas are aligned and in RAM and
    /// starts the device's view of the indices at 0. Returns false (queue stays disabled) otherwise.</summary>
    public bool TryEnable()
    {
        if (_enabled)
        {
            return true;
        }
        var size = (ulong)Size;
        // §2.7: descriptor table 16-byte aligned, available ring 2, used ring 4.
        if ((DescriptorTableAddress & 15) != 0 || (AvailRingAddress & 1) != 0 || (UsedRingAddress & 3) != 0
            || !_memory.TryTranslate(DescriptorTableAddress, size * DescriptorSize, out var desc)
            || !_memory.TryTranslate(AvailRingAddress, 6 + 2 * size, out var avail)
            || !_memory.TryTranslate(UsedRingAddress, 6 + 8 * size, out var used))
        {
            _logger?.LogWarning("virtqueue {Index}: rings at desc 0x{Desc:X} avail 0x{Avail:X} used 0x{Used:X} (size {Size}) are misaligned or not in RAM",
                Index, DescriptorTableAddress, AvailRingAddress, UsedRingAddress, Size);
            return false;
        }
        lock (_usedLock)
        {
            _rings = new Rings((byte*)desc, (byte*)avail, (byte*)used, Size);
            _nextAvail = 0;
            _nextUsed = 0;
            _broken = false;
            _enabled = true;
        }
        return true;
    }

    /// <summary>Stops using the rings without forgetting the configuration.</summary>
    public void Disable()
    {
        lock (_usedLock)
        {
            _enabled = false;
            _rings = null;
            _generation++;
        }
    }

    /// <summary>Device or queue reset (§2.1, §4.1.4.3.2): disabled, size back to the maximum, addresses and vector cleared.</summary>
    public void Reset()
    {
        Disable();
        Size = MaxSize;
        DescriptorTableAddress = AvailRingAddress = UsedRingAddress = 0;
        LegacyPfn = 0;
        MsixVector = 0xFFFF;
        EventIdx = false;
        IndirectDescriptors = false;
    }

    /// <summary>Takes the next available chain (§2.7.13.2 from the device side), validating every
    /// descriptor and writing its buffers into <paramref name="segments"/>; the span's length is the
    /// most buffers one chain may have. Malformed chains are returned to the driver with 0 bytes and
    /// skipped. Allocation-free.</summary>
    public PopResult TryPop(Span<ChainSegment> segments, out DescriptorChain chain)
    {
        chain = default;
        while (true)
        {
            var r = _rings;
            if (r is null || _broken)
            {
                return _broken ? PopResult.Broken : PopResult.Empty;
            }
            var size = r.Size;
            var availIdx = ReadAvailIdx(r);
            var pending = (ushort)(availIdx - _nextAvail);
            if (pending == 0)
            {
                return PopResult.Empty;
            }
            if (pending > size)
            {
                Break($"avail.idx moved from {_nextAvail} to {availIdx}, more than the queue size {size}");
                return PopResult.Broken;
            }
            // The ring entry is read after avail.idx (the acquire in ReadAvailIdx, §2.7.13.3 pairs
            // with the driver's write barrier before it updates idx).
            var head = Unsafe.ReadUnaligned<ushort>(r.Avail + 4 + 2 * (_nextAvail & (size - 1)));
            _nextAvail++;
            if (head >= size)
            {
                Break($"head descriptor index {head} is not below the queue size {size}");
                return PopResult.Broken;
            }
            var error = WalkChain(r, head, segments, out var count, out var readable, out var writable);
            if (error == ChainError.None)
            {
                chain = new DescriptorChain(head, count, readable, writable);
                return PopResult.Chain;
            }
            RefuseChain(head, error);
        }
    }

    /// <summary>Returns a chain to the driver as malformed: counted, logged once, completed with 0 bytes.</summary>
    public void RefuseChain(ushort head, ChainError error)
    {
        Interlocked.Increment(ref _malformedChains);
        if (Interlocked.Exchange(ref _loggedMalformed, 1) == 0)
        {
            _logger?.LogWarning("virtqueue {Index}: refusing malformed descriptor chain at head {Head}: {Error} (further refusals are only counted)",
                Index, head, error);
        }
        PushUsed(head, 0, Generation);
    }

    /// <summary>The device found the ring unusable (e.g. a head reused while in flight): stop the queue
    /// and ask for DEVICE_NEEDS_RESET.</summary>
    public void Break(string reason)
    {
        if (_broken)
        {
            return;
        }
        _broken = true;
        _logger?.LogWarning("virtqueue {Index}: {Reason}; the device needs a reset", Index, reason);
        _events.QueueNeedsReset(this);
    }

    private ChainError WalkChain(Rings r, ushort head, Span<ChainSegment> segments, out int count, out uint readable, out uint writable)
    {
        count = 0;
        readable = writable = 0;
        ulong total = 0;
        var table = r.Desc;
        uint tableSize = r.Size;
        uint budget = tableSize;   // descriptors we may still visit in this table: more means a loop
        uint index = head;
        var inIndirect = false;
        var seenWritable = false;
        while (true)
        {
            if (index >= tableSize)
            {
                return ChainError.IndexOutOfRange;
            }
            if (budget-- == 0)
            {
                return ChainError.Loop;
            }
            // §2.7.5: le64 addr, le32 len, le16 flags, le16 next. Read once; only the copy is used.
            var d = new ReadOnlySpan<byte>(table + index * DescriptorSize, DescriptorSize);
            var addr = BinaryPrimitives.ReadUInt64LittleEndian(d);
            var len = BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            var flags = (DescriptorFlags)BinaryPrimitives.ReadUInt16LittleEndian(d[12..]);
            var next = BinaryPrimitives.ReadUInt16LittleEndian(d[14..]);

            if ((flags & DescriptorFlags.Indirect) != 0)
            {
                // §2.7.5.3.1: only if negotiated, never nested, never with NEXT, a whole number of
                // descriptors; the device ignores WRITE on the descriptor naming the table.
                if (!IndirectDescriptors) { return ChainError.IndirectNotNegotiated; }
                if (inIndirect) { return ChainError.NestedIndirect; }
                if ((flags & DescriptorFlags.Next) != 0) { return ChainError.IndirectWithNext; }
                if (len == 0 || len % DescriptorSize != 0 || len / DescriptorSize > (uint)segments.Length)
                {
                    return ChainError.IndirectLength;
                }
                if (!_memory.TryTranslate(addr, len, out var host))
                {
                    return ChainError.AddressOutOfRange;
                }
                table = (byte*)host;
                tableSize = budget = len / DescriptorSize;
                index = 0;
                inIndirect = true;
                continue;
            }

            if (len == 0) { return ChainError.ZeroLength; }
            if (!_memory.TryTranslate(addr, len, out _)) { return ChainError.AddressOutOfRange; }
            var isWritable = (flags & DescriptorFlags.Write) != 0;
            if (!isWritable && seenWritable) { return ChainError.ReadableAfterWritable; }
            if (count == segments.Length) { return ChainError.TooManySegments; }
            total += len;
            if (total > uint.MaxValue) { return ChainError.LengthOverflow; }
            seenWritable |= isWritable;
            segments[count++] = new ChainSegment(addr, len, isWritable);
            if (isWritable) { writable += len; } else { readable += len; }

            if ((flags & DescriptorFlags.Next) == 0)
            {
                return ChainError.None;
            }
            index = next;
        }
    }

    /// <summary>Puts (head, written) in the used ring and publishes it (§2.7.8, §2.7.14); raises the
    /// queue interrupt unless the driver suppressed it (§2.7.7.2, §2.7.10). <paramref name="generation"/>
    /// is <see cref="Generation"/> as it was when the chain was popped: a stale completion is dropped.
    /// Safe from any thread; allocation-free.</summary>
    public bool PushUsed(ushort head, uint written, int generation)
    {
        var element = new UsedElement(head, written);
        return PushUsedBatch(new ReadOnlySpan<UsedElement>(in element), generation);
    }

    /// <summary>Puts several (head, written) pairs in the used ring and publishes them with one
    /// used.idx store, so the driver sees all of them or none (virtio-net's mergeable receive buffers,
    /// §5.1.6.4: one packet's num_buffers chains must arrive together). Otherwise as <see cref="PushUsed"/>.</summary>
    public bool PushUsedBatch(ReadOnlySpan<UsedElement> elements, int generation)
    {
        if (elements.IsEmpty)
        {
            return false;
        }
        bool interrupt;
        lock (_usedLock)
        {
            var r = _rings;
            if (r is null || _broken || generation != _generation)
            {
                return false;
            }
            var size = r.Size;
            var old = _nextUsed;
            var now = old;
            foreach (var e in elements)
            {
                var elem = r.Used + 4 + 8 * (now & (size - 1));
                Unsafe.WriteUnaligned(elem, (uint)e.Head);
                Unsafe.WriteUnaligned(elem + 4, e.Length);
                now++;
            }
            _nextUsed = now;
            // §2.7.14: the elements are visible before the index (release store).
            Volatile.Write(ref Unsafe.AsRef<ushort>(r.Used + 2), now);
            // §2.7.10: the index store must be ordered before reading used_event / avail.flags,
            // or the device can miss a driver that just re-enabled interrupts (store-load fence).
            Interlocked.MemoryBarrier();
            if (EventIdx)
            {
                var usedEvent = Volatile.Read(ref Unsafe.AsRef<ushort>(r.Avail + 4 + 2 * size));
                interrupt = NeedEvent(usedEvent, now, old);
            }
            else
            {
                interrupt = (Volatile.Read(ref Unsafe.AsRef<ushort>(r.Avail)) & RingFlags.AvailNoInterrupt) == 0;
            }
        }
        if (interrupt)
        {
            _events.QueueInterrupt(this);
        }
        return interrupt;
    }

    /// <summary>vring_need_event (virtio 1.2 §2.7.10, include/uapi/linux/virtio_ring.h): true if
    /// <paramref name="eventIdx"/> lies in [old, new) modulo 2^16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedEvent(ushort eventIdx, ushort newIdx, ushort oldIdx) =>
        (ushort)(newIdx - eventIdx - 1) < (ushort)(newIdx - oldIdx);

    /// <summary>The device is about to drain the queue: without EVENT_IDX it sets
    /// VIRTQ_USED_F_NO_NOTIFY (§2.7.7.1); with EVENT_IDX, not moving avail_event suppresses notifications.</summary>
    public void DisableNotification()
    {
        var r = _rings;
        if (r is null || _broken || EventIdx)
        {
            return;
        }
        Volatile.Write(ref Unsafe.AsRef<ushort>(r.Used), RingFlags.UsedNoNotify);
    }

    /// <summary>The device drained the queue and wants the next notification: clears NO_NOTIFY or
    /// writes avail_event = the next index it will read (§2.7.10), then re-reads avail.idx after a
    /// full fence. Returns true if buffers arrived meanwhile, in which case the device must drain again.</summary>
    public bool EnableNotification()
    {
        var r = _rings;
        if (r is null || _broken)
        {
            return false;
        }
        if (EventIdx)
        {
            Volatile.Write(ref Unsafe.AsRef<ushort>(r.Used + 4 + 8 * r.Size), _nextAvail);
        }
        else
        {
            Volatile.Write(ref Unsafe.AsRef<ushort>(r.Used), (ushort)0);
        }
        Interlocked.MemoryBarrier();
        return ReadAvailIdx(r) != _nextAvail;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort ReadAvailIdx(Rings r) => Volatile.Read(ref Unsafe.AsRef<ushort>(r.Avail + 2));

    private static bool IsPowerOfTwo(uint v) => v != 0 && (v & (v - 1)) == 0;
}

using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Virtio;

/// <summary>Options for a <see cref="VirtioBlock"/>.</summary>
public sealed record VirtioBlockOptions
{
    /// <summary>Queue size offered to the driver (power of two).</summary>
    public ushort QueueSize { get; init; } = 256;

    /// <summary>Most descriptors in one chain (header and status included); seg_max is two fewer.</summary>
    public int MaxChainDescriptors { get; init; } = 128;

    /// <summary>GET_ID answer: at most 20 ASCII bytes (VIRTIO_BLK_ID_BYTES), NUL-padded.</summary>
    public string Serial { get; init; } = "";

    /// <summary>Advertised max_discard_sectors and max_write_zeroes_sectors (512-byte sectors).</summary>
    public uint MaxDiscardSectors { get; init; } = 1u << 22;

    /// <summary>Request queues, 1 to <see cref="VirtioBlockSpec.MaxQueues"/>; more than one offers
    /// VIRTIO_BLK_F_MQ with num_queues = this (§5.2.3, §5.2.4), as QEMU does with a queue per vCPU.</summary>
    public int NumQueues { get; init; } = 1;
}

/// <summary>virtio-blk request types, status values, feature bits and the configuration layout
/// (virtio 1.2 §5.2, include/uapi/linux/virtio_blk.h).</summary>
public static class VirtioBlockSpec
{
    public const ushort DeviceId = 2;
    public const int SectorSize = 512;
    public const int SectorShift = 9;
    public const int IdBytes = 20;

    /// <summary>Most request queues a device is built with (num_queues is a le16; each queue also
    /// takes an MSI-X vector of the transitional function's table).</summary>
    public const int MaxQueues = 64;

    // §5.2.3 feature bits
    public const ulong FeatureSizeMax = 1UL << 1;
    public const ulong FeatureSegMax = 1UL << 2;
    public const ulong FeatureGeometry = 1UL << 4;
    public const ulong FeatureRo = 1UL << 5;
    public const ulong FeatureBlkSize = 1UL << 6;
    public const ulong FeatureFlush = 1UL << 9;
    public const ulong FeatureTopology = 1UL << 10;
    public const ulong FeatureMq = 1UL << 12;
    public const ulong FeatureDiscard = 1UL << 13;
    public const ulong FeatureWriteZeroes = 1UL << 14;

    // §5.2.6 request types
    public const uint TypeIn = 0;
    public const uint TypeOut = 1;
    public const uint TypeFlush = 4;
    public const uint TypeGetId = 8;
    public const uint TypeDiscard = 11;
    public const uint TypeWriteZeroes = 13;

    // §5.2.6 status
    public const byte StatusOk = 0;
    public const byte StatusIoErr = 1;
    public const byte StatusUnsupp = 2;

    /// <summary>struct virtio_blk_outhdr: le32 type, le32 reserved, le64 sector.</summary>
    public const int RequestHeaderSize = 16;

    /// <summary>struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags.</summary>
    public const int DiscardSegmentSize = 16;

    public const uint WriteZeroesFlagUnmap = 1;

    /// <summary>struct virtio_blk_config field offsets (§5.2.4).</summary>
    public static class Config
    {
        public const int Capacity = 0x00;              // le64, 512-byte sectors
        public const int SizeMax = 0x08;               // le32
        public const int SegMax = 0x0C;                // le32
        public const int Geometry = 0x10;              // le16 cylinders, u8 heads, u8 sectors
        public const int BlkSize = 0x14;               // le32
        public const int Topology = 0x18;              // u8 physical_block_exp, u8 alignment_offset, le16 min_io_size, le32 opt_io_size
        public const int Writeback = 0x20;             // u8
        public const int NumQueues = 0x22;             // le16
        public const int MaxDiscardSectors = 0x24;     // le32
        public const int MaxDiscardSeg = 0x28;         // le32
        public const int DiscardSectorAlignment = 0x2C; // le32
        public const int MaxWriteZeroesSectors = 0x30; // le32
        public const int MaxWriteZeroesSeg = 0x34;     // le32
        public const int WriteZeroesMayUnmap = 0x38;   // u8
        public const int Size = 0x3C;
    }
}

/// <summary>The virtio-blk device logic (virtio 1.2 §5.2) over one or more request queues: parses requests
/// from validated descriptor chains, submits them to an <see cref="IBlockBackend"/> through a
/// <see cref="BlockAttachment"/> and completes them into the used ring from whatever thread the
/// backend finishes on.</summary>
/// <remarks>
/// Request framing does not depend on descriptor boundaries (§2.7.4, VIRTIO_F_ANY_LAYOUT): the
/// 16-byte header is the start of the device-readable bytes, the status is the last device-writable
/// byte, the data is what lies between. Error answers (§5.2.6.2): an unknown type, flags the device
/// does not know, DISCARD with the unmap flag, or more discard segments than max_discard_seg get
/// VIRTIO_BLK_S_UNSUPP; a sector range past the capacity, a length that is not a whole number of
/// blocks, a write/discard/write-zeroes on a read-only disk, a short header or a backend failure get
/// VIRTIO_BLK_S_IOERR (a backend's <see cref="BlockResult.Unsupported"/> becomes VIRTIO_BLK_S_UNSUPP); a chain without a device-writable byte for the status cannot be answered and
/// is returned with 0 bytes written (<see cref="ChainError.DeviceRejected"/>). The used length is the
/// bytes written into the driver's buffers: data plus status for IN and GET_ID, 1 otherwise.
/// Hot paths (notify, parse, submit, complete) allocate nothing.
/// <para>In-flight bookkeeping is per queue and descriptor head; a request's <see cref="BlockRequest.Tag"/>
/// carries the queue index, the head and the queue generation, so a completion goes to the used
/// ring (and the MSI-X vector) of the queue it came from, and one that arrives after a device reset
/// is dropped without touching the new rings or the new request that reuses its head. The
/// attachment's pool holds one queue size more than all the queues together, so requests stranded
/// by a reset do not starve the next driver; should the pool still run dry, the request fails with
/// VIRTIO_BLK_S_IOERR.</para>
/// <para>Multiqueue (§5.2.3 VIRTIO_BLK_F_MQ, offered when built with more than one queue): the
/// transport shows every queue, but requests are served only on the queues the negotiated
/// features allow: all of them with MQ, requestq0 alone without it (a driver that did not take MQ
/// uses no other: N = 1 without MQ, §5.2.2); a notification of any other queue is ignored. Each queue
/// is drained under its own lock into its own scratch space, so queues notified from different
/// threads (trapped doorbells on several vCPUs) do not wait for each other.</para>
/// </remarks>
public sealed class VirtioBlock : IVirtioDevice, IVirtQueueEvents, IBlockCompletionHandler
{
    private struct InFlight
    {
        public ulong StatusAddress;
        public int Generation;
        public int Busy;
    }

    /// <summary>A request queue's device-side state: the in-flight slots by head, and the chain
    /// scratch and lock its drain uses.</summary>
    private sealed class RequestQueue(VirtQueue queue, int queueSize, int maxSegments)
    {
        public readonly VirtQueue Queue = queue;
        public readonly InFlight[] InFlight = new InFlight[queueSize];
        public readonly ChainSegment[] Scratch = new ChainSegment[maxSegments];
        public readonly Lock NotifyLock = new();
    }

    private readonly BlockAttachment _attachment;
    private readonly BlockDeviceInfo _info;
    private readonly IVirtQueueEvents _transport;
    private readonly ILogger? _logger;
    private readonly VirtQueue[] _queues;
    private readonly RequestQueue[] _requestQueues;
    private readonly byte[] _config = new byte[VirtioBlockSpec.Config.Size];
    private readonly byte[] _serial = new byte[VirtioBlockSpec.IdBytes];
    private volatile int _usableQueues = 1;
    private readonly int _maxSegments;
    private readonly uint _blockSize;
    private readonly ulong _capacitySectors;
    private readonly uint _maxDiscardSectors;

    /// <param name="transport">Receives queue interrupts and needs-reset requests (the transport).</param>
    /// <param name="backend">Attached here (a backend serves one device); its lifecycle stays with the caller.</param>
    public VirtioBlock(GuestMemory memory, IBlockBackend backend, IVirtQueueEvents transport, VirtioBlockOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(transport);
        options ??= new VirtioBlockOptions();
        if (options.MaxChainDescriptors < 3 || options.MaxChainDescriptors > options.QueueSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxChainDescriptors, "a chain holds 3 to QueueSize descriptors");
        }
        if (options.NumQueues < 1 || options.NumQueues > VirtioBlockSpec.MaxQueues)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.NumQueues, $"num_queues is 1 to {VirtioBlockSpec.MaxQueues}");
        }
        var info = backend.Info;
        var blockSize = info.BlockSize;
        if (blockSize < VirtioBlockSpec.SectorSize || (blockSize & (blockSize - 1)) != 0)
        {
            throw new ArgumentException($"block size {blockSize} must be a power of two ≥ 512", nameof(backend));
        }
        var serial = Encoding.ASCII.GetBytes(options.Serial);
        if (serial.Length > VirtioBlockSpec.IdBytes)
        {
            throw new ArgumentException($"the serial is {serial.Length} bytes; virtio-blk allows {VirtioBlockSpec.IdBytes}", nameof(options));
        }
        serial.CopyTo(_serial, 0);

        Memory = memory;
        _info = info;
        _blockSize = blockSize;
        _transport = transport;
        _logger = logger;
        _maxSegments = options.MaxChainDescriptors;
        _capacitySectors = info.SizeInBytes >> VirtioBlockSpec.SectorShift;
        _maxDiscardSectors = options.MaxDiscardSectors;
        var numQueues = options.NumQueues;
        _queues = new VirtQueue[numQueues];
        _requestQueues = new RequestQueue[numQueues];
        for (var i = 0; i < numQueues; i++)
        {
            _queues[i] = new VirtQueue(memory, (ushort)i, options.QueueSize, this, logger);
            _requestQueues[i] = new RequestQueue(_queues[i], options.QueueSize, _maxSegments);
        }
        _attachment = new BlockAttachment(backend, memory, this, (numQueues + 1) * options.QueueSize, _maxSegments, logger);

        var features = VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx
            | VirtioBlockSpec.FeatureSegMax | VirtioBlockSpec.FeatureBlkSize;
        if (numQueues > 1)
        {
            features |= VirtioBlockSpec.FeatureMq;
        }
        if (info.SupportsFlush)
        {
            features |= VirtioBlockSpec.FeatureFlush;
        }
        if (info.ReadOnly)
        {
            features |= VirtioBlockSpec.FeatureRo;
        }
        else
        {
            if (info.SupportsDiscard) { features |= VirtioBlockSpec.FeatureDiscard; }
            if (info.SupportsWriteZeroes) { features |= VirtioBlockSpec.FeatureWriteZeroes; }
        }
        DeviceFeatures = features;
        BuildConfig(blockSize);
    }

    public GuestMemory Memory { get; }

    public ushort DeviceId => VirtioBlockSpec.DeviceId;

    public ulong DeviceFeatures { get; }

    /// <summary>Features the driver accepted (0 until negotiated).</summary>
    public ulong NegotiatedFeatures { get; private set; }

    public ReadOnlySpan<VirtQueue> Queues => _queues;

    /// <summary>Queues requests are served on under the negotiated features: every queue with
    /// VIRTIO_BLK_F_MQ, else requestq0 alone.</summary>
    public int UsableQueues => _usableQueues;

    public int ConfigSize => _config.Length;

    private void BuildConfig(uint blockSize)
    {
        var c = _config.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(c[VirtioBlockSpec.Config.Capacity..], _capacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.SegMax..], (uint)(_maxSegments - 2));
        BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.BlkSize..], blockSize);
        BinaryPrimitives.WriteUInt16LittleEndian(c[VirtioBlockSpec.Config.NumQueues..], (ushort)_queues.Length);
        var sectorsPerBlock = blockSize >> VirtioBlockSpec.SectorShift;
        if ((DeviceFeatures & VirtioBlockSpec.FeatureDiscard) != 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.MaxDiscardSectors..], _maxDiscardSectors);
            BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.MaxDiscardSeg..], 1);
            BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.DiscardSectorAlignment..], sectorsPerBlock);
        }
        if ((DeviceFeatures & VirtioBlockSpec.FeatureWriteZeroes) != 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.MaxWriteZeroesSectors..], _maxDiscardSectors);
            BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.MaxWriteZeroesSeg..], 1);
            c[VirtioBlockSpec.Config.WriteZeroesMayUnmap] = 0;   // the block path has no unmap hint for write-zeroes
        }
    }

    public void ReadConfig(int offset, Span<byte> data) => VirtioConfigSpace.Read(_config, offset, data);

    /// <summary>Every field is read-only here (no CONFIG_WCE): writes are ignored (§5.2.4).</summary>
    public void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
    }

    public void FeaturesNegotiated(ulong features)
    {
        NegotiatedFeatures = features;
        foreach (var q in _queues)
        {
            q.ApplyRingFeatures(features);
        }
        _usableQueues = (features & VirtioBlockSpec.FeatureMq) != 0 ? _queues.Length : 1;
    }

    public void Reset()
    {
        NegotiatedFeatures = 0;
        _usableQueues = 1;
        foreach (var q in _queues)
        {
            q.Reset();
        }
    }

    /// <summary>The driver notified request queue <paramref name="queue"/> (§4.1.5.2): drains it,
    /// with notifications suppressed while draining and re-armed after (§2.7.10). A queue the
    /// negotiated features do not allow is left alone. Allocation-free.</summary>
    public void QueueNotify(int queue)
    {
        if ((uint)queue >= (uint)_usableQueues)
        {
            // Not logged: the transport looks at every queue at DRIVER_OK, used or not.
            return;
        }
        var rq = _requestQueues[queue];
        var q = rq.Queue;
        lock (rq.NotifyLock)
        {
            q.DisableNotification();
            while (true)
            {
                PopResult r;
                while ((r = q.TryPop(rq.Scratch, out var chain)) == PopResult.Chain)
                {
                    HandleChain(rq, chain);
                }
                if (r == PopResult.Broken || !q.EnableNotification())
                {
                    return;
                }
            }
        }
    }

    private void HandleChain(RequestQueue rq, DescriptorChain chain)
    {
        var q = rq.Queue;
        var segs = rq.Scratch.AsSpan(0, chain.SegmentCount);
        var last = segs[^1];
        if (!last.Writable)
        {
            q.RefuseChain(chain.Head, ChainError.DeviceRejected);
            return;
        }
        var head = chain.Head;
        ref var slot = ref rq.InFlight[head];
        var generation = q.Generation;
        if (Interlocked.CompareExchange(ref slot.Busy, 1, 0) != 0 && slot.Generation == generation)
        {
            q.Break($"descriptor head {head} made available again while its request is in flight");
            return;
        }
        // Busy from before a reset: that completion carries the old generation and is dropped.
        slot.Busy = 1;
        slot.Generation = generation;
        slot.StatusAddress = last.Address + last.Length - 1;
        var tag = MakeTag(q.Index, head, generation);

        Span<byte> header = stackalloc byte[VirtioBlockSpec.RequestHeaderSize];
        if (chain.ReadableLength < VirtioBlockSpec.RequestHeaderSize || !Gather(segs, 0, header))
        {
            Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        var type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        var dataOut = chain.ReadableLength - (uint)VirtioBlockSpec.RequestHeaderSize;
        var dataIn = chain.WritableLength - 1;
        switch (type)
        {
            case VirtioBlockSpec.TypeIn:
                StartTransfer(tag, BlockOperation.Read, sector, segs, dataIn);
                break;
            case VirtioBlockSpec.TypeOut:
                if (_info.ReadOnly)
                {
                    // §5.2.6.2: IOERR for a write to a read-only device, and no data written.
                    Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
                    break;
                }
                StartTransfer(tag, BlockOperation.Write, sector, segs, dataOut);
                break;
            case VirtioBlockSpec.TypeFlush:
                if (Rent(tag, out var flush))
                {
                    flush.PrepareFlush();
                    _attachment.Submit(flush);
                }
                break;
            case VirtioBlockSpec.TypeGetId:
                var written = Scatter(segs, _serial.AsSpan(0, (int)Math.Min(dataIn, (uint)VirtioBlockSpec.IdBytes)));
                Finish(tag, VirtioBlockSpec.StatusOk, (uint)written + 1);
                break;
            case VirtioBlockSpec.TypeDiscard:
                StartDiscard(tag, BlockOperation.Discard, VirtioBlockSpec.FeatureDiscard, segs, dataOut);
                break;
            case VirtioBlockSpec.TypeWriteZeroes:
                StartDiscard(tag, BlockOperation.WriteZeroes, VirtioBlockSpec.FeatureWriteZeroes, segs, dataOut);
                break;
            default:
                Finish(tag, VirtioBlockSpec.StatusUnsupp, 1);
                break;
        }
    }

    private void StartTransfer(ulong tag, BlockOperation op, ulong sector, ReadOnlySpan<ChainSegment> segs, uint length)
    {
        if (!RangeOk(sector, length))
        {
            Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        if (length == 0)
        {
            Finish(tag, VirtioBlockSpec.StatusOk, 1);
            return;
        }
        if (!Rent(tag, out var request))
        {
            return;
        }
        var offset = sector << VirtioBlockSpec.SectorShift;
        if (op == BlockOperation.Read) { request.PrepareRead(offset); } else { request.PrepareWrite(offset); }
        // The data bytes: for a read the writable bytes before the status byte, for a write the
        // readable bytes after the header; trimmed to those bounds, segment by segment.
        ulong skip = op == BlockOperation.Write ? (ulong)VirtioBlockSpec.RequestHeaderSize : 0;
        ulong remaining = length;
        foreach (var s in segs)
        {
            if (remaining == 0)
            {
                break;
            }
            if (s.Writable != (op == BlockOperation.Read))
            {
                continue;
            }
            if (skip >= s.Length)
            {
                skip -= s.Length;
                continue;
            }
            var take = Math.Min(s.Length - skip, remaining);
            if (!request.TryAddSegment(s.Address + skip, (uint)take))
            {
                _attachment.Release(request);
                Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
                return;
            }
            remaining -= take;
            skip = 0;
        }
        _attachment.Submit(request);
    }

    private bool Rent(ulong tag, out BlockRequest request)
    {
        if (!_attachment.TryRent(out request))
        {
            Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
            return false;
        }
        request.Tag = tag;
        return true;
    }

    /// <summary>Bits 0-15 the descriptor head, 16-47 the queue generation, 48-63 the queue index.</summary>
    private static ulong MakeTag(ushort queue, ushort head, int generation) => head | ((ulong)(uint)generation << 16) | ((ulong)queue << 48);

    private void StartDiscard(ulong tag, BlockOperation op, ulong feature, ReadOnlySpan<ChainSegment> segs, uint payload)
    {
        if ((DeviceFeatures & feature) == 0)
        {
            Finish(tag, _info.ReadOnly ? VirtioBlockSpec.StatusIoErr : VirtioBlockSpec.StatusUnsupp, 1);
            return;
        }
        if (payload == 0 || payload % VirtioBlockSpec.DiscardSegmentSize != 0)
        {
            Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        if (payload / VirtioBlockSpec.DiscardSegmentSize > 1)
        {
            // More segments than max_discard_seg / max_write_zeroes_seg (1).
            Finish(tag, VirtioBlockSpec.StatusUnsupp, 1);
            return;
        }
        Span<byte> range = stackalloc byte[VirtioBlockSpec.DiscardSegmentSize];
        if (!Gather(segs, VirtioBlockSpec.RequestHeaderSize, range))
        {
            Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        var sector = BinaryPrimitives.ReadUInt64LittleEndian(range);
        var sectors = BinaryPrimitives.ReadUInt32LittleEndian(range[8..]);
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(range[12..]);
        // §5.2.6.2: unknown flags, and the unmap flag on DISCARD, are unsupported.
        if ((flags & ~VirtioBlockSpec.WriteZeroesFlagUnmap) != 0 || (op == BlockOperation.Discard && flags != 0))
        {
            Finish(tag, VirtioBlockSpec.StatusUnsupp, 1);
            return;
        }
        var bytes = (ulong)sectors << VirtioBlockSpec.SectorShift;
        if (sectors > _maxDiscardSectors || bytes > uint.MaxValue || !RangeOk(sector, (uint)bytes))
        {
            Finish(tag, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        if (!Rent(tag, out var request))
        {
            return;
        }
        // The unmap flag of WRITE_ZEROES is a permission, not a demand: zeroing is always correct.
        if (op == BlockOperation.Discard) { request.PrepareDiscard(sector << VirtioBlockSpec.SectorShift, bytes); }
        else { request.PrepareWriteZeroes(sector << VirtioBlockSpec.SectorShift, bytes); }
        _attachment.Submit(request);
    }

    /// <summary>[sector, sector + length) is whole blocks inside the disk; overflow-safe.</summary>
    private bool RangeOk(ulong sector, uint length)
    {
        var blockSize = _blockSize;
        if (length % blockSize != 0 || sector > _capacitySectors)
        {
            return false;
        }
        if (((sector << VirtioBlockSpec.SectorShift) & (blockSize - 1)) != 0)
        {
            return false;
        }
        return (ulong)(length >> VirtioBlockSpec.SectorShift) <= _capacitySectors - sector;
    }

    /// <summary>Copies readable bytes starting at <paramref name="offset"/> of the readable part.</summary>
    private bool Gather(ReadOnlySpan<ChainSegment> segs, uint offset, Span<byte> destination)
    {
        foreach (var s in segs)
        {
            if (destination.IsEmpty || s.Writable)
            {
                break;
            }
            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }
            var take = (int)Math.Min(s.Length - offset, (uint)destination.Length);
            if (!Memory.TryRead(s.Address + offset, destination[..take]))
            {
                return false;
            }
            destination = destination[take..];
            offset = 0;
        }
        return destination.IsEmpty;
    }

    /// <summary>Copies into the writable part from its start; returns bytes written.</summary>
    private int Scatter(ReadOnlySpan<ChainSegment> segs, ReadOnlySpan<byte> source)
    {
        var written = 0;
        foreach (var s in segs)
        {
            if (source.IsEmpty)
            {
                break;
            }
            if (!s.Writable)
            {
                continue;
            }
            var take = (int)Math.Min(s.Length, (uint)source.Length);
            if (!Memory.TryWrite(s.Address, source[..take]))
            {
                break;
            }
            source = source[take..];
            written += take;
        }
        return written;
    }

    /// <summary>A backend finished (on its worker thread): status byte, used ring, interrupt.</summary>
    void IBlockCompletionHandler.Complete(BlockRequest request, BlockResult result)
    {
        var status = result switch
        {
            BlockResult.Success => VirtioBlockSpec.StatusOk,
            BlockResult.Unsupported => VirtioBlockSpec.StatusUnsupp,
            _ => VirtioBlockSpec.StatusIoErr,
        };
        var written = result == BlockResult.Success && request.Operation == BlockOperation.Read ? (uint)request.Length + 1 : 1u;
        Finish(request.Tag, status, written);
    }

    private void Finish(ulong tag, byte status, uint written)
    {
        var rq = _requestQueues[(ushort)(tag >> 48)];
        var q = rq.Queue;
        var head = (ushort)tag;
        var generation = (int)(uint)(tag >> 16);
        ref var slot = ref rq.InFlight[head];
        if (generation != q.Generation || slot.Generation != generation)
        {
            return;   // completed after a reset: the driver no longer expects it
        }
        Memory.TryWriteByte(slot.StatusAddress, status);
        // Free the slot before publishing: once the used entry is visible the driver may reuse the head.
        Volatile.Write(ref slot.Busy, 0);
        q.PushUsed(head, written, generation);
    }

    void IVirtQueueEvents.QueueInterrupt(VirtQueue queue) => _transport.QueueInterrupt(queue);

    void IVirtQueueEvents.QueueNeedsReset(VirtQueue queue)
    {
        _logger?.LogWarning("virtio-blk: queue {Index} is broken", queue.Index);
        _transport.QueueNeedsReset(queue);
    }
}

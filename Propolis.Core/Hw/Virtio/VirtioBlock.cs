using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;
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
}

/// <summary>virtio-blk request types, status values, feature bits and the configuration layout
/// (virtio 1.2 §5.2, include/uapi/linux/virtio_blk.h).</summary>
public static class VirtioBlockSpec
{
    public const ushort DeviceId = 2;
    public const int SectorSize = 512;
    public const int SectorShift = 9;
    public const int IdBytes = 20;

    // §5.2.3 feature bits
    public const ulong FeatureSizeMax = 1UL << 1;
    public const ulong FeatureSegMax = 1UL << 2;
    public const ulong FeatureGeometry = 1UL << 4;
    public const ulong FeatureRo = 1UL << 5;
    public const ulong FeatureBlkSize = 1UL << 6;
    public const ulong FeatureFlush = 1UL << 9;
    public const ulong FeatureTopology = 1UL << 10;
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

/// <summary>The virtio-blk device logic (virtio 1.2 §5.2) over one request queue: parses requests
/// from validated descriptor chains, submits them to an <see cref="IVirtioBlockBackend"/> and
/// completes them into the used ring from whatever thread the backend finishes on.</summary>
/// <remarks>
/// Request framing does not depend on descriptor boundaries (§2.7.4, VIRTIO_F_ANY_LAYOUT): the
/// 16-byte header is the start of the device-readable bytes, the status is the last device-writable
/// byte, the data is what lies between. Error answers (§5.2.6.2): an unknown type, flags the device
/// does not know, DISCARD with the unmap flag, or more discard segments than max_discard_seg get
/// VIRTIO_BLK_S_UNSUPP; a sector range past the capacity, a length that is not a whole number of
/// blocks, a write/discard/write-zeroes on a read-only disk, a short header or a backend failure get
/// VIRTIO_BLK_S_IOERR; a chain without a device-writable byte for the status cannot be answered and
/// is returned with 0 bytes written (<see cref="ChainError.DeviceRejected"/>). The used length is the
/// bytes written into the driver's buffers: data plus status for IN and GET_ID, 1 otherwise.
/// Hot paths (notify, parse, submit, complete) allocate nothing.
/// </remarks>
public sealed class VirtioBlock : IVirtioDevice, IVirtQueueEvents
{
    private readonly IVirtioBlockBackend _backend;
    private readonly IVirtQueueEvents _transport;
    private readonly ILogger? _logger;
    private readonly VirtQueue[] _queues;
    private readonly VirtioBlockRequest[] _requests;
    private readonly ChainSegment[] _scratch;
    private readonly byte[] _config = new byte[VirtioBlockSpec.Config.Size];
    private readonly byte[] _serial = new byte[VirtioBlockSpec.IdBytes];
    private readonly Lock _notifyLock = new();
    private readonly int _maxSegments;
    private readonly ulong _capacitySectors;
    private readonly uint _maxDiscardSectors;

    /// <param name="transport">Receives queue interrupts and needs-reset requests (the transport).</param>
    public VirtioBlock(GuestMemory memory, IVirtioBlockBackend backend, IVirtQueueEvents transport, VirtioBlockOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(transport);
        options ??= new VirtioBlockOptions();
        if (options.MaxChainDescriptors < 3 || options.MaxChainDescriptors > options.QueueSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxChainDescriptors, "a chain holds 3 to QueueSize descriptors");
        }
        var blockSize = backend.BlockSize;
        if (blockSize < VirtioBlockSpec.SectorSize || (blockSize & (blockSize - 1)) != 0 || backend.CapacityBytes % blockSize != 0)
        {
            throw new ArgumentException($"block size {blockSize} must be a power of two ≥ 512 dividing the capacity {backend.CapacityBytes}", nameof(backend));
        }
        var serial = Encoding.ASCII.GetBytes(options.Serial);
        if (serial.Length > VirtioBlockSpec.IdBytes)
        {
            throw new ArgumentException($"the serial is {serial.Length} bytes; virtio-blk allows {VirtioBlockSpec.IdBytes}", nameof(options));
        }
        serial.CopyTo(_serial, 0);

        Memory = memory;
        _backend = backend;
        _transport = transport;
        _logger = logger;
        _maxSegments = options.MaxChainDescriptors;
        _capacitySectors = backend.CapacityBytes >> VirtioBlockSpec.SectorShift;
        _maxDiscardSectors = options.MaxDiscardSectors;
        _queues = [new VirtQueue(memory, 0, options.QueueSize, this, logger)];
        _scratch = new ChainSegment[_maxSegments];
        _requests = new VirtioBlockRequest[options.QueueSize];
        for (var i = 0; i < _requests.Length; i++)
        {
            _requests[i] = new VirtioBlockRequest(this, _maxSegments);
        }

        var features = VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx
            | VirtioBlockSpec.FeatureSegMax | VirtioBlockSpec.FeatureBlkSize | VirtioBlockSpec.FeatureFlush;
        if (backend.ReadOnly)
        {
            features |= VirtioBlockSpec.FeatureRo;
        }
        else
        {
            if (backend.SupportsDiscard) { features |= VirtioBlockSpec.FeatureDiscard; }
            if (backend.SupportsWriteZeroes) { features |= VirtioBlockSpec.FeatureWriteZeroes; }
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

    public int ConfigSize => _config.Length;

    private void BuildConfig(uint blockSize)
    {
        var c = _config.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(c[VirtioBlockSpec.Config.Capacity..], _capacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.SegMax..], (uint)(_maxSegments - 2));
        BinaryPrimitives.WriteUInt32LittleEndian(c[VirtioBlockSpec.Config.BlkSize..], blockSize);
        BinaryPrimitives.WriteUInt16LittleEndian(c[VirtioBlockSpec.Config.NumQueues..], 1);
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
            c[VirtioBlockSpec.Config.WriteZeroesMayUnmap] = _backend.SupportsDiscard ? (byte)1 : (byte)0;
        }
    }

    public void ReadConfig(int offset, Span<byte> data)
    {
        data.Clear();
        if (offset < 0 || offset >= _config.Length)
        {
            return;
        }
        var n = Math.Min(data.Length, _config.Length - offset);
        _config.AsSpan(offset, n).CopyTo(data);
    }

    /// <summary>Every field is read-only here (no CONFIG_WCE): writes are ignored (§5.2.4).</summary>
    public void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
    }

    public void FeaturesNegotiated(ulong features)
    {
        NegotiatedFeatures = features;
        var q = _queues[0];
        q.EventIdx = (features & VirtioFeatures.RingEventIdx) != 0;
        q.IndirectDescriptors = (features & VirtioFeatures.RingIndirectDesc) != 0;
    }

    public void Reset()
    {
        NegotiatedFeatures = 0;
        foreach (var q in _queues)
        {
            q.Reset();
        }
    }

    /// <summary>The driver notified the request queue (§4.1.5.2): drains it, with notifications
    /// suppressed while draining and re-armed after (§2.7.10). Allocation-free.</summary>
    public void QueueNotify(int queue)
    {
        if ((uint)queue >= (uint)_queues.Length)
        {
            return;
        }
        var q = _queues[queue];
        lock (_notifyLock)
        {
            q.DisableNotification();
            while (true)
            {
                PopResult r;
                while ((r = q.TryPop(_scratch, out var chain)) == PopResult.Chain)
                {
                    HandleChain(q, chain);
                }
                if (r == PopResult.Broken || !q.EnableNotification())
                {
                    return;
                }
            }
        }
    }

    private void HandleChain(VirtQueue q, DescriptorChain chain)
    {
        var segs = _scratch.AsSpan(0, chain.SegmentCount);
        var last = segs[^1];
        if (!last.Writable)
        {
            q.RefuseChain(chain.Head, ChainError.DeviceRejected);
            return;
        }
        var request = _requests[chain.Head];
        if (Interlocked.CompareExchange(ref request.InFlight, 1, 0) != 0)
        {
            if (request.Generation == q.Generation)
            {
                q.Break($"descriptor head {chain.Head} made available again while its request is in flight");
                return;
            }
            // Still owned by a backend from before a reset; its completion will be dropped. Rare
            // (reset with I/O in flight), so a new slot is acceptable here.
            request = _requests[chain.Head] = new VirtioBlockRequest(this, _maxSegments);
            request.InFlight = 1;
        }
        request.Head = chain.Head;
        request.Generation = q.Generation;
        request.StatusAddress = last.Address + last.Length - 1;
        request.SegmentCount = 0;
        request.MayUnmap = false;

        Span<byte> header = stackalloc byte[VirtioBlockSpec.RequestHeaderSize];
        if (chain.ReadableLength < VirtioBlockSpec.RequestHeaderSize || !Gather(segs, 0, header))
        {
            Finish(request, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        var type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        var dataOut = chain.ReadableLength - (uint)VirtioBlockSpec.RequestHeaderSize;
        var dataIn = chain.WritableLength - 1;
        switch (type)
        {
            case VirtioBlockSpec.TypeIn:
                StartTransfer(request, BlockOperation.Read, sector, segs, dataIn);
                break;
            case VirtioBlockSpec.TypeOut:
                if (_backend.ReadOnly)
                {
                    // §5.2.6.2: IOERR for a write to a read-only device, and no data written.
                    Finish(request, VirtioBlockSpec.StatusIoErr, 1);
                    break;
                }
                StartTransfer(request, BlockOperation.Write, sector, segs, dataOut);
                break;
            case VirtioBlockSpec.TypeFlush:
                request.Operation = BlockOperation.Flush;
                request.Offset = 0;
                request.Length = 0;
                _backend.Submit(request);
                break;
            case VirtioBlockSpec.TypeGetId:
                var written = Scatter(segs, _serial.AsSpan(0, (int)Math.Min(dataIn, (uint)VirtioBlockSpec.IdBytes)));
                Finish(request, VirtioBlockSpec.StatusOk, (uint)written + 1);
                break;
            case VirtioBlockSpec.TypeDiscard:
                StartDiscard(request, BlockOperation.Discard, VirtioBlockSpec.FeatureDiscard, segs, dataOut);
                break;
            case VirtioBlockSpec.TypeWriteZeroes:
                StartDiscard(request, BlockOperation.WriteZeroes, VirtioBlockSpec.FeatureWriteZeroes, segs, dataOut);
                break;
            default:
                Finish(request, VirtioBlockSpec.StatusUnsupp, 1);
                break;
        }
    }

    private void StartTransfer(VirtioBlockRequest request, BlockOperation op, ulong sector, ReadOnlySpan<ChainSegment> segs, uint length)
    {
        if (!RangeOk(sector, length))
        {
            Finish(request, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        if (length == 0)
        {
            Finish(request, VirtioBlockSpec.StatusOk, 1);
            return;
        }
        // The data bytes: for a read the writable bytes before the status byte, for a write the
        // readable bytes after the header; trimmed to those bounds, segment by segment.
        var storage = request.SegmentStorage;
        var n = 0;
        ulong skip = op == BlockOperation.Write ? (ulong)VirtioBlockSpec.RequestHeaderSize : 0;
        ulong remaining = length;
        foreach (var s in segs)
        {
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
            if (take == 0)
            {
                break;
            }
            storage[n++] = new ChainSegment(s.Address + skip, (uint)take, s.Writable);
            remaining -= take;
            skip = 0;
        }
        request.SegmentCount = n;
        request.Operation = op;
        request.Offset = sector << VirtioBlockSpec.SectorShift;
        request.Length = length;
        _backend.Submit(request);
    }

    private void StartDiscard(VirtioBlockRequest request, BlockOperation op, ulong feature, ReadOnlySpan<ChainSegment> segs, uint payload)
    {
        if ((DeviceFeatures & feature) == 0)
        {
            Finish(request, _backend.ReadOnly ? VirtioBlockSpec.StatusIoErr : VirtioBlockSpec.StatusUnsupp, 1);
            return;
        }
        if (payload == 0 || payload % VirtioBlockSpec.DiscardSegmentSize != 0)
        {
            Finish(request, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        if (payload / VirtioBlockSpec.DiscardSegmentSize > 1)
        {
            // More segments than max_discard_seg / max_write_zeroes_seg (1).
            Finish(request, VirtioBlockSpec.StatusUnsupp, 1);
            return;
        }
        Span<byte> range = stackalloc byte[VirtioBlockSpec.DiscardSegmentSize];
        if (!Gather(segs, VirtioBlockSpec.RequestHeaderSize, range))
        {
            Finish(request, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        var sector = BinaryPrimitives.ReadUInt64LittleEndian(range);
        var sectors = BinaryPrimitives.ReadUInt32LittleEndian(range[8..]);
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(range[12..]);
        // §5.2.6.2: unknown flags, and the unmap flag on DISCARD, are unsupported.
        if ((flags & ~VirtioBlockSpec.WriteZeroesFlagUnmap) != 0 || (op == BlockOperation.Discard && flags != 0))
        {
            Finish(request, VirtioBlockSpec.StatusUnsupp, 1);
            return;
        }
        var bytes = (ulong)sectors << VirtioBlockSpec.SectorShift;
        if (sectors > _maxDiscardSectors || bytes > uint.MaxValue || !RangeOk(sector, (uint)bytes))
        {
            Finish(request, VirtioBlockSpec.StatusIoErr, 1);
            return;
        }
        request.Operation = op;
        request.Offset = sector << VirtioBlockSpec.SectorShift;
        request.Length = bytes;
        request.MayUnmap = (flags & VirtioBlockSpec.WriteZeroesFlagUnmap) != 0;
        _backend.Submit(request);
    }

    /// <summary>[sector, sector + length) is whole blocks inside the disk; overflow-safe.</summary>
    private bool RangeOk(ulong sector, uint length)
    {
        var blockSize = _backend.BlockSize;
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

    internal void CompleteRequest(VirtioBlockRequest request, bool success)
    {
        var written = success && request.Operation == BlockOperation.Read ? (uint)request.Length + 1 : 1u;
        Finish(request, success ? VirtioBlockSpec.StatusOk : VirtioBlockSpec.StatusIoErr, written);
    }

    private void Finish(VirtioBlockRequest request, byte status, uint written)
    {
        var q = _queues[0];
        var head = request.Head;
        var generation = request.Generation;
        if (generation == q.Generation)
        {
            Memory.TryWriteByte(request.StatusAddress, status);
        }
        // Free the slot before publishing: once the used entry is visible the driver may reuse the head.
        Volatile.Write(ref request.InFlight, 0);
        q.PushUsed(head, written, generation);
    }

    void IVirtQueueEvents.QueueInterrupt(VirtQueue queue) => _transport.QueueInterrupt(queue);

    void IVirtQueueEvents.QueueNeedsReset(VirtQueue queue)
    {
        _logger?.LogWarning("virtio-blk: queue {Index} is broken", queue.Index);
        _transport.QueueNeedsReset(queue);
    }
}

namespace Propolis.Core.Block;

/// <summary>What a <see cref="BlockRequest"/> asks the backend to do (propolis block::Operation,
/// plus write-zeroes, which virtio-blk and NVMe both define).</summary>
public enum BlockOperation : byte
{
    /// <summary>Copy [Offset, Offset+Length) of the disk into the request's guest segments.</summary>
    Read,

    /// <summary>Copy the request's guest segments to [Offset, Offset+Length) of the disk.</summary>
    Write,

    /// <summary>Make every completed write durable (fdatasync). No range, no segments.</summary>
    Flush,

    /// <summary>The guest no longer needs [Offset, Offset+Length); reads of it may return zeroes
    /// or the old data (virtio 1.2 §5.2.6.2, NVMe 1.4 §6.7 Deallocate).</summary>
    Discard,

    /// <summary>[Offset, Offset+Length) reads back as zeroes afterwards.</summary>
    WriteZeroes,
}

/// <summary>How a request ended. A front end maps these onto its status codes (virtio-blk
/// VIRTIO_BLK_S_OK / _IOERR / _UNSUPP; NVMe generic status).</summary>
public enum BlockResult : byte
{
    Success,

    /// <summary>The host I/O failed, or a guest segment is not guest RAM.</summary>
    IoError,

    /// <summary>A Write, Discard or WriteZeroes on a read-only backend.</summary>
    ReadOnly,

    /// <summary>The backend does not implement the operation (for example Discard on a
    /// file system without hole punching).</summary>
    Unsupported,

    /// <summary>The byte range runs past the end of the disk.</summary>
    OutOfRange,
}

/// <summary>One contiguous piece of guest-physical memory a Read fills or a Write drains.</summary>
public readonly record struct GuestSegment(ulong Address, uint Length);

/// <summary>What a backend tells the front end about the disk (propolis block::DeviceInfo).</summary>
/// <param name="BlockSize">Bytes per logical block (512 unless configured otherwise).</param>
/// <param name="SizeInBlocks">Disk size in blocks; a backing file that is not a whole number of
/// blocks is rounded down.</param>
/// <param name="ReadOnly">Writes, discards and write-zeroes complete with <see cref="BlockResult.ReadOnly"/>.</param>
/// <param name="SupportsDiscard">Discard may succeed (advertise VIRTIO_BLK_F_DISCARD / ONCS.DSM).</param>
/// <param name="SupportsFlush">The backend has a volatile cache that Flush makes durable
/// (advertise VIRTIO_BLK_F_FLUSH / VWC). Flush is always accepted.</param>
/// <param name="SupportsWriteZeroes">WriteZeroes is implemented.</param>
/// <param name="Workers">Worker threads serving requests: as many requests run at once.</param>
public readonly record struct BlockDeviceInfo(
    uint BlockSize,
    ulong SizeInBlocks,
    bool ReadOnly,
    bool SupportsDiscard,
    bool SupportsFlush,
    bool SupportsWriteZeroes,
    int Workers)
{
    /// <summary>Disk size in bytes.</summary>
    public ulong SizeInBytes => SizeInBlocks * BlockSize;
}

/// <summary>Options every backend shares (propolis block::BackendOpts).</summary>
public sealed record BlockBackendOptions
{
    public const uint DefaultBlockSize = 512;
    public const int MaxWorkers = 32;

    /// <summary>Bytes per block: a power of two from 512 to 65536.</summary>
    public uint BlockSize { get; init; } = DefaultBlockSize;

    /// <summary>Refuse writes even if the backing store is writable.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Complete Flush at once without syncing the backing store.</summary>
    public bool SkipFlush { get; init; }

    /// <summary>Worker threads, 1..<see cref="MaxWorkers"/>.</summary>
    public int Workers { get; init; } = 1;

    internal void Validate()
    {
        if (BlockSize < 512 || BlockSize > 65536 || (BlockSize & (BlockSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "block size must be a power of two from 512 to 65536");
        }
        if (Workers < 1 || Workers > MaxWorkers)
        {
            throw new ArgumentOutOfRangeException(nameof(Workers), Workers, $"workers must be from 1 to {MaxWorkers}");
        }
    }
}

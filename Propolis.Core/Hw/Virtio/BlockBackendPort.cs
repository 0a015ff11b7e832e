using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Virtio;

/// <summary>What a block request asks the backend to do.</summary>
public enum BlockOperation : byte
{
    Read,
    Write,
    Flush,
    Discard,
    WriteZeroes,
}

/// <summary>The storage behind a <see cref="VirtioBlock"/>: the slice of the block request path the
/// virtio device needs. A backend from Propolis.Core/Block is adapted to this.</summary>
public interface IVirtioBlockBackend
{
    /// <summary>Disk size in bytes (a multiple of <see cref="BlockSize"/>).</summary>
    ulong CapacityBytes { get; }

    /// <summary>Logical block size in bytes: 512 or a larger power of two.</summary>
    uint BlockSize { get; }

    bool ReadOnly { get; }

    bool SupportsDiscard { get; }

    bool SupportsWriteZeroes { get; }

    /// <summary>Starts <paramref name="request"/> and returns without waiting; the backend calls
    /// <see cref="VirtioBlockRequest.Complete"/> exactly once, on any thread (possibly inline).</summary>
    void Submit(VirtioBlockRequest request);
}

/// <summary>One block request in flight: a reusable slot owned by the device (one per descriptor
/// head), handed to the backend. The data buffers are guest ranges already checked to be in RAM.</summary>
public sealed class VirtioBlockRequest
{
    private readonly VirtioBlock _device;
    private readonly ChainSegment[] _segments;

    internal VirtioBlockRequest(VirtioBlock device, int maxSegments)
    {
        _device = device;
        _segments = new ChainSegment[maxSegments];
    }

    public BlockOperation Operation { get; internal set; }

    /// <summary>Byte offset on the disk.</summary>
    public ulong Offset { get; internal set; }

    /// <summary>Bytes to transfer (Read/Write), or to discard / zero.</summary>
    public ulong Length { get; internal set; }

    /// <summary>WriteZeroes: the driver allows the zeroed range to be deallocated (VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP).</summary>
    public bool MayUnmap { get; internal set; }

    /// <summary>Guest memory the data buffers are in.</summary>
    public GuestMemory Memory => _device.Memory;

    /// <summary>The data buffers, in order (Read: device-writable; Write: device-readable).</summary>
    public ReadOnlySpan<ChainSegment> Segments => _segments.AsSpan(0, SegmentCount);

    internal int SegmentCount { get; set; }

    internal Span<ChainSegment> SegmentStorage => _segments;

    internal ushort Head { get; set; }

    internal int Generation { get; set; }

    internal ulong StatusAddress { get; set; }

    internal int InFlight;

    /// <summary>The backend finished: the device writes the status byte and returns the chain.</summary>
    public void Complete(bool success) => _device.CompleteRequest(this, success);
}

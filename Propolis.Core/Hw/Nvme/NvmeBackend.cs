using Propolis.Core.Block;

namespace Propolis.Core.Hw.Nvme;

/// <summary>How the controller signals a completion queue's interrupt vector (the IV of
/// Create I/O Completion Queue, NVMe 1.4 §5.3; vector 0 for the admin queue). The PCI glue
/// implements it with MSI-X (or a pin when MSI-X is off).</summary>
/// <remarks>Called from vCPU threads and backend threads, never under a lock the glue could
/// take; must not block or allocate.</remarks>
public interface INvmeInterrupts
{
    void Raise(ushort vector);
}


/// <summary>A byte range of the namespace (Dataset Management deallocation).</summary>
public readonly record struct ByteRange(ulong Offset, ulong Length);

public enum NvmeIoOperation : byte
{
    /// <summary>Read [Offset, Offset+Length) into <see cref="NvmeIoRequest.Segments"/> (guest RAM,
    /// already checked by the controller: each segment lies in one RAM region).</summary>
    Read,
    /// <summary>Write <see cref="NvmeIoRequest.Segments"/> to [Offset, Offset+Length).</summary>
    Write,
    /// <summary>Make every completed write durable.</summary>
    Flush,
    /// <summary>Make [Offset, Offset+Length) read as zeros.</summary>
    WriteZeroes,
    /// <summary>The host no longer needs <see cref="NvmeIoRequest.Ranges"/> (the content is undefined afterwards).</summary>
    Discard,
}

public enum NvmeIoResult : byte
{
    Success,
    /// <summary>The backend could not do it (I/O error): reported as a media error.</summary>
    Failure,
}

/// <summary>The storage behind namespace 1: the block layer's backend, seen through what NVMe needs.</summary>
public interface INvmeBlockBackend
{
    /// <summary>Size of the namespace in bytes: a multiple of <see cref="BlockSize"/>.</summary>
    ulong Capacity { get; }

    /// <summary>Logical block size in bytes: 512 or 4096.</summary>
    int BlockSize { get; }

    bool IsReadOnly { get; }

    /// <summary>Starts <paramref name="request"/>; must not block on I/O. The backend calls
    /// <see cref="NvmeIoRequest.Complete"/> exactly once, from any thread (possibly before
    /// Submit returns), and must not touch the request afterwards.</summary>
    void Submit(NvmeIoRequest request);
}

/// <summary>One I/O command on its way through the backend. Instances are pooled by the
/// controller and reused: nothing is allocated per command.</summary>
public sealed class NvmeIoRequest
{
    private readonly GuestSegment[] _segments;
    private readonly ByteRange[] _ranges;
    private int _segmentCount;
    private int _rangeCount;
    private INvmeIoCompletion? _owner;

    internal NvmeIoRequest(int maxSegments, int maxRanges)
    {
        _segments = new GuestSegment[maxSegments];
        _ranges = new ByteRange[maxRanges];
    }

    public NvmeIoOperation Operation { get; internal set; }

    /// <summary>Byte offset in the namespace (Read, Write, WriteZeroes).</summary>
    public ulong Offset { get; internal set; }

    /// <summary>Bytes (Read, Write, WriteZeroes); for Read and Write the sum of the segment lengths.</summary>
    public ulong Length { get; internal set; }

    /// <summary>Force Unit Access (NVMe 1.4 §6.9, §6.15): the write must be durable before completion.</summary>
    public bool ForceUnitAccess { get; internal set; }

    public ReadOnlySpan<GuestSegment> Segments => _segments.AsSpan(0, _segmentCount);

    public ReadOnlySpan<ByteRange> Ranges => _ranges.AsSpan(0, _rangeCount);

    internal Span<GuestSegment> SegmentBuffer => _segments;
    internal Span<ByteRange> RangeBuffer => _ranges;

    internal const int StateFree = 0;
    internal const int StatePreparing = 1;
    internal const int StateInFlight = 2;
    internal const int StateCompleting = 3;
    internal const int StateAborted = 4;

    // Where the completion goes (set by the controller before submission).
    internal int PoolIndex;
    internal SubmissionQueue? Queue;
    internal ushort CommandId;
    internal int State;

    internal void Prepare(INvmeIoCompletion owner, NvmeIoOperation op, ulong offset, ulong length, int segments, int ranges)
    {
        _owner = owner;
        Operation = op;
        Offset = offset;
        Length = length;
        _segmentCount = segments;
        _rangeCount = ranges;
    }

    /// <summary>Hands the result back to the controller, which posts the completion queue entry.</summary>
    public void Complete(NvmeIoResult result)
    {
        var owner = _owner;
        if (owner is null)
        {
            throw new InvalidOperationException("NVMe I/O request completed twice or never submitted");
        }
        _owner = null;
        owner.OnIoComplete(this, result);
    }
}

internal interface INvmeIoCompletion
{
    void OnIoComplete(NvmeIoRequest request, NvmeIoResult result);
}

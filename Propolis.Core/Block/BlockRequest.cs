using Propolis.Core.Memory;

namespace Propolis.Core.Block;

/// <summary>One block I/O, reused: a front end rents it from its <see cref="BlockAttachment"/>,
/// fills it (one Prepare* call, then <see cref="TryAddSegment"/> for Read and Write), submits it,
/// and gets it back once in <see cref="IBlockCompletionHandler.Complete"/>, after which it returns
/// to the pool. The segment list has a fixed capacity chosen when the attachment is made, so a
/// request never allocates.</summary>
public sealed class BlockRequest
{
    private readonly GuestSegment[] _segments;
    private int _segmentCount;

    internal BlockRequest(BlockAttachment owner, int maxSegments)
    {
        Owner = owner;
        _segments = new GuestSegment[maxSegments];
    }

    internal BlockAttachment Owner { get; }

    /// <summary>Set while the request is rented by a front end (between TryRent and its completion).</summary>
    internal bool Rented { get; set; }

    /// <summary>Set while a backend owns the request (between Submit and Complete).</summary>
    internal bool Submitted { get; set; }

    public BlockOperation Operation { get; private set; }

    /// <summary>Byte offset on the disk (0 for Flush).</summary>
    public ulong Offset { get; private set; }

    /// <summary>Bytes: for Read and Write the sum of the segment lengths; for Discard and
    /// WriteZeroes as given to Prepare*; 0 for Flush.</summary>
    public ulong Length { get; private set; }

    /// <summary>The front end's cookie (a descriptor head index, an NVMe command id and queue):
    /// never read by backends.</summary>
    public ulong Tag { get; set; }

    /// <summary>A second, reference-typed cookie for the front end (its queue object, say);
    /// storing a reference allocates nothing.</summary>
    public object? Context { get; set; }

    /// <summary>Guest memory the segments refer to.</summary>
    public GuestMemory Memory => Owner.Memory;

    public ReadOnlySpan<GuestSegment> Segments => new(_segments, 0, _segmentCount);

    public int MaxSegments => _segments.Length;

    public void PrepareRead(ulong offset) => Prepare(BlockOperation.Read, offset, 0);

    public void PrepareWrite(ulong offset) => Prepare(BlockOperation.Write, offset, 0);

    public void PrepareFlush() => Prepare(BlockOperation.Flush, 0, 0);

    public void PrepareDiscard(ulong offset, ulong length) => Prepare(BlockOperation.Discard, offset, length);

    public void PrepareWriteZeroes(ulong offset, ulong length) => Prepare(BlockOperation.WriteZeroes, offset, length);

    /// <summary>Appends a guest buffer to a Read or Write. False, with the request unchanged, if the
    /// request is not a Read or Write, the segment list is full, or the total length would
    /// overflow: the front end then fails the guest's request with its own error status.
    /// Addresses are not checked here; a segment that is not guest RAM fails the request with
    /// <see cref="BlockResult.IoError"/> when it runs.</summary>
    public bool TryAddSegment(ulong guestAddress, uint length)
    {
        if (Operation is not (BlockOperation.Read or BlockOperation.Write) || _segmentCount == _segments.Length
            || Length + length < Length)
        {
            return false;
        }
        _segments[_segmentCount++] = new GuestSegment(guestAddress, length);
        Length += length;
        return true;
    }

    /// <summary>Called by the backend, exactly once per submission, on one of its worker threads:
    /// hands the request to the front end's completion handler and returns it to the pool.</summary>
    public void Complete(BlockResult result) => Owner.Complete(this, result);

    private void Prepare(BlockOperation operation, ulong offset, ulong length)
    {
        Operation = operation;
        Offset = offset;
        Length = length;
        _segmentCount = 0;
    }

    internal void Clear()
    {
        Prepare(BlockOperation.Flush, 0, 0);
        Tag = 0;
        Context = null;
    }
}

/// <summary>The front end's side of completion: called on a backend worker thread (or, for a
/// request submitted to a stopped backend, on the submitting thread) once per request. The front
/// end writes its status, posts to its used ring / completion queue and raises its interrupt.
/// The request goes back to the pool when this returns: copy what is needed out of it first.</summary>
public interface IBlockCompletionHandler
{
    void Complete(BlockRequest request, BlockResult result);
}

namespace Propolis.Crucible.Protocol;

/// <summary>
/// Protocol constants of the Crucible upstairs/downstairs wire protocol.
/// Source: oxidecomputer/crucible <c>protocol/src/lib.rs</c> at commit
/// 6d037cb60304413302e3f3658e4850980cee77b0 (2026-08-04), where
/// <c>MessageVersion::current()</c> is <c>V13</c>.
/// </summary>
public static class CrucibleProtocol
{
    /// <summary><c>CRUCIBLE_MESSAGE_VERSION</c>: the version this implementation speaks.</summary>
    public const uint CrucibleMessageVersion = (uint)MessageVersion.V13;

    /// <summary>
    /// <c>MAX_FRM_LEN</c>: the largest frame either side accepts, in bytes, counting the
    /// 4-byte length prefix (the real decoder compares the prefix value, which includes
    /// itself, against this limit).
    /// </summary>
    public const int MaxFrameLength = 100 * 1024 * 1024;

    /// <summary>Size of the little-endian <c>u32</c> frame length prefix.</summary>
    public const int FrameLengthSize = 4;

    /// <summary>
    /// <c>CrucibleEncoder::max_io_blocks</c>: the most blocks of <paramref name="blockSize"/> bytes
    /// one Write can carry with every block encrypted and one dependency, so that its frame stays
    /// within <see cref="MaxFrameLength"/>.
    /// </summary>
    /// <remarks>
    /// Computed exactly (the frame grows by 37 context bytes plus the block per block) rather
    /// than by the real code's binary search, which for 8 KiB and 32 KiB blocks stops one block
    /// too high (12743 and 3197, whose frames exceed the limit); for the other block sizes the
    /// two agree (190997 for 512 bytes, 25370 for 4 KiB).
    /// </remarks>
    public static int MaxIoBlocks(int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        var header = new WriteHeader(Guid.Empty, Guid.Empty, new JobId(1), new[] { new JobId(1) },
            new BlockIndex(0), ValueArray<BlockContext>.Empty);
        int fixedPart = MessageWriter.GetFrameLength(new Message.Write(header, ReadOnlyMemory<byte>.Empty));
        const int encryptedContext = 8 + 1 + EncryptionContext.WireSize;
        return (MaxFrameLength - fixedPart) / (encryptedContext + blockSize);
    }
}

/// <summary>
/// <c>MessageVersion</c>: the history of upstairs-downstairs protocol versions.
/// </summary>
public enum MessageVersion : uint
{
    /// <summary>Original format that remained too long.</summary>
    V1 = 1,
    /// <summary>Initial support for LiveRepair.</summary>
    V2 = 2,
    /// <summary>Added ExtentLiveRepairAckId for LiveRepair.</summary>
    V3 = 3,
    /// <summary>Added ErrorReport.</summary>
    V4 = 4,
    /// <summary>Switched to raw file extents.</summary>
    V5 = 5,
    /// <summary>Write, WriteUnwritten and ReadResponse split into header and bulk data.</summary>
    V6 = 6,
    /// <summary><c>ExtentId(u32)</c> everywhere.</summary>
    V7 = 7,
    /// <summary>ReadResponseBlockMetadata stores an Option&lt;BlockContext&gt;.</summary>
    V8 = 8,
    /// <summary>BlockOffset instead of Block in many places.</summary>
    V9 = 9,
    /// <summary>Messages are start + length instead of random-access.</summary>
    V10 = 10,
    /// <summary>ReadBlockContext instead of Option&lt;BlockContext&gt;.</summary>
    V11 = 11,
    /// <summary>Added Barrier and BarrierAck.</summary>
    V12 = 12,
    /// <summary>Removed LastFlushAck.</summary>
    V13 = 13,
}

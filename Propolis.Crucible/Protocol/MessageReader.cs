using System.Buffers;
using System.Buffers.Binary;
using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>Outcome of <see cref="MessageReader"/>'s <c>TryRead</c>.</summary>
public enum ReadStatus
{
    /// <summary>The buffer does not yet hold a whole frame; nothing was consumed.</summary>
    NeedMoreData,
    /// <summary>One frame was decoded and consumed.</summary>
    Complete,
    /// <summary>The bytes are not a valid frame; the connection must be dropped.</summary>
    ProtocolError,
}

/// <summary>
/// Decodes frames as <c>CrucibleDecoder</c> does: a little-endian <c>u32</c> length that counts
/// its own 4 bytes, then the bincode body. A length above <see cref="CrucibleProtocol.MaxFrameLength"/>
/// is refused as soon as the prefix is in, before waiting for (or allocating for) the body.
/// </summary>
/// <remarks>
/// <para>Bulk data of Write, WriteUnwritten and ReadResponse is the last <c>len</c> bytes of the
/// frame, where <c>len</c> is the <c>u64</c> after the header (as in <c>decode_raw</c>). Decoding
/// from a <see cref="ReadOnlyMemory{T}"/> (or a single-segment sequence) hands it out as a
/// slice of the caller's buffer, without a copy: the caller must keep that buffer unchanged
/// while the message is in use. Decoding from a <see cref="ReadOnlySpan{T}"/> copies it.</para>
/// <para>Like the real decoder (bincode's legacy options allow trailing bytes), bytes left in a
/// frame after a complete message body are ignored. Unlike it, a bulk length that would reach
/// back into the header, a <c>ClientId</c> of 3 or more, and a length prefix below 4 are
/// protocol errors rather than panics or accepted values.</para>
/// <para>Every allocation made while decoding is bounded by the frame's size: each sequence
/// length is checked against the bytes left in the frame before its array is made.</para>
/// </remarks>
public static class MessageReader
{
    /// <summary>
    /// Reads the length prefix if at least 4 bytes are present. The value is not validated.
    /// </summary>
    public static bool TryPeekFrameLength(ReadOnlySpan<byte> buffer, out uint frameLength)
    {
        if (buffer.Length < CrucibleProtocol.FrameLengthSize)
        {
            frameLength = 0;
            return false;
        }
        frameLength = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        return true;
    }

    /// <summary>Decodes one frame from the front of <paramref name="buffer"/>; bulk data is a slice of it.</summary>
    public static ReadStatus TryRead(
        ReadOnlyMemory<byte> buffer, out Message? message, out int consumed, out CrucibleProtocolException? error) =>
        TryReadCore(buffer.Span, buffer, hasMemory: true, out message, out consumed, out error);

    /// <summary>Decodes one frame from the front of <paramref name="buffer"/>; bulk data is copied out of it.</summary>
    public static ReadStatus TryRead(
        ReadOnlySpan<byte> buffer, out Message? message, out int consumed, out CrucibleProtocolException? error) =>
        TryReadCore(buffer, default, hasMemory: false, out message, out consumed, out error);

    /// <summary>
    /// Decodes one frame from the front of <paramref name="buffer"/>. A frame lying in one
    /// segment is decoded in place (bulk data is a slice of that segment); a frame that spans
    /// segments is first gathered into one array of the frame's size.
    /// </summary>
    public static ReadStatus TryRead(
        in ReadOnlySequence<byte> buffer, out Message? message, out long consumed, out CrucibleProtocolException? error)
    {
        message = null;
        consumed = 0;
        error = null;
        if (buffer.IsSingleSegment)
        {
            ReadStatus s = TryRead(buffer.First, out message, out int c, out error);
            consumed = c;
            return s;
        }

        Span<byte> prefix = stackalloc byte[CrucibleProtocol.FrameLengthSize];
        if (buffer.Length < prefix.Length)
        {
            return ReadStatus.NeedMoreData;
        }
        buffer.Slice(0, prefix.Length).CopyTo(prefix);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        if (!ValidateLength(length, out error))
        {
            return ReadStatus.ProtocolError;
        }
        if (buffer.Length < length)
        {
            return ReadStatus.NeedMoreData;
        }

        ReadOnlySequence<byte> frame = buffer.Slice(0, length);
        ReadOnlyMemory<byte> contiguous = frame.IsSingleSegment ? frame.First : frame.ToArray();
        ReadStatus status = TryRead(contiguous, out message, out int used, out error);
        consumed = used;
        return status;
    }

    /// <summary>
    /// Decodes exactly one complete frame (length prefix included). Throws
    /// <see cref="CrucibleProtocolException"/> if it is not one valid frame.
    /// </summary>
    public static Message ReadFrame(ReadOnlyMemory<byte> frame)
    {
        CheckWholeFrame(frame.Span);
        return Decode(frame.Span, frame, hasMemory: true);
    }

    /// <inheritdoc cref="ReadFrame(ReadOnlyMemory{byte})"/>
    public static Message ReadFrame(ReadOnlySpan<byte> frame)
    {
        CheckWholeFrame(frame);
        return Decode(frame, default, hasMemory: false);
    }

    private static void CheckWholeFrame(ReadOnlySpan<byte> frame)
    {
        if (!TryPeekFrameLength(frame, out uint length))
        {
            ProtocolThrow.Throw(ProtocolErrorKind.Truncated, frame.Length, "the length prefix is incomplete");
        }
        if (!ValidateLength(length, out CrucibleProtocolException? error))
        {
            throw error!;
        }
        if (length != frame.Length)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.Truncated, 0,
                $"the length prefix says {length} bytes, the frame has {frame.Length}");
        }
    }

    private static bool ValidateLength(uint length, out CrucibleProtocolException? error)
    {
        if (length < CrucibleProtocol.FrameLengthSize)
        {
            error = new CrucibleProtocolException(ProtocolErrorKind.FrameLengthTooSmall, 0,
                $"frame length {length} is smaller than its own 4-byte prefix");
            return false;
        }
        if (length > CrucibleProtocol.MaxFrameLength)
        {
            error = new CrucibleProtocolException(ProtocolErrorKind.FrameTooLarge, 0,
                $"frame is {length} bytes, more than maximum {CrucibleProtocol.MaxFrameLength}");
            return false;
        }
        error = null;
        return true;
    }

    private static ReadStatus TryReadCore(
        ReadOnlySpan<byte> span, ReadOnlyMemory<byte> memory, bool hasMemory,
        out Message? message, out int consumed, out CrucibleProtocolException? error)
    {
        message = null;
        consumed = 0;
        if (!TryPeekFrameLength(span, out uint length))
        {
            error = null;
            return ReadStatus.NeedMoreData;
        }
        if (!ValidateLength(length, out error))
        {
            return ReadStatus.ProtocolError;
        }
        if (span.Length < length)
        {
            return ReadStatus.NeedMoreData;
        }

        int n = (int)length;
        try
        {
            message = Decode(span[..n], hasMemory ? memory[..n] : default, hasMemory);
        }
        catch (CrucibleProtocolException e)
        {
            error = e;
            return ReadStatus.ProtocolError;
        }
        consumed = n;
        return ReadStatus.Complete;
    }

    /// <summary>Decodes the body of a frame whose length has been checked.</summary>
    private static Message Decode(ReadOnlySpan<byte> frame, ReadOnlyMemory<byte> memory, bool hasMemory)
    {
        var r = new BincodeReader(frame, CrucibleProtocol.FrameLengthSize);
        int at = r.Position;
        uint tag = r.ReadU32();
        return (MessageTag)tag switch
        {
            MessageTag.HereIAm => Message.HereIAm.Read(ref r),
            MessageTag.YesItsMe => Message.YesItsMe.Read(ref r),
            MessageTag.VersionMismatch => Message.VersionMismatch.Read(ref r),
            MessageTag.ReadOnlyMismatch => Message.ReadOnlyMismatch.Read(ref r),
            MessageTag.EncryptedMismatch => Message.EncryptedMismatch.Read(ref r),
            MessageTag.PromoteToActive => Message.PromoteToActive.Read(ref r),
            MessageTag.YouAreNowActive => Message.YouAreNowActive.Read(ref r),
            MessageTag.YouAreNoLongerActive => Message.YouAreNoLongerActive.Read(ref r),
            MessageTag.UuidMismatch => Message.UuidMismatch.Read(ref r),
            MessageTag.Ruok => Message.Ruok.Instance,
            MessageTag.Imok => Message.Imok.Instance,
            MessageTag.ExtentClose => Message.ExtentClose.Read(ref r),
            MessageTag.ExtentReopen => Message.ExtentReopen.Read(ref r),
            MessageTag.ExtentFlush => Message.ExtentFlush.Read(ref r),
            MessageTag.ExtentRepair => Message.ExtentRepair.Read(ref r),
            MessageTag.RepairAckId => Message.RepairAckId.Read(ref r),
            MessageTag.ExtentError => Message.ExtentError.Read(ref r),
            MessageTag.ExtentLiveClose => Message.ExtentLiveClose.Read(ref r),
            MessageTag.ExtentLiveFlushClose => Message.ExtentLiveFlushClose.Read(ref r),
            MessageTag.ExtentLiveRepair => Message.ExtentLiveRepair.Read(ref r),
            MessageTag.ExtentLiveReopen => Message.ExtentLiveReopen.Read(ref r),
            MessageTag.ExtentLiveNoOp => Message.ExtentLiveNoOp.Read(ref r),
            MessageTag.ExtentLiveCloseAck => Message.ExtentLiveCloseAck.Read(ref r),
            MessageTag.ExtentLiveRepairAckId => Message.ExtentLiveRepairAckId.Read(ref r),
            MessageTag.ExtentLiveAckId => Message.ExtentLiveAckId.Read(ref r),
            MessageTag.RegionInfoPlease => Message.RegionInfoPlease.Instance,
            MessageTag.RegionInfo => Message.RegionInfo.Read(ref r),
            MessageTag.ExtentVersionsPlease => Message.ExtentVersionsPlease.Instance,
            MessageTag.ExtentVersions => Message.ExtentVersions.Read(ref r),
            MessageTag.LastFlush => Message.LastFlush.Read(ref r),
            MessageTag.Write => new Message.Write(
                WriteHeader.Read(ref r), ReadBulk(ref r, frame, memory, hasMemory)),
            MessageTag.WriteAck => Message.WriteAck.Read(ref r),
            MessageTag.Flush => Message.Flush.Read(ref r),
            MessageTag.FlushAck => Message.FlushAck.Read(ref r),
            MessageTag.Barrier => Message.Barrier.Read(ref r),
            MessageTag.BarrierAck => Message.BarrierAck.Read(ref r),
            MessageTag.ReadRequest => Message.ReadRequest.Read(ref r),
            MessageTag.ReadResponse => new Message.ReadResponse(
                ReadResponseHeader.Read(ref r), ReadBulk(ref r, frame, memory, hasMemory)),
            MessageTag.WriteUnwritten => new Message.WriteUnwritten(
                WriteHeader.Read(ref r), ReadBulk(ref r, frame, memory, hasMemory)),
            MessageTag.WriteUnwrittenAck => Message.WriteUnwrittenAck.Read(ref r),
            MessageTag.ErrorReport => Message.ErrorReport.Read(ref r),
            MessageTag.Unknown => Message.Unknown.Read(ref r),
            _ => ProtocolThrow.Throw<Message>(ProtocolErrorKind.InvalidMessageTag, at,
                $"Message variant {tag} does not exist in message version {CrucibleProtocol.CrucibleMessageVersion}"),
        };
    }

    /// <summary>The <c>u64</c> data length after a bulk header, then the last that many bytes of the frame.</summary>
    private static ReadOnlyMemory<byte> ReadBulk(
        ref BincodeReader r, ReadOnlySpan<byte> frame, ReadOnlyMemory<byte> memory, bool hasMemory)
    {
        int at = r.Position;
        ulong length = r.ReadU64();
        if (length > (ulong)r.Remaining)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.BulkDataOutOfRange, at,
                $"bulk data of {length} bytes does not fit in the {r.Remaining} bytes after its header");
        }
        int start = frame.Length - (int)length;
        return hasMemory ? memory[start..] : frame[start..].ToArray();
    }
}

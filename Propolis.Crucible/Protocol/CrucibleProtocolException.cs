using System.Diagnostics.CodeAnalysis;

namespace Propolis.Crucible.Protocol;

/// <summary>What was wrong with bytes received from (or a message meant for) the wire.</summary>
public enum ProtocolErrorKind
{
    /// <summary>The length prefix is smaller than the prefix itself.</summary>
    FrameLengthTooSmall,
    /// <summary>The length prefix exceeds <see cref="CrucibleProtocol.MaxFrameLength"/>.</summary>
    FrameTooLarge,
    /// <summary>The frame body ended in the middle of a value.</summary>
    Truncated,
    /// <summary>The <c>Message</c> discriminant is not one this version knows.</summary>
    InvalidMessageTag,
    /// <summary>A nested enum (CrucibleError, Result, SocketAddr, ...) has an unknown discriminant.</summary>
    InvalidEnumTag,
    /// <summary>A <c>bool</c> byte is neither 0 nor 1.</summary>
    InvalidBool,
    /// <summary>An <c>Option</c> tag byte is neither 0 nor 1.</summary>
    InvalidOptionTag,
    /// <summary>A <c>String</c> is not well-formed UTF-8.</summary>
    InvalidUtf8,
    /// <summary>A <c>Uuid</c> is not exactly 16 bytes long.</summary>
    InvalidUuidLength,
    /// <summary>A sequence length claims more elements than the frame can hold.</summary>
    LengthOutOfRange,
    /// <summary>A <c>ClientId</c> is not in 0..3.</summary>
    InvalidClientId,
    /// <summary>The bulk data length of Write/WriteUnwritten/ReadResponse overlaps the header or passes the frame end.</summary>
    BulkDataOutOfRange,
    /// <summary>The peer closed the connection in the middle of a frame.</summary>
    ConnectionClosedMidFrame,
    /// <summary>A message to be sent would need a frame larger than <see cref="CrucibleProtocol.MaxFrameLength"/>.</summary>
    MessageTooLarge,
}

/// <summary>
/// The one exception type the Crucible codec raises for bad wire data. A connection that
/// sees it must be closed: the byte stream can no longer be trusted to be in frame.
/// </summary>
public sealed class CrucibleProtocolException : Exception
{
    public CrucibleProtocolException(ProtocolErrorKind kind, long offset, string detail)
        : base($"Crucible protocol error ({kind}) at byte {offset} of the frame: {detail}")
    {
        Kind = kind;
        Offset = offset;
    }

    /// <summary>The kind of violation.</summary>
    public ProtocolErrorKind Kind { get; }

    /// <summary>Offset from the start of the frame (its length prefix) where the violation was found.</summary>
    public long Offset { get; }
}

/// <summary>Throw helpers kept out of line so that the parsing fast paths stay small.</summary>
internal static class ProtocolThrow
{
    [DoesNotReturn]
    public static void Throw(ProtocolErrorKind kind, long offset, string detail) =>
        throw new CrucibleProtocolException(kind, offset, detail);

    [DoesNotReturn]
    public static T Throw<T>(ProtocolErrorKind kind, long offset, string detail) =>
        throw new CrucibleProtocolException(kind, offset, detail);
}

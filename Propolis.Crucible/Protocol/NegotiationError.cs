using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>The variants of <c>crucible_common::NegotiationError</c> with their bincode indices.</summary>
public enum NegotiationErrorKind : uint
{
    /// <summary><c>Message received out of order</c></summary>
    OutOfOrder = 0,
    /// <summary><c>Generation 0 is illegal</c></summary>
    GenerationZeroIsIllegal = 1,
    /// <summary><c>GenerationNumberTooLow { requested: u64, actual: u64 }</c></summary>
    GenerationNumberTooLow = 2,
    /// <summary><c>IncompatibleVersion { expected: u32, actual: u32 }</c></summary>
    IncompatibleVersion = 3,
    /// <summary><c>EncryptionMismatch { expected: bool, actual: bool }</c></summary>
    EncryptionMismatch = 4,
    /// <summary><c>ReadOnlyMismatch { expected: bool, actual: bool }</c></summary>
    ReadOnlyMismatch = 5,
    /// <summary><c>UpstairsIdMismatch { expected: Uuid, actual: Uuid }</c></summary>
    UpstairsIdMismatch = 6,
    /// <summary><c>SessionIdMismatch { expected: Uuid, actual: Uuid }</c></summary>
    SessionIdMismatch = 7,
}

/// <summary>
/// <c>NegotiationError</c>: why a downstairs refused a connection during negotiation.
/// Each variant has (at most) an <c>expected</c>/<c>requested</c> value and an <c>actual</c>
/// value; they are held here in the widest form their variant needs.
/// </summary>
public readonly record struct NegotiationError
{
    internal const uint VariantCount = (uint)NegotiationErrorKind.SessionIdMismatch + 1;

    private NegotiationError(NegotiationErrorKind kind, ulong expected, ulong actual, Guid expectedId, Guid actualId)
    {
        Kind = kind;
        ExpectedValue = expected;
        ActualValue = actual;
        ExpectedId = expectedId;
        ActualId = actualId;
    }

    public NegotiationErrorKind Kind { get; }

    /// <summary><c>requested</c> (GenerationNumberTooLow) or <c>expected</c> (IncompatibleVersion; 0/1 for the bool variants).</summary>
    public ulong ExpectedValue { get; }

    /// <summary><c>actual</c> of GenerationNumberTooLow, IncompatibleVersion, or the bool variants as 0/1.</summary>
    public ulong ActualValue { get; }

    /// <summary><c>expected</c> of UpstairsIdMismatch / SessionIdMismatch.</summary>
    public Guid ExpectedId { get; }

    /// <summary><c>actual</c> of UpstairsIdMismatch / SessionIdMismatch.</summary>
    public Guid ActualId { get; }

    public static NegotiationError OutOfOrder => new(NegotiationErrorKind.OutOfOrder, 0, 0, default, default);

    public static NegotiationError GenerationZeroIsIllegal =>
        new(NegotiationErrorKind.GenerationZeroIsIllegal, 0, 0, default, default);

    public static NegotiationError GenerationNumberTooLow(ulong requested, ulong actual) =>
        new(NegotiationErrorKind.GenerationNumberTooLow, requested, actual, default, default);

    public static NegotiationError IncompatibleVersion(uint expected, uint actual) =>
        new(NegotiationErrorKind.IncompatibleVersion, expected, actual, default, default);

    public static NegotiationError EncryptionMismatch(bool expected, bool actual) =>
        new(NegotiationErrorKind.EncryptionMismatch, expected ? 1UL : 0, actual ? 1UL : 0, default, default);

    public static NegotiationError ReadOnlyMismatch(bool expected, bool actual) =>
        new(NegotiationErrorKind.ReadOnlyMismatch, expected ? 1UL : 0, actual ? 1UL : 0, default, default);

    public static NegotiationError UpstairsIdMismatch(Guid expected, Guid actual) =>
        new(NegotiationErrorKind.UpstairsIdMismatch, 0, 0, expected, actual);

    public static NegotiationError SessionIdMismatch(Guid expected, Guid actual) =>
        new(NegotiationErrorKind.SessionIdMismatch, 0, 0, expected, actual);

    /// <summary>The real <c>Display</c> text.</summary>
    public override string ToString() => Kind switch
    {
        NegotiationErrorKind.OutOfOrder => "Message received out of order",
        NegotiationErrorKind.GenerationZeroIsIllegal => "Generation 0 is illegal",
        NegotiationErrorKind.GenerationNumberTooLow =>
            $"Generation number is too low: requested {ExpectedValue}, found {ActualValue}",
        NegotiationErrorKind.IncompatibleVersion =>
            $"Incompatible message version: wanted {ExpectedValue}, got {ActualValue}",
        NegotiationErrorKind.EncryptionMismatch =>
            $"Incompatible encryption settings: wanted {Bool(ExpectedValue)}, got {Bool(ActualValue)}",
        NegotiationErrorKind.ReadOnlyMismatch =>
            $"Incompatible read-only settings: wanted {Bool(ExpectedValue)}, got {Bool(ActualValue)}",
        NegotiationErrorKind.UpstairsIdMismatch => $"Incompatible upstairs ID: wanted {ExpectedId}, got {ActualId}",
        NegotiationErrorKind.SessionIdMismatch => $"Incompatible session ID: wanted {ExpectedId}, got {ActualId}",
        _ => Kind.ToString(),
    };

    private static string Bool(ulong v) => v != 0 ? "true" : "false";

    internal static NegotiationError Read(ref BincodeReader r) =>
        (NegotiationErrorKind)r.ReadVariant(VariantCount, nameof(NegotiationError)) switch
        {
            NegotiationErrorKind.OutOfOrder => OutOfOrder,
            NegotiationErrorKind.GenerationZeroIsIllegal => GenerationZeroIsIllegal,
            NegotiationErrorKind.GenerationNumberTooLow => GenerationNumberTooLow(r.ReadU64(), r.ReadU64()),
            NegotiationErrorKind.IncompatibleVersion => IncompatibleVersion(r.ReadU32(), r.ReadU32()),
            NegotiationErrorKind.EncryptionMismatch => EncryptionMismatch(r.ReadBool(), r.ReadBool()),
            NegotiationErrorKind.ReadOnlyMismatch => ReadOnlyMismatch(r.ReadBool(), r.ReadBool()),
            NegotiationErrorKind.UpstairsIdMismatch => UpstairsIdMismatch(r.ReadUuid(), r.ReadUuid()),
            _ => SessionIdMismatch(r.ReadUuid(), r.ReadUuid()),
        };

    internal void Write(ref BincodeWriter w)
    {
        w.WriteVariant((uint)Kind);
        switch (Kind)
        {
            case NegotiationErrorKind.GenerationNumberTooLow:
                w.WriteU64(ExpectedValue);
                w.WriteU64(ActualValue);
                break;
            case NegotiationErrorKind.IncompatibleVersion:
                w.WriteU32((uint)ExpectedValue);
                w.WriteU32((uint)ActualValue);
                break;
            case NegotiationErrorKind.EncryptionMismatch:
            case NegotiationErrorKind.ReadOnlyMismatch:
                w.WriteBool(ExpectedValue != 0);
                w.WriteBool(ActualValue != 0);
                break;
            case NegotiationErrorKind.UpstairsIdMismatch:
            case NegotiationErrorKind.SessionIdMismatch:
                w.WriteUuid(ExpectedId);
                w.WriteUuid(ActualId);
                break;
        }
    }
}

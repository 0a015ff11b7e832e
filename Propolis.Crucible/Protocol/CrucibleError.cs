using System.Globalization;
using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// The variants of <c>crucible_common::CrucibleError</c>; the value is the bincode variant
/// index (declaration order in <c>common/src/lib.rs</c>). The summaries quote the real
/// <c>Display</c> text.
/// </summary>
public enum CrucibleErrorKind : uint
{
    /// <summary><c>#[error("Error: {0}")]</c></summary>
    GenericError = 0,
    /// <summary><c>#[error("IO Error: {0}")]</c></summary>
    IoError = 1,
    /// <summary><c>#[error("Unsupported: {0}")]</c></summary>
    Unsupported = 2,
    /// <summary><c>#[error("data store disconnected")]</c></summary>
    Disconnect = 3,
    /// <summary><c>#[error("Error grabbing data lock")]</c></summary>
    DataLockError = 4,
    /// <summary><c>#[error("Error grabbing reader-writer {0} lock")]</c></summary>
    RwLockError = 5,
    /// <summary><c>#[error("BlockOpWaiter recv channel disconnected")]</c></summary>
    RecvDisconnected = 6,
    /// <summary><c>#[error("SendError: {0}")]</c></summary>
    SendError = 7,
    /// <summary><c>#[error("Offset not block aligned")]</c></summary>
    OffsetUnaligned = 8,
    /// <summary><c>#[error("Data length not block size multiple")]</c></summary>
    DataLenUnaligned = 9,
    /// <summary><c>#[error("Block size mismatch")]</c></summary>
    BlockSizeMismatch = 10,
    /// <summary><c>#[error("Invalid number of blocks: {0}")]</c></summary>
    InvalidNumberOfBlocks = 11,
    /// <summary><c>#[error("Offset past end of extent")]</c></summary>
    OffsetInvalid = 12,
    /// <summary><c>#[error("Upstairs activation is in progress")]</c></summary>
    UpstairsActivateInProgress = 13,
    /// <summary><c>#[error("Upstairs is deactivating")]</c></summary>
    UpstairsDeactivating = 14,
    /// <summary><c>#[error("Upstairs is not active")]</c></summary>
    UpstairsInactive = 15,
    /// <summary><c>#[error("Saw a UUID that wasn't ours!")]</c></summary>
    UuidMismatch = 16,
    /// <summary><c>#[error("Encryption failed! {0}")]</c></summary>
    EncryptionError = 17,
    /// <summary><c>#[error("Decryption failed!")]</c></summary>
    DecryptionError = 18,
    /// <summary><c>#[error("Integrity hash mismatch!")]</c></summary>
    HashMismatch = 19,
    /// <summary><c>#[error("LBA range overlap!")]</c></summary>
    LBARangeOverlap = 20,
    /// <summary><c>#[error("Subvolume size mismatch!")]</c></summary>
    SubvolumeSizeMismatch = 21,
    /// <summary><c>#[error("Subvolume type mismatch!")]</c></summary>
    SubvolumeTypeMismatch = 22,
    /// <summary><c>#[error("Cannot serve blocks: {0}")]</c></summary>
    CannotServeBlocks = 23,
    /// <summary><c>#[error("Cannot receive blocks: {0}")]</c></summary>
    CannotReceiveBlocks = 24,
    /// <summary><c>#[error("Snapshot failed! {0}")]</c></summary>
    SnapshotFailed = 25,
    /// <summary><c>#[error("Attempting to modify read-only region!")]</c></summary>
    ModifyingReadOnlyRegion = 26,
    /// <summary><c>#[error("Invalid extent")]</c></summary>
    InvalidExtent = 27,
    /// <summary><c>#[error("Repair request error {0}")]</c></summary>
    RepairRequestError = 28,
    /// <summary><c>#[error("Invalid repair file list {0}")]</c></summary>
    RepairFilesInvalid = 29,
    /// <summary><c>#[error("Repair stream error {0}")]</c></summary>
    RepairStreamError = 30,
    /// <summary><c>#[error("Active with different generation number")]</c></summary>
    GenerationNumberInvalid = 31,
    /// <summary><c>#[error("No longer active")]</c></summary>
    NoLongerActive = 32,
    /// <summary><c>#[error("Failed reconciliation")]</c></summary>
    RegionAssembleError = 33,
    /// <summary><c>#[error("Property not available: {0}")]</c></summary>
    PropertyNotAvailable = 34,
    /// <summary><c>#[error("Invalid downstairs replace {0}")]</c></summary>
    ReplaceRequestInvalid = 35,
    /// <summary><c>#[error("missing context slot for block {block} in extent {extent} ({extent:03X})")]</c></summary>
    MissingContextSlot = 36,
    /// <summary><c>#[error("metadata deserialization failed: {0}")]</c></summary>
    BadMetadata = 37,
    /// <summary><c>#[error("context slot deserialization failed: {0}")]</c></summary>
    BadContextSlot = 38,
    /// <summary><c>#[error("missing block context for non-empty block")]</c></summary>
    MissingBlockContext = 39,
    /// <summary><c>#[error("Incompatible RegionDefinition {0}")]</c></summary>
    RegionIncompatible = 40,
    /// <summary><c>#[error("Negotiation error: {0}")]</c></summary>
    NegotiationError = 41,
}

/// <summary>The shape of a <see cref="CrucibleErrorKind"/>'s payload.</summary>
public enum ErrorPayload
{
    /// <summary>A unit variant.</summary>
    None,
    /// <summary>A tuple variant holding one <c>String</c>.</summary>
    String,
    /// <summary><c>MissingContextSlot { block: u64, extent: u32 }</c>.</summary>
    ContextSlot,
    /// <summary><c>NegotiationError(NegotiationError)</c>.</summary>
    Negotiation,
}

/// <summary>
/// <c>CrucibleError</c>: the error a downstairs reports in acks, <c>ExtentError</c> and
/// <c>ErrorReport</c>. Immutable, compared by value.
/// </summary>
public sealed class CrucibleError : IEquatable<CrucibleError>
{
    /// <summary>Number of variants, the bound for a received variant index.</summary>
    public const uint VariantCount = (uint)CrucibleErrorKind.NegotiationError + 1;

    private CrucibleError(CrucibleErrorKind kind, string? detail, ulong block, uint extent, NegotiationError negotiation)
    {
        Kind = kind;
        Detail = detail;
        Block = block;
        Extent = extent;
        Negotiation = negotiation;
    }

    public CrucibleErrorKind Kind { get; }

    /// <summary>The <c>String</c> of a <see cref="ErrorPayload.String"/> variant, else null.</summary>
    public string? Detail { get; }

    /// <summary><c>block</c> of MissingContextSlot.</summary>
    public ulong Block { get; }

    /// <summary><c>extent</c> of MissingContextSlot.</summary>
    public uint Extent { get; }

    /// <summary>The payload of the NegotiationError variant.</summary>
    public NegotiationError Negotiation { get; }

    /// <summary>The payload shape of each variant.</summary>
    public static ErrorPayload PayloadOf(CrucibleErrorKind kind) => kind switch
    {
        CrucibleErrorKind.GenericError => ErrorPayload.String,
        CrucibleErrorKind.IoError => ErrorPayload.String,
        CrucibleErrorKind.Unsupported => ErrorPayload.String,
        CrucibleErrorKind.RwLockError => ErrorPayload.String,
        CrucibleErrorKind.SendError => ErrorPayload.String,
        CrucibleErrorKind.InvalidNumberOfBlocks => ErrorPayload.String,
        CrucibleErrorKind.EncryptionError => ErrorPayload.String,
        CrucibleErrorKind.CannotServeBlocks => ErrorPayload.String,
        CrucibleErrorKind.CannotReceiveBlocks => ErrorPayload.String,
        CrucibleErrorKind.SnapshotFailed => ErrorPayload.String,
        CrucibleErrorKind.RepairRequestError => ErrorPayload.String,
        CrucibleErrorKind.RepairFilesInvalid => ErrorPayload.String,
        CrucibleErrorKind.RepairStreamError => ErrorPayload.String,
        CrucibleErrorKind.PropertyNotAvailable => ErrorPayload.String,
        CrucibleErrorKind.ReplaceRequestInvalid => ErrorPayload.String,
        CrucibleErrorKind.MissingContextSlot => ErrorPayload.ContextSlot,
        CrucibleErrorKind.BadMetadata => ErrorPayload.String,
        CrucibleErrorKind.BadContextSlot => ErrorPayload.String,
        CrucibleErrorKind.RegionIncompatible => ErrorPayload.String,
        CrucibleErrorKind.NegotiationError => ErrorPayload.Negotiation,
        _ => ErrorPayload.None,
    };

    /// <summary>A unit variant (Disconnect, HashMismatch, ...).</summary>
    public static CrucibleError Of(CrucibleErrorKind kind)
    {
        if (PayloadOf(kind) != ErrorPayload.None)
        {
            throw new ArgumentException($"CrucibleError::{kind} carries a payload; use the matching factory", nameof(kind));
        }
        return new CrucibleError(kind, null, 0, 0, default);
    }

    /// <summary>A variant holding a string (GenericError, IoError, ...).</summary>
    public static CrucibleError WithDetail(CrucibleErrorKind kind, string detail)
    {
        ArgumentNullException.ThrowIfNull(detail);
        if (PayloadOf(kind) != ErrorPayload.String)
        {
            throw new ArgumentException($"CrucibleError::{kind} does not hold a String", nameof(kind));
        }
        return new CrucibleError(kind, detail, 0, 0, default);
    }

    public static CrucibleError GenericError(string detail) => WithDetail(CrucibleErrorKind.GenericError, detail);

    public static CrucibleError IoError(string detail) => WithDetail(CrucibleErrorKind.IoError, detail);

    public static CrucibleError MissingContextSlot(ulong block, uint extent) =>
        new(CrucibleErrorKind.MissingContextSlot, null, block, extent, default);

    public static CrucibleError NegotiationError(NegotiationError error) =>
        new(CrucibleErrorKind.NegotiationError, null, 0, 0, error);

    private static string Format(CrucibleErrorKind kind) => kind switch
    {
        CrucibleErrorKind.GenericError => "Error: {1}",
        CrucibleErrorKind.IoError => "IO Error: {1}",
        CrucibleErrorKind.Unsupported => "Unsupported: {1}",
        CrucibleErrorKind.Disconnect => "data store disconnected",
        CrucibleErrorKind.DataLockError => "Error grabbing data lock",
        CrucibleErrorKind.RwLockError => "Error grabbing reader-writer {1} lock",
        CrucibleErrorKind.RecvDisconnected => "BlockOpWaiter recv channel disconnected",
        CrucibleErrorKind.SendError => "SendError: {1}",
        CrucibleErrorKind.OffsetUnaligned => "Offset not block aligned",
        CrucibleErrorKind.DataLenUnaligned => "Data length not block size multiple",
        CrucibleErrorKind.BlockSizeMismatch => "Block size mismatch",
        CrucibleErrorKind.InvalidNumberOfBlocks => "Invalid number of blocks: {1}",
        CrucibleErrorKind.OffsetInvalid => "Offset past end of extent",
        CrucibleErrorKind.UpstairsActivateInProgress => "Upstairs activation is in progress",
        CrucibleErrorKind.UpstairsDeactivating => "Upstairs is deactivating",
        CrucibleErrorKind.UpstairsInactive => "Upstairs is not active",
        CrucibleErrorKind.UuidMismatch => "Saw a UUID that wasn't ours!",
        CrucibleErrorKind.EncryptionError => "Encryption failed! {1}",
        CrucibleErrorKind.DecryptionError => "Decryption failed!",
        CrucibleErrorKind.HashMismatch => "Integrity hash mismatch!",
        CrucibleErrorKind.LBARangeOverlap => "LBA range overlap!",
        CrucibleErrorKind.SubvolumeSizeMismatch => "Subvolume size mismatch!",
        CrucibleErrorKind.SubvolumeTypeMismatch => "Subvolume type mismatch!",
        CrucibleErrorKind.CannotServeBlocks => "Cannot serve blocks: {1}",
        CrucibleErrorKind.CannotReceiveBlocks => "Cannot receive blocks: {1}",
        CrucibleErrorKind.SnapshotFailed => "Snapshot failed! {1}",
        CrucibleErrorKind.ModifyingReadOnlyRegion => "Attempting to modify read-only region!",
        CrucibleErrorKind.InvalidExtent => "Invalid extent",
        CrucibleErrorKind.RepairRequestError => "Repair request error {1}",
        CrucibleErrorKind.RepairFilesInvalid => "Invalid repair file list {1}",
        CrucibleErrorKind.RepairStreamError => "Repair stream error {1}",
        CrucibleErrorKind.GenerationNumberInvalid => "Active with different generation number",
        CrucibleErrorKind.NoLongerActive => "No longer active",
        CrucibleErrorKind.RegionAssembleError => "Failed reconciliation",
        CrucibleErrorKind.PropertyNotAvailable => "Property not available: {1}",
        CrucibleErrorKind.ReplaceRequestInvalid => "Invalid downstairs replace {1}",
        CrucibleErrorKind.MissingContextSlot => "missing context slot for block {2} in extent {3} ({3:X3})",
        CrucibleErrorKind.BadMetadata => "metadata deserialization failed: {1}",
        CrucibleErrorKind.BadContextSlot => "context slot deserialization failed: {1}",
        CrucibleErrorKind.MissingBlockContext => "missing block context for non-empty block",
        CrucibleErrorKind.RegionIncompatible => "Incompatible RegionDefinition {1}",
        CrucibleErrorKind.NegotiationError => "Negotiation error: {4}",
        _ => "CrucibleError {0}",
    };

    /// <summary>The real <c>Display</c> text.</summary>
    public override string ToString() =>
        string.Format(CultureInfo.InvariantCulture, Format(Kind), Kind, Detail, Block, Extent, Negotiation);

    public bool Equals(CrucibleError? other) =>
        other is not null && Kind == other.Kind && Detail == other.Detail && Block == other.Block
        && Extent == other.Extent && Negotiation == other.Negotiation;

    public override bool Equals(object? obj) => Equals(obj as CrucibleError);

    public override int GetHashCode() => HashCode.Combine(Kind, Detail, Block, Extent, Negotiation);

    public static bool operator ==(CrucibleError? left, CrucibleError? right) =>
        left is null ? right is null : left.Equals(right);

    public static bool operator !=(CrucibleError? left, CrucibleError? right) => !(left == right);

    /// <summary>Smallest encoding: a unit variant's index.</summary>
    internal const int MinWireSize = 4;

    internal static CrucibleError Read(ref BincodeReader r)
    {
        var kind = (CrucibleErrorKind)r.ReadVariant(VariantCount, nameof(CrucibleError));
        return PayloadOf(kind) switch
        {
            ErrorPayload.String => new CrucibleError(kind, r.ReadString(), 0, 0, default),
            ErrorPayload.ContextSlot => MissingContextSlot(r.ReadU64(), r.ReadU32()),
            ErrorPayload.Negotiation => NegotiationError(Protocol.NegotiationError.Read(ref r)),
            _ => new CrucibleError(kind, null, 0, 0, default),
        };
    }

    internal void Write(ref BincodeWriter w)
    {
        w.WriteVariant((uint)Kind);
        switch (PayloadOf(Kind))
        {
            case ErrorPayload.String:
                w.WriteString(Detail!);
                break;
            case ErrorPayload.ContextSlot:
                w.WriteU64(Block);
                w.WriteU32(Extent);
                break;
            case ErrorPayload.Negotiation:
                Negotiation.Write(ref w);
                break;
        }
    }
}

using Propolis.Crucible.Protocol;
using Regions = Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>
/// Conversions between the wire types (<see cref="Protocol"/>) and the region's definition,
/// and from region failures to
/// the <see cref="CrucibleError"/> the upstairs is told.
/// </summary>
internal static class WireConversions
{
    /// <summary>What a read returns for a block: Empty if never written.</summary>
    public static ReadBlockContext ToReadBlockContext(this BlockContext? c) => c switch
    {
        null => ReadBlockContext.Empty,
        { EncryptionContext: EncryptionContext ec } => ReadBlockContext.Encrypted(ec),
        { } context => ReadBlockContext.Unencrypted(context.Hash),
    };

    public static RegionDefinition ToWire(this Regions.RegionDefinition d) => new()
    {
        BlockSize = d.BlockSize,
        ExtentSize = new Block(d.ExtentSize.Value, d.ExtentSize.Shift),
        ExtentCount = d.ExtentCount,
        Uuid = d.Uuid,
        Encrypted = d.Encrypted,
        DatabaseReadVersion = d.DatabaseReadVersion,
        DatabaseWriteVersion = d.DatabaseWriteVersion,
    };

    /// <summary>The CrucibleError a region failure is reported as (RegionError names are CrucibleError's).</summary>
    public static CrucibleError ToCrucibleError(this Exception e) => e switch
    {
        Regions.RegionException re => re.Error switch
        {
            Regions.RegionError.IoError => CrucibleError.IoError(re.Message),
            Regions.RegionError.DataLenUnaligned => CrucibleError.Of(CrucibleErrorKind.DataLenUnaligned),
            Regions.RegionError.OffsetInvalid => CrucibleError.Of(CrucibleErrorKind.OffsetInvalid),
            Regions.RegionError.InvalidNumberOfBlocks => CrucibleError.WithDetail(CrucibleErrorKind.InvalidNumberOfBlocks, re.Message),
            Regions.RegionError.HashMismatch => CrucibleError.Of(CrucibleErrorKind.HashMismatch),
            Regions.RegionError.ModifyingReadOnlyRegion => CrucibleError.Of(CrucibleErrorKind.ModifyingReadOnlyRegion),
            Regions.RegionError.InvalidExtent => CrucibleError.Of(CrucibleErrorKind.InvalidExtent),
            Regions.RegionError.BadMetadata => CrucibleError.WithDetail(CrucibleErrorKind.BadMetadata, re.Message),
            Regions.RegionError.BadContextSlot => CrucibleError.WithDetail(CrucibleErrorKind.BadContextSlot, re.Message),
            Regions.RegionError.RegionIncompatible => CrucibleError.WithDetail(CrucibleErrorKind.RegionIncompatible, re.Message),
            // The region's MissingContextSlot carries no block/extent numbers to fill the variant with.
            _ => CrucibleError.GenericError(re.Message),
        },
        ExtentRepairException r => r.Error,
        InjectedErrorException => CrucibleError.GenericError("test error"),
        IOException or UnauthorizedAccessException => CrucibleError.IoError(e.Message),
        _ => CrucibleError.GenericError(e.Message),
    };
}

/// <summary>A failure made up by the test options (<c>--read-errors</c> and the like).</summary>
internal sealed class InjectedErrorException() : Exception("test error");


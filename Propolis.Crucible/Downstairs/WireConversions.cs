using Propolis.Crucible.Protocol;
using Regions = Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>
/// Conversions between the wire types (<see cref="Protocol"/>) and the region's types
/// (<see cref="Regions"/>), which mirror the same Rust types, and from region failures to
/// the <see cref="CrucibleError"/> the upstairs is told.
/// </summary>
internal static class WireConversions
{
    public static Regions.BlockContext ToRegion(this BlockContext c)
    {
        if (c.EncryptionContext is not EncryptionContext ec)
        {
            return new Regions.BlockContext(c.Hash, null);
        }
        EncryptionNonce nonce = ec.Nonce;
        EncryptionTag tag = ec.Tag;
        return new Regions.BlockContext(c.Hash, new Regions.EncryptionContext(nonce, tag));
    }

    /// <summary>What a read returns for a block: Empty if never written.</summary>
    public static ReadBlockContext ToReadBlockContext(this Regions.BlockContext? c)
    {
        if (c is not Regions.BlockContext context)
        {
            return ReadBlockContext.Empty;
        }
        if (context.EncryptionContext is not Regions.EncryptionContext ec)
        {
            return ReadBlockContext.Unencrypted(context.Hash);
        }
        Span<byte> nonce = stackalloc byte[EncryptionNonce.Length];
        Span<byte> tag = stackalloc byte[EncryptionTag.Length];
        ec.CopyNonceTo(nonce);
        ec.CopyTagTo(tag);
        return ReadBlockContext.Encrypted(new EncryptionContext(nonce, tag));
    }

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


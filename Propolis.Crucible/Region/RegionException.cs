namespace Propolis.Crucible.Regions;

/// <summary>
/// Why a region or extent operation failed. The names are those of the matching
/// <c>crucible_common::CrucibleError</c> variants, so the downstairs can answer the upstairs with them.
/// </summary>
public enum RegionError
{
    /// <summary>A read, write, fsync or open failed, or a file is not the size its layout says.</summary>
    IoError,
    /// <summary>The data length is not a whole number of blocks.</summary>
    DataLenUnaligned,
    /// <summary>The block range does not fit in the extent.</summary>
    OffsetInvalid,
    /// <summary>The number of block contexts does not match the number of blocks.</summary>
    InvalidNumberOfBlocks,
    /// <summary>A write's block context hash does not match its data.</summary>
    HashMismatch,
    /// <summary>A write or a dirty flush on a region opened read-only.</summary>
    ModifyingReadOnlyRegion,
    /// <summary>An extent number at or beyond the region's extent count.</summary>
    InvalidExtent,
    /// <summary>Neither context slot of a block matches its data, and neither is empty.</summary>
    MissingContextSlot,
    /// <summary>The extent metadata cannot be decoded.</summary>
    BadMetadata,
    /// <summary>A context slot cannot be decoded.</summary>
    BadContextSlot,
    /// <summary>region.json is missing, malformed, of another version, or describes an impossible region.</summary>
    RegionIncompatible,
}

/// <summary>A failed region or extent operation; <see cref="Error"/> says which kind.</summary>
public sealed class RegionException : Exception
{
    public RegionException(RegionError error, string message, Exception? inner = null)
        : base(message, inner)
    {
        Error = error;
    }

    public RegionError Error { get; }
}

using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// <c>RegionDefinition</c> (crucible-common <c>region.rs</c>) as carried by
/// <c>Message::RegionInfo</c>. Field order is the wire order. The <c>usize</c> database
/// versions are <c>u64</c> on the wire.
/// </summary>
public readonly record struct RegionDefinition
{
    /// <summary>Size of each block in bytes; a power of two, at least 512.</summary>
    public ulong BlockSize { get; init; }

    /// <summary>How many blocks make an extent (<c>value</c>) and their shift.</summary>
    public Block ExtentSize { get; init; }

    /// <summary>How many whole extents make the region.</summary>
    public uint ExtentCount { get; init; }

    /// <summary>UUID of this region.</summary>
    public Guid Uuid { get; init; }

    /// <summary>Region data is encrypted.</summary>
    public bool Encrypted { get; init; }

    /// <summary><c>database_read_version</c> (DATABASE_READ_VERSION is 1).</summary>
    public ulong DatabaseReadVersion { get; init; }

    /// <summary><c>database_write_version</c> (DATABASE_WRITE_VERSION is 1).</summary>
    public ulong DatabaseWriteVersion { get; init; }

    /// <summary>Total size in bytes: block_size * extent_size.value * extent_count.</summary>
    public ulong TotalSize => BlockSize * ExtentSize.Value * ExtentCount;

    internal static RegionDefinition Read(ref BincodeReader r) => new()
    {
        BlockSize = r.ReadU64(),
        ExtentSize = Block.Read(ref r),
        ExtentCount = r.ReadU32(),
        Uuid = r.ReadUuid(),
        Encrypted = r.ReadBool(),
        DatabaseReadVersion = r.ReadU64(),
        DatabaseWriteVersion = r.ReadU64(),
    };

    internal void Write(ref BincodeWriter w)
    {
        w.WriteU64(BlockSize);
        ExtentSize.Write(ref w);
        w.WriteU32(ExtentCount);
        w.WriteUuid(Uuid);
        w.WriteBool(Encrypted);
        w.WriteU64(DatabaseReadVersion);
        w.WriteU64(DatabaseWriteVersion);
    }
}

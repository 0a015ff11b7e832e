using System.Buffers.Binary;

using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Regions;

/// <summary>
/// One context slot of a raw extent: an <c>Option&lt;OnDiskDownstairsBlockContext&gt;</c> encoded with
/// bincode 1.3's default options (fixed-width little-endian integers, a one-byte 0/1 tag for each
/// <c>Option</c>, arrays without a length) into a zero-filled slot of
/// <see cref="SlotSize"/> bytes (<c>BLOCK_CONTEXT_SLOT_SIZE_BYTES</c>). The encoding is packed, so where
/// <c>on_disk_hash</c> lands depends on whether the block is encrypted; the largest case fills the slot
/// exactly. Bytes after the encoding are zero when written and ignored when read, as bincode does.
/// </summary>
public static class ContextSlotFormat
{
    /// <summary><c>BLOCK_CONTEXT_SLOT_SIZE_BYTES</c> (crucible raw-extent/src/lib.rs).</summary>
    public const int SlotSize = 48;

    // Option<OnDiskDownstairsBlockContext> tag: 0 = None, 1 = Some
    public const int OptionTag = 0;
    // OnDiskDownstairsBlockContext.block_context: BlockContext
    public const int Hash = OptionTag + 1;                         // u64
    public const int EncryptionContextTag = Hash + 8;              // Option<EncryptionContext> tag
    // ... when the block is encrypted:
    public const int Nonce = EncryptionContextTag + 1;             // [u8; 12]
    public const int Tag = Nonce + EncryptionContext.NonceSize;    // [u8; 16]
    public const int EncryptedOnDiskHash = Tag + EncryptionContext.TagSize; // u64
    public const int EncryptedFlushId = EncryptedOnDiskHash + 8;   // u16
    public const int EncryptedEnd = EncryptedFlushId + 2;
    // ... when it is not:
    public const int PlainOnDiskHash = EncryptionContextTag + 1;   // u64
    public const int PlainFlushId = PlainOnDiskHash + 8;           // u16
    public const int PlainEnd = PlainFlushId + 2;

    /// <summary>Writes <paramref name="context"/> (or None) into a <see cref="SlotSize"/>-byte slot.</summary>
    public static void Encode(in OnDiskBlockContext? context, Span<byte> slot)
    {
        slot = slot[..SlotSize];
        slot.Clear();
        if (context is not { } c)
        {
            return;
        }
        slot[OptionTag] = 1;
        BinaryPrimitives.WriteUInt64LittleEndian(slot[Hash..], c.BlockContext.Hash);
        if (c.BlockContext.EncryptionContext is { } ec)
        {
            slot[EncryptionContextTag] = 1;
            ec.CopyNonceTo(slot[Nonce..]);
            ec.CopyTagTo(slot[Tag..]);
            BinaryPrimitives.WriteUInt64LittleEndian(slot[EncryptedOnDiskHash..], c.OnDiskHash);
            BinaryPrimitives.WriteUInt16LittleEndian(slot[EncryptedFlushId..], c.FlushId);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(slot[PlainOnDiskHash..], c.OnDiskHash);
            BinaryPrimitives.WriteUInt16LittleEndian(slot[PlainFlushId..], c.FlushId);
        }
    }

    /// <summary>Reads a slot; a tag byte other than 0 or 1 is <see cref="RegionError.BadContextSlot"/>.</summary>
    public static OnDiskBlockContext? Decode(ReadOnlySpan<byte> slot)
    {
        slot = slot[..SlotSize];
        switch (slot[OptionTag])
        {
            case 0:
                return null;
            case 1:
                break;
            default:
                throw BadTag("context slot", slot[OptionTag]);
        }
        ulong hash = BinaryPrimitives.ReadUInt64LittleEndian(slot[Hash..]);
        switch (slot[EncryptionContextTag])
        {
            case 0:
                return new OnDiskBlockContext(
                    new BlockContext(hash, null),
                    BinaryPrimitives.ReadUInt64LittleEndian(slot[PlainOnDiskHash..]),
                    BinaryPrimitives.ReadUInt16LittleEndian(slot[PlainFlushId..]));
            case 1:
                var ec = new EncryptionContext(slot.Slice(Nonce, EncryptionContext.NonceSize),
                    slot.Slice(Tag, EncryptionContext.TagSize));
                return new OnDiskBlockContext(
                    new BlockContext(hash, ec),
                    BinaryPrimitives.ReadUInt64LittleEndian(slot[EncryptedOnDiskHash..]),
                    BinaryPrimitives.ReadUInt16LittleEndian(slot[EncryptedFlushId..]));
            default:
                throw BadTag("encryption context", slot[EncryptionContextTag]);
        }
    }

    private static RegionException BadTag(string what, byte tag) =>
        new(RegionError.BadContextSlot, $"invalid Option tag {tag} for the {what} (expected 0 or 1)");
}

/// <summary>
/// <c>crucible_raw_extent::OnDiskMeta</c>, the extent metadata at the very end of a raw extent file,
/// encoded with bincode 1.3 (packed, little-endian, <c>bool</c> as one 0/1 byte) into a zero-filled
/// <see cref="Size"/>-byte area (<c>BLOCK_META_SIZE_BYTES</c>). <c>dirty</c> comes first so that it can be
/// set with a one-byte write.
/// </summary>
public readonly record struct OnDiskMeta(
    bool Dirty, ulong GenNumber, ulong FlushNumber, uint ExtVersion, uint BonusSyncCount, uint DefragCount)
{
    /// <summary><c>BLOCK_META_SIZE_BYTES</c>.</summary>
    public const int Size = 32;

    public const int DirtyOffset = 0;                               // bool
    public const int GenNumberOffset = DirtyOffset + 1;             // u64
    public const int FlushNumberOffset = GenNumberOffset + 8;       // u64
    public const int ExtVersionOffset = FlushNumberOffset + 8;      // u32
    public const int BonusSyncCountOffset = ExtVersionOffset + 4;   // u32
    public const int DefragCountOffset = BonusSyncCountOffset + 4;  // u32
    public const int EncodedEnd = DefragCountOffset + 4;            // 29; the rest is zero

    /// <summary><c>EXTENT_META_RAW</c>: the extent version of the raw file format.</summary>
    public const uint ExtentMetaRaw = 2;

    public void Encode(Span<byte> destination)
    {
        destination = destination[..Size];
        destination.Clear();
        destination[DirtyOffset] = Dirty ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt64LittleEndian(destination[GenNumberOffset..], GenNumber);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[FlushNumberOffset..], FlushNumber);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[ExtVersionOffset..], ExtVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[BonusSyncCountOffset..], BonusSyncCount);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[DefragCountOffset..], DefragCount);
    }

    public static OnDiskMeta Decode(ReadOnlySpan<byte> source)
    {
        source = source[..Size];
        byte dirty = source[DirtyOffset];
        if (dirty > 1)
        {
            throw new RegionException(RegionError.BadMetadata,
                $"invalid dirty byte {dirty} in extent metadata (expected 0 or 1)");
        }
        return new OnDiskMeta(
            dirty == 1,
            BinaryPrimitives.ReadUInt64LittleEndian(source[GenNumberOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[FlushNumberOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[ExtVersionOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[BonusSyncCountOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[DefragCountOffset..]));
    }
}

/// <summary>Which of a block's two context slots is active (<c>ContextSlot</c>; A is 0, B is 1).</summary>
public enum ContextSlot
{
    A = 0,
    B = 1,
}

/// <summary>
/// <c>RawLayout</c>: where things are in a raw extent file of <see cref="BlockCount"/> blocks of
/// <see cref="BlockSize"/> bytes, in file order:
/// <list type="number">
/// <item>block data, <c>BlockSize × BlockCount</c> bytes;</item>
/// <item>context slot array A, then array B, each <c>48 × BlockCount</c> bytes;</item>
/// <item>the active-slot bitmap, <c>ceil(BlockCount / 8)</c> bytes, bit <c>i % 8</c> of byte <c>i / 8</c>
/// set when block <c>i</c>'s active slot is B (valid only while the extent is clean);</item>
/// <item><see cref="OnDiskMeta"/>, 32 bytes. The bitmap and metadata are contiguous so that a flush
/// writes both with one <c>pwrite</c>.</item>
/// </list>
/// </summary>
public readonly record struct RawLayout(ulong BlockCount, uint BlockSize)
{
    public ulong SupplementaryDataOffset => BlockCount * BlockSize;

    public ulong ContextSlotOffset(ulong block, ContextSlot slot) =>
        SupplementaryDataOffset + (BlockCount * (ulong)slot + block) * ContextSlotFormat.SlotSize;

    public ulong ActiveContextOffset => SupplementaryDataOffset + BlockCount * 2 * ContextSlotFormat.SlotSize;

    public ulong ActiveContextSize => (BlockCount + 7) / 8;

    public ulong MetadataOffset => ActiveContextOffset + ActiveContextSize;

    public ulong FileSize => MetadataOffset + OnDiskMeta.Size;
}

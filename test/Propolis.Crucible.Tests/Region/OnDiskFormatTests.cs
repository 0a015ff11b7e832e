using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Regions.Block;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Regions;

/// <summary>
/// The context-slot and metadata encodings, pinned to bytes produced by the real encoder: bincode 1.3.3
/// (<c>bincode::serialize_into</c> into a zeroed 48- or 32-byte buffer) over crucible's own struct
/// definitions (raw-extent/src/lib.rs, protocol/src/lib.rs at 6d037cb). The program that produced them
/// is <c>golden-xcheck.rs</c> beside this file.
/// </summary>
public class OnDiskFormatTests
{
    internal static readonly byte[] TestNonce = Enumerable.Range(0xA0, 12).Select(i => (byte)i).ToArray();
    internal static readonly byte[] TestTag = Enumerable.Range(0xB0, 16).Select(i => (byte)i).ToArray();

    private const string EmptySlot =
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

    private const string PlainSlot =
        "01efcdab8967452301001032547698badcfe341200000000000000000000000000000000000000000000000000000000";

    private const string EncryptedSlot =
        "01887766554433221101a0a1a2a3a4a5a6a7a8a9aaabb0b1b2b3b4b5b6b7b8b9babbbcbdbebf00ffeeddccbbaa990700";

    private static readonly OnDiskBlockContext Plain =
        new(new BlockContext(0x0123456789abcdef, null), 0xfedcba9876543210, 0x1234);

    private static readonly OnDiskBlockContext Encrypted =
        new(new BlockContext(0x1122334455667788, new EncryptionContext(TestNonce, TestTag)), 0x99aabbccddeeff00, 7);

    private static string Encode(OnDiskBlockContext? c)
    {
        var slot = new byte[ContextSlotFormat.SlotSize];
        slot.AsSpan().Fill(0xEE); // Encode must zero what it does not write
        ContextSlotFormat.Encode(c, slot);
        return Convert.ToHexStringLower(slot);
    }

    [Fact]
    public void EmptySlotIsAllZeros() => Assert.Equal(EmptySlot, Encode(null));

    [Fact]
    public void UnencryptedSlotIsPacked() => Assert.Equal(PlainSlot, Encode(Plain));

    [Fact]
    public void EncryptedSlotFillsAll48Bytes() => Assert.Equal(EncryptedSlot, Encode(Encrypted));

    [Fact]
    public void SlotsDecodeToWhatWasEncoded()
    {
        Assert.Null(ContextSlotFormat.Decode(Convert.FromHexString(EmptySlot)));
        Assert.Equal(Plain, ContextSlotFormat.Decode(Convert.FromHexString(PlainSlot)));
        Assert.Equal(Encrypted, ContextSlotFormat.Decode(Convert.FromHexString(EncryptedSlot)));
    }

    [Fact]
    public void BytesAfterTheEncodingAreIgnoredOnRead()
    {
        // bincode reads only what it needs; the real code never looks past it either.
        byte[] slot = Convert.FromHexString(PlainSlot);
        slot.AsSpan(ContextSlotFormat.PlainEnd).Fill(0x5A);
        Assert.Equal(Plain, ContextSlotFormat.Decode(slot));
        byte[] empty = new byte[48];
        empty.AsSpan(1).Fill(0x5A);
        Assert.Null(ContextSlotFormat.Decode(empty));
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(0, 0xFF)]
    [InlineData(ContextSlotFormat.EncryptionContextTag, 2)]
    public void BadOptionTagsAreBadContextSlots(int offset, byte value)
    {
        byte[] slot = Convert.FromHexString(PlainSlot);
        slot[offset] = value;
        var e = Assert.Throws<RegionException>(() => ContextSlotFormat.Decode(slot));
        Assert.Equal(RegionError.BadContextSlot, e.Error);
    }

    [Fact]
    public void SlotFieldOffsets()
    {
        Assert.Equal(1, ContextSlotFormat.Hash);
        Assert.Equal(9, ContextSlotFormat.EncryptionContextTag);
        Assert.Equal(10, ContextSlotFormat.Nonce);
        Assert.Equal(22, ContextSlotFormat.Tag);
        Assert.Equal(38, ContextSlotFormat.EncryptedOnDiskHash);
        Assert.Equal(46, ContextSlotFormat.EncryptedFlushId);
        Assert.Equal(48, ContextSlotFormat.EncryptedEnd);
        Assert.Equal(10, ContextSlotFormat.PlainOnDiskHash);
        Assert.Equal(18, ContextSlotFormat.PlainFlushId);
        Assert.Equal(20, ContextSlotFormat.PlainEnd);
    }

    [Fact]
    public void MetadataEncoding()
    {
        var meta = new OnDiskMeta(true, 0x0102030405060708, 0x1112131415161718, 2, 0x21222324, 0x31323334);
        var buf = new byte[OnDiskMeta.Size];
        buf.AsSpan().Fill(0xEE);
        meta.Encode(buf);
        Assert.Equal("0108070605040302011817161514131211020000002423222134333231000000", Convert.ToHexStringLower(buf));
        Assert.Equal(meta, OnDiskMeta.Decode(buf));
    }

    [Fact]
    public void FreshMetadataEncoding()
    {
        var buf = new byte[OnDiskMeta.Size];
        new OnDiskMeta(false, 0, 0, OnDiskMeta.ExtentMetaRaw, 0, 0).Encode(buf);
        Assert.Equal("0000000000000000000000000000000000020000000000000000000000000000", Convert.ToHexStringLower(buf));
    }

    [Fact]
    public void DirtyByteOtherThanZeroOrOneIsBadMetadata()
    {
        var buf = new byte[OnDiskMeta.Size];
        buf[0] = 2;
        Assert.Equal(RegionError.BadMetadata, Assert.Throws<RegionException>(() => OnDiskMeta.Decode(buf)).Error);
    }

    [Fact]
    public void LayoutOfTheDefaultExtent()
    {
        // 100 blocks of 512 bytes, the crucible-downstairs create defaults.
        var layout = new RawLayout(100, 512);
        Assert.Equal(51_200UL, layout.SupplementaryDataOffset);
        Assert.Equal(51_200UL, layout.ContextSlotOffset(0, ContextSlot.A));
        Assert.Equal(51_200UL + 48 * 99, layout.ContextSlotOffset(99, ContextSlot.A));
        Assert.Equal(51_200UL + 48 * 100, layout.ContextSlotOffset(0, ContextSlot.B));
        Assert.Equal(51_200UL + 48 * 200, layout.ActiveContextOffset);
        Assert.Equal(13UL, layout.ActiveContextSize);
        Assert.Equal(51_200UL + 9_600 + 13, layout.MetadataOffset);
        Assert.Equal(60_845UL, layout.FileSize); // 51200 + 9600 + 13 + 32
    }
}

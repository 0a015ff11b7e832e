using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Regions.Block;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Regions;

/// <summary>
/// The exact bytes of an extent file's supplementary area (context slots A and B, active-slot bitmap,
/// metadata) through create, writes and flushes. The expected bytes were built independently of this
/// code (Python <c>struct.pack</c> of the bincode layout that golden-xcheck.rs confirms, hashes from the
/// system's libxxhash), following the real write and flush paths of extent_inner_raw.rs.
///
/// The extent: 4 blocks of 512 bytes, so the area starts at byte 2048 and is 4×48 (slots A) + 4×48
/// (slots B) + 1 (bitmap) + 32 (metadata) = 417 bytes. One line below is one 48-byte slot.
/// </summary>
public class ExtentGoldenTests
{
    private const string Zero48 = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

    // Block 1 holds 0x11 × 512, XXH64 = 6f92650b52f32f19; unencrypted: hash == on_disk_hash; flush_id 0.
    private const string B1Plain = "01192ff3520b65926f00192ff3520b65926f000000000000000000000000000000000000000000000000000000000000";

    // Block 2 holds 0x33 × 512, encrypted: hash = XXH64(nonce ‖ tag ‖ data) = 4348846528f24f6f,
    // on_disk_hash = XXH64(data) = cb15b6c3379c1006; flush_id 0.
    private const string B2Encrypted = "016f4ff2286584484301a0a1a2a3a4a5a6a7a8a9aaabb0b1b2b3b4b5b6b7b8b9babbbcbdbebf06109c37c3b615cb0000";

    // Block 1 rewritten with 0x22 × 512 (XXH64 2d29b85573cce6fa) after flush 1: into slot A, flush_id 1.
    private const string A1Rewritten = "01fae6cc7355b8292d00fae6cc7355b8292d010000000000000000000000000000000000000000000000000000000000";

    private static string Tail(string a0, string a1, string a2, string a3, string b0, string b1, string b2, string b3, string bitmapAndMeta) =>
        a0 + a1 + a2 + a3 + b0 + b1 + b2 + b3 + bitmapAndMeta;

    private static readonly Guid Uuid = Guid.Parse("8f1f4a4e-2d43-4a4b-9d7a-7b1e6f0c2d11");

    private static byte[] Fill(byte value) => Enumerable.Repeat(value, 512).ToArray();

    private static string ReadTail(string regionDir)
    {
        byte[] file = File.ReadAllBytes(RegionPaths.ExtentPath(regionDir, 0));
        Assert.Equal(2048 + 417, file.Length);
        return Convert.ToHexStringLower(file.AsSpan(2048));
    }

    [Fact]
    public void SupplementaryAreaThroughWritesAndFlushes()
    {
        using var tmp = new TempDir();
        string dir = tmp.Sub("region");
        using var region = Region.Create(dir, RegionDefinition.ForNewRegion(512, 4, 1, Uuid, false));

        // Created: every slot empty, bitmap 0, metadata clean / gen 0 / flush 0 / ext_version 2.
        Assert.Equal(Tail(Zero48, Zero48, Zero48, Zero48, Zero48, Zero48, Zero48, Zero48,
            "00" + "00" + "0000000000000000" + "0000000000000000" + "02000000" + "00000000" + "00000000" + "000000"),
            ReadTail(dir));

        // Two writes: contexts go to the inactive slot (B); the dirty byte is set; bitmap untouched.
        byte[] d1 = Fill(0x11);
        region.Write(0, 1, d1, new[] { BlockContext.ForPlainBlock(d1) });
        byte[] d2 = Fill(0x33);
        var ec = new EncryptionContext(OnDiskFormatTests.TestNonce, OnDiskFormatTests.TestTag);
        region.Write(0, 2, d2, new[] { new BlockContext(IntegrityHash.Compute(ec, d2), ec) });
        Assert.Equal(Tail(Zero48, Zero48, Zero48, Zero48, Zero48, B1Plain, B2Encrypted, Zero48,
            "00" + "01" + "0000000000000000" + "0000000000000000" + "02000000" + "00000000" + "00000000" + "000000"),
            ReadTail(dir));

        // Flush 1, generation 3: bitmap 0b0110 (blocks 1 and 2 on B), metadata clean.
        region.Flush(flushNumber: 1, genNumber: 3);
        Assert.Equal(Tail(Zero48, Zero48, Zero48, Zero48, Zero48, B1Plain, B2Encrypted, Zero48,
            "06" + "00" + "0300000000000000" + "0100000000000000" + "02000000" + "00000000" + "00000000" + "000000"),
            ReadTail(dir));

        // Rewrite block 1: its inactive slot is now A; the flush id is the last flush (1).
        byte[] d1b = Fill(0x22);
        region.Write(0, 1, d1b, new[] { BlockContext.ForPlainBlock(d1b) });
        Assert.Equal(Tail(Zero48, A1Rewritten, Zero48, Zero48, Zero48, B1Plain, B2Encrypted, Zero48,
            "06" + "01" + "0300000000000000" + "0100000000000000" + "02000000" + "00000000" + "00000000" + "000000"),
            ReadTail(dir));

        // Flush 2: bitmap 0b0100.
        region.Flush(flushNumber: 2, genNumber: 3);
        Assert.Equal(Tail(Zero48, A1Rewritten, Zero48, Zero48, Zero48, B1Plain, B2Encrypted, Zero48,
            "04" + "00" + "0300000000000000" + "0200000000000000" + "02000000" + "00000000" + "00000000" + "000000"),
            ReadTail(dir));

        // And the data area holds the blocks at block × 512.
        byte[] file = File.ReadAllBytes(RegionPaths.ExtentPath(dir, 0));
        Assert.Equal(new byte[512], file[..512]);
        Assert.Equal(d1b, file[512..1024]);
        Assert.Equal(d2, file[1024..1536]);
        Assert.Equal(new byte[512], file[1536..2048]);
    }

    [Fact]
    public void RegionJsonOnDiskIsTheDefinitionWithItsExtentCount()
    {
        using var tmp = new TempDir();
        string dir = tmp.Sub("region");
        RegionDefinition def = RegionDefinition.ForNewRegion(512, 4, 3, Uuid, false);
        using (Region.Create(dir, def))
        {
        }
        Assert.Equal(def.ToJson(), File.ReadAllText(Path.Combine(dir, "region.json")));
        Assert.Contains("\"extent_count\": 3,\n", File.ReadAllText(Path.Combine(dir, "region.json")));
        Assert.Equal(["region.json"], Directory.GetFiles(dir).Select(Path.GetFileName));
        for (uint eid = 0; eid < 3; eid++)
        {
            Assert.Equal(2048 + 417, new FileInfo(Path.Combine(dir, "00", "000", $"00{eid}")).Length);
        }
    }
}

using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Block;

namespace Propolis.Core.Tests.Block;

public class Fat12ImageTests
{
    private static readonly Fat12File[] TwoFiles =
    [
        new("user-data", "u"u8.ToArray()),
        new("meta-data", "m"u8.ToArray()),
    ];

    [Fact]
    public void Boot_sector_matches_the_spec_byte_for_byte()
    {
        var image = Fat12Image.Build("cidata", TwoFiles, volumeId: 0x12345678);
        // Worked by hand from fatgen103 §3.1-§3.2: 2000 clusters of one sector need
        // (2000+2)*1.5 = 3003 FAT bytes = 6 sectors; 1 + 2*6 + 14 (224 root entries) + 2000 = 2027 sectors.
        var expected = Convert.FromHexString(
            "EB3C90" + "50524F504F4C4953"        // jmp; OEM "PROPOLIS"
            + "0002" + "01" + "0100" + "02"      // 512 B/sector, 1 sector/cluster, 1 reserved, 2 FATs
            + "E000" + "EB07" + "F8" + "0600"    // 224 root entries, 2027 sectors, media F8, 6 sectors/FAT
            + "2000" + "4000" + "00000000" + "00000000" // 32 sectors/track, 64 heads, hidden 0, TotSec32 0
            + "80" + "00" + "29" + "78563412"    // drive 80h, reserved, extended boot signature, volume id
            + "6369646174612020202020"          // "cidata     "
            + "4641543132202020");               // "FAT12   "
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(image, 0, 62));
        Assert.Equal(0x55, image[510]);
        Assert.Equal(0xAA, image[511]);
        Assert.Equal(2027 * 512, image.Length);
    }

    [Theory]
    // Checksums read from the long-name entries mtools 4.0.32 (mcopy) wrote for these files.
    [InlineData("USER-D~1   ", 0xB0)]
    [InlineData("META-D~1   ", 0xD4)]
    [InlineData("NETWOR~1   ", 0x47)]
    public void Long_name_checksum_matches_mtools(string shortName, byte checksum) =>
        Assert.Equal(checksum, Fat12Image.LfnChecksum(Encoding.ASCII.GetBytes(shortName)));

    [Fact]
    public void Fat12_entries_pack_two_per_three_bytes()
    {
        var fat = new byte[6];
        Fat12Image.SetFatEntry(fat, 0, 0xFF8);
        Fat12Image.SetFatEntry(fat, 1, 0xFFF);
        Fat12Image.SetFatEntry(fat, 2, 0x123);
        Fat12Image.SetFatEntry(fat, 3, 0xABC);
        // fatgen103 §4: entry 2 is the low 12 bits of bytes 3..4, entry 3 the high 12 bits of bytes 4..5.
        Assert.Equal("F8FFFF23C1AB", Convert.ToHexString(fat));
        Assert.Equal(0x123u, Fat12Image.GetFatEntry(fat, 2));
        Assert.Equal(0xABCu, Fat12Image.GetFatEntry(fat, 3));
    }

    [Fact]
    public void The_cloud_init_volume_reads_back_with_label_long_names_and_contents()
    {
        var image = CloudInitDisk.BuildImage("#cloud-config\nhostname: demo\n", "instance-id: iid-1\n", "version: 2\n");
        var volume = FatReader.Read(image);
        Assert.Equal("cidata     ", volume.BootLabel);
        Assert.Equal("cidata     ", volume.DirectoryLabel);
        Assert.True(volume.Clusters < 4085, "a FAT12 volume has fewer than 4085 clusters");
        Assert.Equal(["user-data", "meta-data", "network-config"], volume.Files.Select(f => f.Name));
        Assert.Equal(["USER-D~1   ", "META-D~1   ", "NETWOR~1   "], volume.Files.Select(f => f.ShortName));
        Assert.Equal("#cloud-config\nhostname: demo\n", Encoding.UTF8.GetString(volume.Files[0].Contents));
        Assert.Equal("instance-id: iid-1\n", Encoding.UTF8.GetString(volume.Files[1].Contents));
        Assert.Equal("version: 2\n", Encoding.UTF8.GetString(volume.Files[2].Contents));

        Assert.Equal(image, CloudInitDisk.BuildImage("#cloud-config\nhostname: demo\n", "instance-id: iid-1\n", "version: 2\n"));
        Assert.Equal(["user-data", "meta-data"], FatReader.Read(CloudInitDisk.BuildImage("", "")).Files.Select(f => f.Name));
    }

    [Fact]
    public void Large_files_get_larger_clusters_and_long_names_span_entries()
    {
        var big = Patterns.Make(3_000_000, 2);
        var longName = "A very long file name indeed, more than 26 chars.txt";
        var image = Fat12Image.Build("cidata", [new("user-data", big), new(longName, "hello\n"u8.ToArray()), new("README", [])]);
        var volume = FatReader.Read(image);
        Assert.Equal(2, volume.SectorsPerCluster);
        Assert.True(volume.Clusters < 4085);
        Assert.Equal(big, volume.Files[0].Contents);
        Assert.Equal(longName, volume.Files[1].Name);
        Assert.Equal("AVERYL~1TXT", volume.Files[1].ShortName);
        Assert.Equal("hello\n", Encoding.ASCII.GetString(volume.Files[1].Contents));
        // A valid upper-case 8.3 name needs no long-name entry.
        Assert.Equal("README", volume.Files[2].Name);
        Assert.Equal(0, volume.Files[2].LongEntries);
        Assert.Empty(volume.Files[2].Contents);
    }

    [Fact]
    public void Bad_names_and_oversized_contents_are_refused()
    {
        Assert.Throws<ArgumentException>(() => Fat12Image.Build("cidata", [new("a/b", [])]));
        Assert.Throws<ArgumentException>(() => Fat12Image.Build("cidata", [new("x", []), new("X", [])]));
        Assert.Throws<ArgumentException>(() => Fat12Image.Build("far too long label", TwoFiles));
        Assert.Throws<ArgumentException>(() => Fat12Image.Build("cidata", [new("huge", new byte[200_000_000])]));
    }

    [Fact]
    public void The_cloudinit_backend_serves_the_volume_read_only()
    {
        using var rig = new BlockRig(CloudInitDisk.Create("#cloud-config\n", "instance-id: a\n"));
        rig.Backend.Start();
        Assert.Equal("cloudinit", rig.Backend.Kind);
        Assert.True(rig.Backend.Info.ReadOnly);
        Assert.Equal(BlockResult.Success, rig.Run(r => { r.PrepareRead(0); r.TryAddSegment(0, 512); }));
        Assert.True(rig.Memory.TryReadUInt16(510, out var signature));
        Assert.Equal(0xAA55, signature);
        var label = new byte[11];
        Assert.True(rig.Memory.TryRead(Fat12Image.BootSector.VolLab, label));
        Assert.Equal("cidata     ", Encoding.ASCII.GetString(label));
        Assert.Equal(BlockResult.ReadOnly, rig.Run(r => { r.PrepareWrite(0); r.TryAddSegment(0, 512); }));
    }

    /// <summary>An independent FAT12 reader: BPB, root directory, VFAT long names (checksums and
    /// ordinals verified), cluster chains (both FATs must agree).</summary>
    private static class FatReader
    {
        public sealed record File(string Name, string ShortName, int LongEntries, byte[] Contents);

        public sealed record Volume(string BootLabel, string? DirectoryLabel, int SectorsPerCluster, int Clusters, List<File> Files);

        public static Volume Read(byte[] image)
        {
            var bs = image.AsSpan(0, 512);
            Assert.Equal(0xAA55, BinaryPrimitives.ReadUInt16LittleEndian(bs[510..]));
            int bytesPerSector = BinaryPrimitives.ReadUInt16LittleEndian(bs[11..]);
            int spc = bs[13];
            int reserved = BinaryPrimitives.ReadUInt16LittleEndian(bs[14..]);
            int fats = bs[16];
            int rootEntries = BinaryPrimitives.ReadUInt16LittleEndian(bs[17..]);
            int total = BinaryPrimitives.ReadUInt16LittleEndian(bs[19..]);
            int fatSize = BinaryPrimitives.ReadUInt16LittleEndian(bs[22..]);
            Assert.Equal(0x29, bs[38]);
            Assert.Equal("FAT12   ", Encoding.ASCII.GetString(bs.Slice(54, 8)));
            var rootSectors = rootEntries * 32 / bytesPerSector;
            var firstData = reserved + fats * fatSize + rootSectors;
            var clusters = (total - firstData) / spc;
            Assert.Equal(total * bytesPerSector, image.Length);
            var fat = image.AsSpan(reserved * bytesPerSector, fatSize * bytesPerSector);
            Assert.True(fat.SequenceEqual(image.AsSpan((reserved + fatSize) * bytesPerSector, fatSize * bytesPerSector)), "the two FATs differ");
            Assert.Equal(0xFF8u, Fat12Image.GetFatEntry(fat, 0));

            var root = image.AsSpan((reserved + fats * fatSize) * bytesPerSector, rootSectors * bytesPerSector);
            string? dirLabel = null;
            var files = new List<File>();
            var longParts = new SortedDictionary<int, string>();
            int expectedChecksum = -1, longCount = 0;
            for (var i = 0; i < rootEntries; i++)
            {
                var e = root.Slice(i * 32, 32);
                if (e[0] == 0)
                {
                    break;
                }
                if (e[11] == 0x0F)
                {
                    var ord = e[0] & 0x1F;
                    if ((e[0] & 0x40) != 0)
                    {
                        longParts.Clear();
                        longCount = ord;
                        expectedChecksum = e[13];
                    }
                    Assert.Equal(expectedChecksum, e[13]);
                    Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(e[26..]));
                    var units = new char[13];
                    for (var k = 0; k < 13; k++)
                    {
                        var offset = k < 5 ? 1 + 2 * k : k < 11 ? 14 + 2 * (k - 5) : 28 + 2 * (k - 11);
                        units[k] = (char)BinaryPrimitives.ReadUInt16LittleEndian(e[offset..]);
                    }
                    longParts[ord] = new string(units);
                    continue;
                }
                var shortName = Encoding.ASCII.GetString(e[..11]);
                if ((e[11] & 0x08) != 0)
                {
                    dirLabel = shortName;
                    continue;
                }
                string name;
                var entries = longParts.Count;
                if (entries > 0)
                {
                    Assert.Equal(longCount, entries);
                    Assert.Equal(Fat12Image.LfnChecksum(e[..11]), expectedChecksum);
                    var joined = string.Concat(longParts.Values);
                    var end = joined.IndexOf('\0');
                    name = end < 0 ? joined : joined[..end];
                    if (end >= 0)
                    {
                        Assert.All(joined[(end + 1)..], c => Assert.Equal('\uFFFF', c));
                    }
                    longParts.Clear();
                }
                else
                {
                    var b = shortName[..8].TrimEnd();
                    var x = shortName[8..].TrimEnd();
                    name = x.Length == 0 ? b : b + "." + x;
                }
                var size = BinaryPrimitives.ReadInt32LittleEndian(e[28..]);
                var contents = new List<byte>();
                int cluster = BinaryPrimitives.ReadUInt16LittleEndian(e[26..]);
                var clusterBytes = spc * bytesPerSector;
                var visited = 0;
                while (cluster != 0 && cluster < 0xFF8)
                {
                    Assert.InRange(cluster, 2, clusters + 1);
                    Assert.True(++visited <= clusters, "cluster chain loops");
                    var at = (firstData + (cluster - 2) * spc) * bytesPerSector;
                    contents.AddRange(image.AsSpan(at, clusterBytes).ToArray());
                    cluster = (int)Fat12Image.GetFatEntry(fat, cluster);
                }
                Assert.Equal((size + clusterBytes - 1) / clusterBytes, visited);
                files.Add(new File(name, shortName, entries, contents.Take(size).ToArray()));
            }
            return new Volume(Encoding.ASCII.GetString(bs.Slice(43, 11)), dirLabel, spc, clusters, files);
        }
    }
}

using System.Buffers.Binary;
using System.Text;

namespace Propolis.Core.Block;

/// <summary>A file for the root directory of a <see cref="Fat12Image"/>.</summary>
/// <param name="Name">Long file name (VFAT): 1..255 UTF-16 units, no control characters or <c>"*/:&lt;&gt;?\|</c>.</param>
public sealed record Fat12File(string Name, byte[] Contents);

/// <summary>Builds a small FAT12 volume in memory: one boot sector, two FATs, a root directory holding
/// a volume-label entry and the files (each with VFAT long-name entries), then the files' clusters,
/// each file contiguous. Field names and offsets follow Microsoft's "FAT: General Overview of On-Disk
/// Format" (fatgen103, 2000), cited as §n below. The output is deterministic.</summary>
public static class Fat12Image
{
    public const int BytesPerSector = 512;
    public const int ReservedSectors = 1;
    public const int FatCount = 2;
    public const int RootEntryCount = 224;
    public const byte Media = 0xF8;
    public const int DirectoryEntrySize = 32;

    /// <summary>At most this many clusters: FAT12 means fewer than 4085 (§3.5), kept clear of the edge.</summary>
    public const int MaxClusters = 4000;

    /// <summary>At least this many clusters, so the volume is about 1 MiB like the images cloud-init's docs make.</summary>
    public const int MinClusters = 2000;

    /// <summary>Boot sector and BPB field offsets (§3.1, §3.2 "Extended BPB for FAT12 and FAT16").</summary>
    public static class BootSector
    {
        public const int JmpBoot = 0;           // 3 bytes: EB 3C 90
        public const int OemName = JmpBoot + 3; // 8 bytes
        public const int BytsPerSec = OemName + 8;
        public const int SecPerClus = BytsPerSec + 2;
        public const int RsvdSecCnt = SecPerClus + 1;
        public const int NumFats = RsvdSecCnt + 2;
        public const int RootEntCnt = NumFats + 1;
        public const int TotSec16 = RootEntCnt + 2;
        public const int MediaByte = TotSec16 + 2;
        public const int FatSz16 = MediaByte + 1;
        public const int SecPerTrk = FatSz16 + 2;
        public const int NumHeads = SecPerTrk + 2;
        public const int HiddSec = NumHeads + 2;
        public const int TotSec32 = HiddSec + 4;
        public const int DrvNum = TotSec32 + 4;
        public const int Reserved1 = DrvNum + 1;
        public const int BootSig = Reserved1 + 1;
        public const int VolId = BootSig + 1;
        public const int VolLab = VolId + 4;     // 11 bytes
        public const int FilSysType = VolLab + 11; // 8 bytes
        public const int BootCode = FilSysType + 8; // 62
        public const int Signature = 510;        // 55 AA
    }

    /// <summary>Short (8.3) directory entry offsets (§6).</summary>
    public static class DirEntry
    {
        public const int Name = 0;              // 11 bytes
        public const int Attr = Name + 11;
        public const int NtRes = Attr + 1;
        public const int CrtTimeTenth = NtRes + 1;
        public const int CrtTime = CrtTimeTenth + 1;
        public const int CrtDate = CrtTime + 2;
        public const int LstAccDate = CrtDate + 2;
        public const int FstClusHi = LstAccDate + 2;
        public const int WrtTime = FstClusHi + 2;
        public const int WrtDate = WrtTime + 2;
        public const int FstClusLo = WrtDate + 2;
        public const int FileSize = FstClusLo + 2;
    }

    /// <summary>Long-name directory entry offsets (§7).</summary>
    public static class LongNameEntry
    {
        public const int Ord = 0;
        public const int Name1 = Ord + 1;       // 5 UTF-16 units
        public const int Attr = Name1 + 10;
        public const int Type = Attr + 1;
        public const int Chksum = Type + 1;
        public const int Name2 = Chksum + 1;     // 6 UTF-16 units
        public const int FstClusLo = Name2 + 12;
        public const int Name3 = FstClusLo + 2;  // 2 UTF-16 units
        public const int CharsPerEntry = 13;
        public const byte LastLongEntry = 0x40;
    }

    public const byte AttrReadOnly = 0x01;
    public const byte AttrVolumeId = 0x08;
    public const byte AttrArchive = 0x20;
    public const byte AttrLongName = 0x0F;

    /// <summary>Builds the volume.</summary>
    /// <param name="label">Volume label, up to 11 characters of the 8.3 set (lower case is kept as given).</param>
    /// <param name="volumeId">BS_VolID; by default a hash of the label and files, so equal inputs give equal images.</param>
    /// <param name="timestamp">Creation and write time of every entry (DOS time has 2-second resolution); 2000-01-01 by default.</param>
    /// <exception cref="ArgumentException">A bad label or file name, duplicate names, or too much data for FAT12.</exception>
    public static byte[] Build(string label, IReadOnlyList<Fat12File> files, uint? volumeId = null, DateTime? timestamp = null)
    {
        ArgumentNullException.ThrowIfNull(label);
        ArgumentNullException.ThrowIfNull(files);
        var labelBytes = EncodeLabel(label);
        var when = timestamp ?? new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var (dosDate, dosTime) = DosDateTime(when);

        // Directory entries: the label, then per file its long-name entries and its short entry.
        var shortNames = new List<byte[]>();
        var entriesNeeded = 1;
        foreach (var file in files)
        {
            ArgumentNullException.ThrowIfNull(file);
            ValidateLongName(file.Name);
            if (files.Count(f => string.Equals(f.Name, file.Name, StringComparison.OrdinalIgnoreCase)) > 1)
            {
                throw new ArgumentException($"file name '{file.Name}' appears twice (FAT names are case-insensitive)", nameof(files));
            }
            var shortName = ShortName(file.Name, shortNames);
            shortNames.Add(shortName);
            entriesNeeded += 1 + (NeedsLongName(file.Name, shortName) ? LongEntryCount(file.Name) : 0);
        }
        if (entriesNeeded > RootEntryCount)
        {
            throw new ArgumentException($"the files need {entriesNeeded} root directory entries; FAT12 here has {RootEntryCount}", nameof(files));
        }

        // Geometry: the smallest cluster that keeps the cluster count FAT12.
        var sectorsPerCluster = 1;
        long clustersNeeded;
        while (true)
        {
            var clusterBytes = sectorsPerCluster * BytesPerSector;
            clustersNeeded = files.Sum(f => ((long)f.Contents.Length + clusterBytes - 1) / clusterBytes);
            if (clustersNeeded <= MaxClusters)
            {
                break;
            }
            if (sectorsPerCluster == 64)
            {
                throw new ArgumentException($"the files ({files.Sum(f => (long)f.Contents.Length)} bytes) do not fit a FAT12 volume", nameof(files));
            }
            sectorsPerCluster *= 2;
        }
        var clusters = (int)Math.Max(clustersNeeded, MinClusters);
        var fatBytes = (clusters + 2) * 3 / 2 + ((clusters + 2) % 2);
        var fatSectors = (fatBytes + BytesPerSector - 1) / BytesPerSector;
        const int rootSectors = RootEntryCount * DirectoryEntrySize / BytesPerSector;
        var firstDataSector = ReservedSectors + FatCount * fatSectors + rootSectors;
        var totalSectors = firstDataSector + clusters * sectorsPerCluster;
        var image = new byte[(long)totalSectors * BytesPerSector];

        // Boot sector and BPB.
        var bs = image.AsSpan(0, BytesPerSector);
        bs[0] = 0xEB; bs[1] = 0x3C; bs[2] = 0x90; // jmp short BootCode; nop
        Encoding.ASCII.GetBytes("PROPOLIS", bs[BootSector.OemName..]);
        BinaryPrimitives.WriteUInt16LittleEndian(bs[BootSector.BytsPerSec..], BytesPerSector);
        bs[BootSector.SecPerClus] = (byte)sectorsPerCluster;
        BinaryPrimitives.WriteUInt16LittleEndian(bs[BootSector.RsvdSecCnt..], ReservedSectors);
        bs[BootSector.NumFats] = FatCount;
        BinaryPrimitives.WriteUInt16LittleEndian(bs[BootSector.RootEntCnt..], RootEntryCount);
        if (totalSectors < 0x10000)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bs[BootSector.TotSec16..], (ushort)totalSectors);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bs[BootSector.TotSec32..], (uint)totalSectors);
        }
        bs[BootSector.MediaByte] = Media;
        BinaryPrimitives.WriteUInt16LittleEndian(bs[BootSector.FatSz16..], (ushort)fatSectors);
        BinaryPrimitives.WriteUInt16LittleEndian(bs[BootSector.SecPerTrk..], 32);
        BinaryPrimitives.WriteUInt16LittleEndian(bs[BootSector.NumHeads..], 64);
        bs[BootSector.DrvNum] = 0x80;
        bs[BootSector.BootSig] = 0x29;
        BinaryPrimitives.WriteUInt32LittleEndian(bs[BootSector.VolId..], volumeId ?? DefaultVolumeId(label, files));
        labelBytes.CopyTo(bs[BootSector.VolLab..]);
        Encoding.ASCII.GetBytes("FAT12   ", bs[BootSector.FilSysType..]);
        bs[BootSector.BootCode] = 0xCD; bs[BootSector.BootCode + 1] = 0x18; // int 18h: not bootable, try the next device
        bs[BootSector.Signature] = 0x55; bs[BootSector.Signature + 1] = 0xAA;

        // FAT: entries 0 and 1 reserved (§4), then each file's contiguous chain.
        var fat = image.AsSpan(ReservedSectors * BytesPerSector, fatSectors * BytesPerSector);
        SetFatEntry(fat, 0, 0xF00u | Media);
        SetFatEntry(fat, 1, 0xFFF);

        var root = image.AsSpan((ReservedSectors + FatCount * fatSectors) * BytesPerSector, rootSectors * BytesPerSector);
        var entry = 0;
        var label11 = root.Slice(entry++ * DirectoryEntrySize, DirectoryEntrySize);
        labelBytes.CopyTo(label11);
        label11[DirEntry.Attr] = AttrVolumeId;
        BinaryPrimitives.WriteUInt16LittleEndian(label11[DirEntry.WrtTime..], dosTime);
        BinaryPrimitives.WriteUInt16LittleEndian(label11[DirEntry.WrtDate..], dosDate);

        var nextCluster = 2;
        var clusterBytesFinal = sectorsPerCluster * BytesPerSector;
        for (var f = 0; f < files.Count; f++)
        {
            var file = files[f];
            var shortName = shortNames[f];
            if (NeedsLongName(file.Name, shortName))
            {
                var checksum = LfnChecksum(shortName);
                var count = LongEntryCount(file.Name);
                for (var n = count; n >= 1; n--)
                {
                    WriteLongEntry(root.Slice(entry++ * DirectoryEntrySize, DirectoryEntrySize), file.Name, n, n == count, checksum);
                }
            }
            var fileClusters = (file.Contents.Length + clusterBytesFinal - 1) / clusterBytesFinal;
            var first = fileClusters == 0 ? 0 : nextCluster;
            var e = root.Slice(entry++ * DirectoryEntrySize, DirectoryEntrySize);
            shortName.CopyTo(e);
            e[DirEntry.Attr] = AttrArchive;
            BinaryPrimitives.WriteUInt16LittleEndian(e[DirEntry.CrtTime..], dosTime);
            BinaryPrimitives.WriteUInt16LittleEndian(e[DirEntry.CrtDate..], dosDate);
            BinaryPrimitives.WriteUInt16LittleEndian(e[DirEntry.LstAccDate..], dosDate);
            BinaryPrimitives.WriteUInt16LittleEndian(e[DirEntry.WrtTime..], dosTime);
            BinaryPrimitives.WriteUInt16LittleEndian(e[DirEntry.WrtDate..], dosDate);
            BinaryPrimitives.WriteUInt16LittleEndian(e[DirEntry.FstClusLo..], (ushort)first);
            BinaryPrimitives.WriteUInt32LittleEndian(e[DirEntry.FileSize..], (uint)file.Contents.Length);
            for (var c = 0; c < fileClusters; c++)
            {
                var cluster = nextCluster + c;
                SetFatEntry(fat, cluster, c == fileClusters - 1 ? 0xFFFu : (uint)cluster + 1);
            }
            if (fileClusters > 0)
            {
                var dataOffset = ((long)firstDataSector + (long)(nextCluster - 2) * sectorsPerCluster) * BytesPerSector;
                file.Contents.CopyTo(image.AsSpan((int)dataOffset));
            }
            nextCluster += fileClusters;
        }

        // The second FAT is a copy of the first.
        fat.CopyTo(image.AsSpan((ReservedSectors + fatSectors) * BytesPerSector, fatSectors * BytesPerSector));
        return image;
    }

    /// <summary>The checksum of an 11-byte short name that each of its long-name entries carries (§7).</summary>
    public static byte LfnChecksum(ReadOnlySpan<byte> shortName)
    {
        if (shortName.Length != 11)
        {
            throw new ArgumentException("a short name is 11 bytes", nameof(shortName));
        }
        byte sum = 0;
        foreach (var b in shortName)
        {
            sum = (byte)((((sum & 1) != 0) ? 0x80 : 0) + (sum >> 1) + b);
        }
        return sum;
    }

    /// <summary>Writes a 12-bit FAT entry: entry n occupies bytes n*3/2 and n*3/2+1 (§4, "FAT12").</summary>
    public static void SetFatEntry(Span<byte> fat, int cluster, uint value)
    {
        var offset = cluster + cluster / 2;
        if ((cluster & 1) == 0)
        {
            fat[offset] = (byte)value;
            fat[offset + 1] = (byte)((fat[offset + 1] & 0xF0u) | ((value >> 8) & 0x0Fu));
        }
        else
        {
            fat[offset] = (byte)((fat[offset] & 0x0Fu) | ((value & 0x0Fu) << 4));
            fat[offset + 1] = (byte)(value >> 4);
        }
    }

    public static uint GetFatEntry(ReadOnlySpan<byte> fat, int cluster)
    {
        var offset = cluster + cluster / 2;
        var pair = BinaryPrimitives.ReadUInt16LittleEndian(fat[offset..]);
        return (cluster & 1) == 0 ? (uint)(pair & 0xFFF) : (uint)(pair >> 4);
    }

    private static void WriteLongEntry(Span<byte> e, string name, int ordinal, bool last, byte checksum)
    {
        e[LongNameEntry.Ord] = (byte)(ordinal | (last ? LongNameEntry.LastLongEntry : 0));
        e[LongNameEntry.Attr] = AttrLongName;
        e[LongNameEntry.Type] = 0;
        e[LongNameEntry.Chksum] = checksum;
        // Characters ordinal*13-13 .. ordinal*13-1; after the name one 0x0000, then 0xFFFF padding.
        var start = (ordinal - 1) * LongNameEntry.CharsPerEntry;
        for (var i = 0; i < LongNameEntry.CharsPerEntry; i++)
        {
            var at = start + i;
            var unit = at < name.Length ? name[at] : at == name.Length ? '\0' : '\uFFFF';
            var offset = i < 5 ? LongNameEntry.Name1 + 2 * i : i < 11 ? LongNameEntry.Name2 + 2 * (i - 5) : LongNameEntry.Name3 + 2 * (i - 11);
            BinaryPrimitives.WriteUInt16LittleEndian(e[offset..], unit);
        }
    }

    private static int LongEntryCount(string name) => (name.Length + LongNameEntry.CharsPerEntry - 1) / LongNameEntry.CharsPerEntry;

    /// <summary>A name needs long entries unless it is exactly its short name (upper-case 8.3).</summary>
    private static bool NeedsLongName(string name, byte[] shortName) => !string.Equals(FormatShortName(shortName), name, StringComparison.Ordinal);

    private static string FormatShortName(byte[] shortName)
    {
        var basis = Encoding.ASCII.GetString(shortName, 0, 8).TrimEnd(' ');
        var ext = Encoding.ASCII.GetString(shortName, 8, 3).TrimEnd(' ');
        return ext.Length == 0 ? basis : basis + "." + ext;
    }

    private const string ShortNameSpecials = "$%'-_@~`!(){}^#&";

    private static bool IsShortNameChar(char c) => c is >= 'A' and <= 'Z' or >= '0' and <= '9' || ShortNameSpecials.Contains(c);

    /// <summary>The short name Windows would generate (§7 "The Basis-Name Generation Algorithm",
    /// numeric tails ~1..~9), unique among <paramref name="taken"/>.</summary>
    private static byte[] ShortName(string longName, List<byte[]> taken)
    {
        var upper = longName.ToUpperInvariant();
        var dot = upper.LastIndexOf('.');
        var basisSource = (dot > 0 ? upper[..dot] : upper).Replace(" ", "", StringComparison.Ordinal).TrimStart('.');
        var extSource = dot > 0 ? upper[(dot + 1)..].Replace(" ", "", StringComparison.Ordinal) : "";
        var lossy = false;
        string Clean(string s)
        {
            var sb = new StringBuilder();
            foreach (var c in s)
            {
                if (c == '.')
                {
                    lossy = true;
                    continue;
                }
                if (IsShortNameChar(c))
                {
                    sb.Append(c);
                }
                else
                {
                    sb.Append('_');
                    lossy = true;
                }
            }
            return sb.ToString();
        }
        var basis = Clean(basisSource);
        var ext = Clean(extSource);
        if (basis.Length == 0)
        {
            basis = "_";
            lossy = true;
        }
        if (basis.Length > 8 || ext.Length > 3 || upper != longName)
        {
            lossy = true;
        }
        if (ext.Length > 3)
        {
            ext = ext[..3];
        }
        if (!lossy && basis.Length <= 8)
        {
            var exact = Pack(basis, ext);
            if (!taken.Any(t => t.AsSpan().SequenceEqual(exact)))
            {
                return exact;
            }
        }
        for (var n = 1; n <= 9; n++)
        {
            var tail = "~" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var candidate = Pack(basis[..Math.Min(basis.Length, 8 - tail.Length)] + tail, ext);
            if (!taken.Any(t => t.AsSpan().SequenceEqual(candidate)))
            {
                return candidate;
            }
        }
        throw new ArgumentException($"too many files whose short names start like '{longName}'");
    }

    private static byte[] Pack(string basis, string ext)
    {
        var bytes = new byte[11];
        bytes.AsSpan().Fill((byte)' ');
        Encoding.ASCII.GetBytes(basis, bytes);
        Encoding.ASCII.GetBytes(ext, bytes.AsSpan(8));
        return bytes;
    }

    private static void ValidateLongName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is 0 or > 255 || name is "." or ".." || name.EndsWith(' ') || name.EndsWith('.'))
        {
            throw new ArgumentException($"'{name}' is not a valid FAT long file name (1..255 characters, not ending in a space or dot)");
        }
        foreach (var c in name)
        {
            if (c < 0x20 || "\"*/:<>?\\|".Contains(c))
            {
                throw new ArgumentException($"'{name}' contains a character FAT file names cannot hold (control characters and \"*/:<>?\\|)");
            }
        }
    }

    private static byte[] EncodeLabel(string label)
    {
        if (label.Length is 0 or > 11)
        {
            throw new ArgumentException($"volume label '{label}' must be 1 to 11 characters", nameof(label));
        }
        foreach (var c in label)
        {
            if (!(IsShortNameChar(char.ToUpperInvariant(c)) || c == ' '))
            {
                throw new ArgumentException($"volume label '{label}' may hold only letters, digits, spaces and {ShortNameSpecials}", nameof(label));
            }
        }
        var bytes = new byte[11];
        bytes.AsSpan().Fill((byte)' ');
        Encoding.ASCII.GetBytes(label, bytes);
        return bytes;
    }

    private static (ushort Date, ushort Time) DosDateTime(DateTime t)
    {
        if (t.Year is < 1980 or > 2107)
        {
            throw new ArgumentOutOfRangeException(nameof(t), t, "FAT timestamps cover 1980 to 2107");
        }
        var date = (ushort)(((t.Year - 1980) << 9) | (t.Month << 5) | t.Day);
        var time = (ushort)((t.Hour << 11) | (t.Minute << 5) | (t.Second / 2));
        return (date, time);
    }

    /// <summary>FNV-1a over the label and every file's name and contents.</summary>
    private static uint DefaultVolumeId(string label, IReadOnlyList<Fat12File> files)
    {
        var hash = 2166136261u;
        void Mix(ReadOnlySpan<byte> bytes)
        {
            foreach (var b in bytes)
            {
                hash = (hash ^ b) * 16777619u;
            }
        }
        Mix(Encoding.UTF8.GetBytes(label));
        foreach (var f in files)
        {
            Mix(Encoding.UTF8.GetBytes(f.Name));
            Mix(f.Contents);
        }
        return hash;
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Block = Propolis.Crucible.Regions.Block;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Regions;

/// <summary>
/// The child half of the crash test: opens a region (running recovery), then writes and flushes at
/// random until it is killed. Before each write it appends <c>W block version</c> per block to the log
/// (<c>U</c> for a write-unwritten)
/// (a plain write(2): it survives SIGKILL, which does not lose the page cache); after each flush it
/// appends <c>F flush_number</c> and fsyncs the log. Block contents are <see cref="Pattern"/>, so the
/// parent can tell from the bytes alone which version a block holds.
/// </summary>
public static class CrashWriter
{
    public const string Verb = "crash-writer";

    public const ulong GenNumber = 1;

    /// <summary>The contents of <paramref name="block"/> at <paramref name="version"/> (0: never written).</summary>
    public static void Pattern(ulong block, ulong version, Span<byte> data)
    {
        if (version == 0)
        {
            data.Clear();
            return;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(data, block);
        BinaryPrimitives.WriteUInt64LittleEndian(data[8..], version);
        ulong x = (block * 0x9E3779B97F4A7C15UL) ^ version ^ 0xD1B54A32D192ED03UL;
        for (int i = 16; i < data.Length; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data[i] = (byte)x;
        }
    }

    /// <summary>The version a block's bytes hold, or null if they are no version's pattern.</summary>
    public static ulong? VersionOf(ulong block, ReadOnlySpan<byte> data)
    {
        if (!data.ContainsAnyExcept((byte)0))
        {
            return 0;
        }
        ulong version = BinaryPrimitives.ReadUInt64LittleEndian(data[8..]);
        Span<byte> expected = stackalloc byte[data.Length];
        Pattern(block, version, expected);
        return version != 0 && expected.SequenceEqual(data) ? version : null;
    }

    /// <summary>The context a write of this version carries; odd versions are "encrypted".</summary>
    public static BlockContext ContextFor(ulong version, ReadOnlySpan<byte> data)
    {
        if (version % 2 == 0)
        {
            return BlockContext.ForPlainBlock(data);
        }
        Span<byte> nonce = stackalloc byte[EncryptionContext.NonceSize];
        Span<byte> tag = stackalloc byte[EncryptionContext.TagSize];
        BinaryPrimitives.WriteUInt64LittleEndian(nonce, version);
        BinaryPrimitives.WriteUInt64LittleEndian(tag, ~version);
        var ec = new EncryptionContext(nonce, tag);
        return new BlockContext(IntegrityHash.Compute(ec, data), ec);
    }

    public static int Run(string[] args)
    {
        string dir = args[0];
        string logPath = args[1];
        var rng = new Random(int.Parse(args[2], CultureInfo.InvariantCulture));
        ulong version = ulong.Parse(args[3], CultureInfo.InvariantCulture);
        // The last flush number used, as an upstairs would remember it: a flush that found every
        // extent clean persists nothing, so the extents alone can lag behind it.
        ulong lastFlushUsed = ulong.Parse(args[4], CultureInfo.InvariantCulture);

        using var region = Region.Open(dir, readOnly: false);
        ulong flush = Math.Max(lastFlushUsed, region.MetaInfo().Max(m => m.FlushNumber));
        uint blockSize = (uint)region.Definition.BlockSize;
        ulong extentSize = region.Definition.ExtentSize.Value;
        ulong totalBlocks = extentSize * region.ExtentCount;

        using var log = new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        Console.Out.WriteLine("ready");
        Console.Out.Flush();

        var data = new byte[8 * blockSize];
        var contexts = new BlockContext[8];
        var line = new StringBuilder();
        for (long op = 0; ; op++)
        {
            // A write of 1..8 blocks inside one extent, sometimes write-unwritten.
            ulong start = (ulong)rng.NextInt64((long)totalBlocks);
            uint eid = (uint)(start / extentSize);
            ulong offset = start % extentSize;
            int count = (int)Math.Min((ulong)rng.Next(1, 9), extentSize - offset);
            bool onlyUnwritten = rng.Next(10) == 0;
            line.Clear();
            for (int i = 0; i < count; i++)
            {
                ulong v = ++version;
                Span<byte> block = data.AsSpan(i * (int)blockSize, (int)blockSize);
                Pattern(start + (ulong)i, v, block);
                contexts[i] = ContextFor(v, block);
                line.Append(CultureInfo.InvariantCulture, $"{(onlyUnwritten ? 'U' : 'W')} {start + (ulong)i} {v}\n");
            }
            log.Write(Encoding.ASCII.GetBytes(line.ToString()));
            log.Flush(flushToDisk: false);
            region.Write(eid, offset, data.AsMemory(0, count * (int)blockSize), contexts.AsMemory(0, count), onlyUnwritten);

            if (rng.Next(6) == 0)
            {
                region.Flush(++flush, GenNumber);
                log.Write(Encoding.ASCII.GetBytes($"F {flush}\n"));
                log.Flush(flushToDisk: true);
            }
        }
    }
}

using System.Security.Cryptography;
using System.Text;

using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Regions;

/// <summary>
/// What <c>crucible-downstairs dump</c> prints (crucible downstairs/src/dump.rs, in our own format),
/// comparing one or more regions of the same shape. Each method appends its report to a
/// <see cref="StringBuilder"/> and returns whether the regions differ.
/// <list type="bullet">
/// <item><see cref="DumpRegions"/>: one row per extent with each region's generation, flush number and
/// dirty flag.</item>
/// <item><see cref="DumpExtent"/>: one row per block of an extent: a letter per region for the data
/// (<c>D</c>) and the block context (<c>C</c>), where equal values share a letter and <c>-</c> is a
/// block never written, then each region's active context slot (<c>S</c>).</item>
/// <item><see cref="DumpBlock"/>: one block in detail: SHA-256 of the data, the active slot's context,
/// and whether the data on disk matches it.</item>
/// </list>
/// </summary>
public static class RegionDump
{
    public static void CheckComparable(IReadOnlyList<Region> regions)
    {
        RegionDefinition first = regions[0].Definition;
        for (int i = 1; i < regions.Count; i++)
        {
            RegionDefinition d = regions[i].Definition;
            if (d.BlockSize != first.BlockSize || d.ExtentSize != first.ExtentSize || d.ExtentCount != first.ExtentCount)
            {
                throw new RegionException(RegionError.RegionIncompatible, $"{regions[i].Directory} ({d.BlockSize}-byte blocks, {d.ExtentSize.Value} per extent, "
                    + $"{d.ExtentCount} extents) cannot be compared with {regions[0].Directory} ({first.BlockSize}, "
                    + $"{first.ExtentSize.Value}, {first.ExtentCount})");
            }
        }
    }

    /// <summary>Per extent: GEN, FL and D columns for each region. Returns whether any differ.</summary>
    public static bool DumpRegions(IReadOnlyList<Region> regions, bool onlyShowDifferences, StringBuilder o)
    {
        int n = regions.Count;
        RegionDefinition def = regions[0].Definition;
        ulong perExtent = def.ExtentSize.Value;
        ExtentMeta[][] metas = regions.Select(r => r.MetaInfo()).ToArray();
        ulong maxGen = metas.SelectMany(m => m).Select(m => m.GenNumber).DefaultIfEmpty().Max();
        ulong maxFlush = metas.SelectMany(m => m).Select(m => m.FlushNumber).DefaultIfEmpty().Max();
        int extW = Math.Max(3, def.ExtentCount.ToString().Length);
        int blockW = Math.Max(3, (perExtent * def.ExtentCount).ToString().Length);
        int genW = Math.Max(4, maxGen.ToString().Length + 1);
        int flW = Math.Max(3, maxFlush.ToString().Length + 1);

        o.Append("EXT".PadLeft(extW)).Append(' ').Append("BLOCKS".PadLeft(2 * blockW + 1));
        for (int i = 0; i < n; i++)
        {
            o.Append(' ').Append(("GEN" + i).PadLeft(genW));
        }
        o.Append(' ');
        for (int i = 0; i < n; i++)
        {
            o.Append(' ').Append(("FL" + i).PadLeft(flW));
        }
        o.Append(' ');
        for (int i = 0; i < n; i++)
        {
            o.Append(' ').Append(("D" + i).PadLeft(2));
        }
        o.Append('\n');

        bool anyDifferent = false;
        for (uint eid = 0; eid < def.ExtentCount; eid++)
        {
            ExtentMeta first = metas[0][eid];
            bool different = metas.Any(m => m[eid].GenNumber != first.GenNumber || m[eid].FlushNumber != first.FlushNumber
                || m[eid].Dirty != first.Dirty);
            anyDifferent |= different;
            if (onlyShowDifferences && !different)
            {
                continue;
            }
            o.Append(eid.ToString().PadLeft(extW)).Append(' ')
                .Append((perExtent * eid).ToString().PadLeft(blockW, '0')).Append('-')
                .Append((perExtent * eid + perExtent - 1).ToString().PadLeft(blockW, '0'));
            for (int i = 0; i < n; i++)
            {
                o.Append(' ').Append(metas[i][eid].GenNumber.ToString().PadLeft(genW));
            }
            o.Append(' ');
            for (int i = 0; i < n; i++)
            {
                o.Append(' ').Append(metas[i][eid].FlushNumber.ToString().PadLeft(flW));
            }
            o.Append(' ');
            for (int i = 0; i < n; i++)
            {
                o.Append(' ').Append((metas[i][eid].Dirty ? "T" : "F").PadLeft(2));
            }
            if (different)
            {
                o.Append(" <---");
            }
            o.Append('\n');
        }
        o.Append($"Max gen: {maxGen},  Max flush: {maxFlush}\n");
        return anyDifferent;
    }

    /// <summary>Per block of one extent: data and context letters for each region.</summary>
    public static bool DumpExtent(IReadOnlyList<Region> regions, uint eid, bool onlyShowDifferences, StringBuilder o)
    {
        RegionDefinition def = regions[0].Definition;
        if (eid >= def.ExtentCount)
        {
            throw new RegionException(RegionError.InvalidExtent, $"Requested extent {eid} is a higher index than valid ({def.ExtentCount})");
        }
        int n = regions.Count;
        ulong perExtent = def.ExtentSize.Value;
        int bs = (int)def.BlockSize;
        ExtentMeta[] metas = regions.Select(r => r.GetExtent(eid).MetaInfo).ToArray();

        o.Append($"Extent {eid}\n");
        o.Append("GEN      ").AppendJoin("", metas.Select(m => m.GenNumber.ToString().PadLeft(9))).Append('\n');
        o.Append("FLUSH_ID ").AppendJoin("", metas.Select(m => m.FlushNumber.ToString().PadLeft(9))).Append('\n');
        o.Append("DIRTY    ").AppendJoin("", metas.Select(m => (m.Dirty ? "D" : "-").PadLeft(9))).Append('\n');
        bool anyDifferent = metas.Any(m => m != metas[0]);
        o.Append('\n');

        int blockW = Math.Max(5, (perExtent * eid + perExtent - 1).ToString().Length);
        o.Append("BLOCK".PadLeft(blockW));
        for (int i = 0; i < n; i++)
        {
            o.Append(' ').Append(("D" + i).PadLeft(3));
        }
        o.Append(' ');
        for (int i = 0; i < n; i++)
        {
            o.Append(' ').Append(("C" + i).PadLeft(3));
        }
        o.Append(' ');
        for (int i = 0; i < n; i++)
        {
            o.Append(' ').Append(("S" + i).PadLeft(3));
        }
        o.Append('\n');

        var data = new byte[n][];
        var ctx = new BlockContext?[n];
        var one = new BlockContext?[1];
        for (ulong blk = 0; blk < perExtent; blk++)
        {
            for (int i = 0; i < n; i++)
            {
                data[i] = new byte[bs];
                regions[i].Read(eid, blk, data[i], one);
                ctx[i] = one[0];
            }
            char[] dataLetters = Letters(n, i => data[i], (x, y) => x.AsSpan().SequenceEqual(y), i => ctx[i] is null && !data[i].AsSpan().ContainsAnyExcept((byte)0));
            char[] ctxLetters = Letters(n, i => ctx[i], (x, y) => x == y, i => ctx[i] is null);
            bool different = dataLetters.Distinct().Count() > 1 || ctxLetters.Distinct().Count() > 1;
            anyDifferent |= different;
            if (onlyShowDifferences && !different)
            {
                continue;
            }
            o.Append((perExtent * eid + blk).ToString().PadLeft(blockW, '0'));
            foreach (char c in dataLetters)
            {
                o.Append(' ').Append(c.ToString().PadLeft(3));
            }
            o.Append(' ');
            foreach (char c in ctxLetters)
            {
                o.Append(' ').Append(c.ToString().PadLeft(3));
            }
            o.Append(' ');
            for (int i = 0; i < n; i++)
            {
                o.Append(' ').Append(regions[i].GetExtent(eid).ActiveSlot(blk).ToString().PadLeft(3));
            }
            if (different)
            {
                o.Append(" <---");
            }
            o.Append('\n');
        }
        return anyDifferent;
    }

    /// <summary>Everything about one block in each region.</summary>
    public static bool DumpBlock(IReadOnlyList<Region> regions, ulong block, bool onlyShowDifferences, StringBuilder o)
    {
        RegionDefinition def = regions[0].Definition;
        ulong perExtent = def.ExtentSize.Value;
        ulong max = perExtent * def.ExtentCount;
        if (block >= max)
        {
            throw new RegionException(RegionError.OffsetInvalid, $"Requested block {block} > max block {max - 1}");
        }
        uint eid = (uint)(block / perExtent);
        ulong inExtent = block % perExtent;
        int n = regions.Count;
        var data = new byte[n][];
        var ctx = new OnDiskBlockContext?[n];
        var one = new BlockContext?[1];
        var onDisk = new OnDiskBlockContext?[1];
        for (int i = 0; i < n; i++)
        {
            data[i] = new byte[def.BlockSize];
            regions[i].Read(eid, inExtent, data[i], one);
            regions[i].GetExtent(eid).ReadActiveContexts(inExtent, onDisk);
            ctx[i] = onDisk[0];
        }
        char[] dataLetters = Letters(n, i => data[i], (x, y) => x.AsSpan().SequenceEqual(y), _ => false);
        char[] ctxLetters = Letters(n, i => ctx[i]?.BlockContext, (x, y) => x == y, i => ctx[i] is null);
        bool dataDifferent = dataLetters.Distinct().Count() > 1;
        bool ctxDifferent = ctxLetters.Distinct().Count() > 1;
        // Whether the data on disk is what the context says was written (all zeros for no context).
        bool[] matches = Enumerable.Range(0, n).Select(i => ctx[i] is { } c
            ? c.OnDiskHash == IntegrityHash.Compute(data[i])
            : !data[i].AsSpan().ContainsAnyExcept((byte)0)).ToArray();
        bool corrupt = matches.Contains(false);

        o.Append($"Extent {eid} Block in extent {inExtent}  Actual block {block}\n\n");
        if (!onlyShowDifferences || dataDifferent)
        {
            o.Append("DIR  SHA256(DATA)                                                      VER\n");
            for (int i = 0; i < n; i++)
            {
                o.Append(i.ToString().PadLeft(3)).Append("  ")
                    .Append(Convert.ToHexStringLower(SHA256.HashData(data[i]))).Append("  ")
                    .Append(dataLetters[i]).Append('\n');
            }
            o.Append('\n');
        }
        if (!onlyShowDifferences || ctxDifferent || corrupt)
        {
            o.Append("DIR  SLOT  CONTEXT    HASH              ON_DISK_HASH      FLUSH_ID  NONCE                     TAG                               VER  DATA\n");
            for (int i = 0; i < n; i++)
            {
                o.Append(i.ToString().PadLeft(3)).Append("  ")
                    .Append(regions[i].GetExtent(eid).ActiveSlot(inExtent).ToString().PadRight(4)).Append("  ");
                if (ctx[i] is { } c)
                {
                    EncryptionContext? ec = c.BlockContext.EncryptionContext;
                    o.Append((ec is null ? "plain" : "encrypted").PadRight(9)).Append("  ")
                        .Append(c.BlockContext.Hash.ToString("x16")).Append("  ")
                        .Append(c.OnDiskHash.ToString("x16")).Append("  ")
                        .Append(c.FlushId.ToString().PadLeft(8)).Append("  ")
                        .Append((ec is { } e1 ? Convert.ToHexStringLower(e1.NonceBytes()) : "-").PadRight(24)).Append("  ")
                        .Append((ec is { } e2 ? Convert.ToHexStringLower(e2.TagBytes()) : "-").PadRight(32)).Append("  ");
                }
                else
                {
                    o.Append("empty".PadRight(9)).Append("  ").Append(new string(' ', 16 + 2 + 16 + 2 + 8 + 2 + 24 + 2 + 32 + 2));
                }
                o.Append(ctxLetters[i]).Append("    ").Append(matches[i] ? "ok" : "MISMATCH").Append('\n');
            }
            o.Append('\n');
        }
        return dataDifferent || ctxDifferent || corrupt;
    }

    /// <summary>
    /// A letter per region: equal values share a letter, first seen first (A, B, C, ...);
    /// <c>-</c> where <paramref name="isEmpty"/> says the block was never written.
    /// </summary>
    public static char[] Letters<T>(int n, Func<int, T> value, Func<T, T, bool> equal, Func<int, bool> isEmpty)
    {
        var letters = new char[n];
        var seen = new List<T>();
        for (int i = 0; i < n; i++)
        {
            if (isEmpty(i))
            {
                letters[i] = '-';
                continue;
            }
            T v = value(i);
            int index = seen.FindIndex(s => equal(s, v));
            if (index < 0)
            {
                seen.Add(v);
                index = seen.Count - 1;
            }
            letters[i] = (char)('A' + Math.Min(index, 25));
        }
        return letters;
    }
}

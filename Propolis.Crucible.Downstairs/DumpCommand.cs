using System.CommandLine;
using System.Security.Cryptography;
using System.Text;
using Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>
/// <c>crucible-downstairs dump</c> (crucible downstairs/src/dump.rs, in our own format): compares one or
/// more regions, which are opened read-only. Without options: one row per extent with each region's
/// generation, flush number and dirty flag. With <c>-e</c>: one row per block of that extent, a letter
/// per region for the data and for the block context (same letter, same value; <c>-</c> for a block never
/// written). With <c>-b</c>: everything about one block. Exits 1 when the regions differ.
/// </summary>
internal static class DumpCommand
{
    public static Command Build()
    {
        var data = new Option<string[]>("--data", "-d")
        {
            Description = "Directory containing a region (repeat to compare regions).",
            Required = true,
            HelpName = "DIRECTORY",
            AllowMultipleArgumentsPerToken = false,
        };
        var extent = new Option<uint?>("--extent", "-e") { Description = "Just dump this extent, block by block." };
        var block = new Option<ulong?>("--block", "-b") { Description = "Detailed view for this block (region block number)." };
        var onlyDiff = new Option<bool>("--only-show-differences", "-o") { Description = "Only show differences." };

        var command = new Command("dump", "Dump region metadata, comparing regions.") { data, extent, block, onlyDiff };
        command.SetAction(parse =>
        {
            string[] dirs = parse.GetValue(data)!;
            uint? e = parse.GetValue(extent);
            ulong? b = parse.GetValue(block);
            if (e is not null && b is not null)
            {
                throw new UsageException("Either a specific block, or a specific extent, not both");
            }
            var regions = new List<Region>();
            try
            {
                foreach (string dir in dirs)
                {
                    regions.Add(Region.Open(dir, readOnly: true));
                }
                CheckComparable(regions);
                var output = new StringBuilder();
                bool different = (e, b) switch
                {
                    ({ } eid, _) => DumpExtent(regions, eid, parse.GetValue(onlyDiff), output),
                    (_, { } blk) => DumpBlock(regions, blk, parse.GetValue(onlyDiff), output),
                    _ => DumpRegions(regions, parse.GetValue(onlyDiff), output),
                };
                Console.Out.Write(output.ToString());
                return different ? Program.ExitFailed : Program.ExitOk;
            }
            finally
            {
                foreach (Region r in regions)
                {
                    r.Dispose();
                }
            }
        });
        return command;
    }

    private static void CheckComparable(List<Region> regions)
    {
        RegionDefinition first = regions[0].Definition;
        for (int i = 1; i < regions.Count; i++)
        {
            RegionDefinition d = regions[i].Definition;
            if (d.BlockSize != first.BlockSize || d.ExtentSize != first.ExtentSize || d.ExtentCount != first.ExtentCount)
            {
                throw new UsageException($"{regions[i].Directory} ({d.BlockSize}-byte blocks, {d.ExtentSize.Value} per extent, "
                    + $"{d.ExtentCount} extents) cannot be compared with {regions[0].Directory} ({first.BlockSize}, "
                    + $"{first.ExtentSize.Value}, {first.ExtentCount})");
            }
        }
    }

    /// <summary>Per extent: GEN, FL and D columns for each region. Returns whether any differ.</summary>
    internal static bool DumpRegions(IReadOnlyList<Region> regions, bool onlyShowDifferences, StringBuilder o)
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
    internal static bool DumpExtent(IReadOnlyList<Region> regions, uint eid, bool onlyShowDifferences, StringBuilder o)
    {
        RegionDefinition def = regions[0].Definition;
        if (eid >= def.ExtentCount)
        {
            throw new UsageException($"Requested extent {eid} is a higher index than valid ({def.ExtentCount})");
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
    internal static bool DumpBlock(IReadOnlyList<Region> regions, ulong block, bool onlyShowDifferences, StringBuilder o)
    {
        RegionDefinition def = regions[0].Definition;
        ulong perExtent = def.ExtentSize.Value;
        ulong max = perExtent * def.ExtentCount;
        if (block >= max)
        {
            throw new UsageException($"Requested block {block} > max block {max - 1}");
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
        if (!onlyShowDifferences || ctxDifferent)
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
                        .Append((ec is { } e1 ? Convert.ToHexStringLower(e1.Nonce()) : "-").PadRight(24)).Append("  ")
                        .Append((ec is { } e2 ? Convert.ToHexStringLower(e2.Tag()) : "-").PadRight(32)).Append("  ");
                }
                else
                {
                    o.Append("empty".PadRight(9)).Append("  ").Append(new string(' ', 16 + 2 + 16 + 2 + 8 + 2 + 24 + 2 + 32 + 2));
                }
                // Whether the data on disk is what the context says was written.
                bool matches = ctx[i] is { } cc
                    ? cc.OnDiskHash == IntegrityHash.Compute(data[i])
                    : !data[i].AsSpan().ContainsAnyExcept((byte)0);
                o.Append(ctxLetters[i]).Append("    ").Append(matches ? "ok" : "MISMATCH").Append('\n');
            }
            o.Append('\n');
        }
        return dataDifferent || ctxDifferent;
    }

    /// <summary>
    /// A letter per region: equal values share a letter, first seen first (A, B, C, ...);
    /// <c>-</c> where <paramref name="isEmpty"/> says the block was never written.
    /// </summary>
    internal static char[] Letters<T>(int n, Func<int, T> value, Func<T, T, bool> equal, Func<int, bool> isEmpty)
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

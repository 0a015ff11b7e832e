using System.CommandLine;
using System.Text;
using Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>
/// <c>crucible-downstairs dump</c>: opens each region read-only and prints <see cref="RegionDump"/>'s
/// report: per extent by default, per block of one extent with <c>-e</c>, one block in detail with
/// <c>-b</c>. Exits 1 when the regions differ (or a block's data does not match its context).
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
                RegionDump.CheckComparable(regions);
                var output = new StringBuilder();
                bool different = (e, b) switch
                {
                    ({ } eid, _) => RegionDump.DumpExtent(regions, eid, parse.GetValue(onlyDiff), output),
                    (_, { } blk) => RegionDump.DumpBlock(regions, blk, parse.GetValue(onlyDiff), output),
                    _ => RegionDump.DumpRegions(regions, parse.GetValue(onlyDiff), output),
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
}

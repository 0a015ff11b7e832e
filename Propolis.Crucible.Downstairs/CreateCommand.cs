using System.CommandLine;
using Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary><c>crucible-downstairs create</c>: a new region, optionally filled from an image file.</summary>
internal static class CreateCommand
{
    public static Command Build()
    {
        var blockSize = new Option<ulong>("--block-size")
        {
            Description = "Block size in bytes (a power of two, at least 512).",
            DefaultValueFactory = _ => 512,
        };
        var data = new Option<string>("--data", "-d")
        {
            Description = "Directory where the region files will be located.",
            Required = true,
            HelpName = "DIRECTORY",
        };
        var extentSize = new Option<ulong>("--extent-size")
        {
            Description = "Number of blocks per extent file.",
            DefaultValueFactory = _ => 100,
        };
        var extentCount = new Option<uint>("--extent-count")
        {
            Description = "Number of extent files.",
            DefaultValueFactory = _ => 15,
        };
        var importPath = new Option<string?>("--import-path", "-i")
        {
            Description = "Import data for the region from this file (the region grows to fit it).",
            HelpName = "FILE",
        };
        var uuid = new Option<string>("--uuid", "-u")
        {
            Description = "UUID for the region.",
            Required = true,
            HelpName = "UUID",
        };
        var encrypted = new Option<bool>("--encrypted")
        {
            Description = "Will the region be encrypted.",
        };

        var command = new Command("create", "Create a new region.")
        {
            blockSize, data, extentSize, extentCount, importPath, uuid, encrypted,
        };
        command.SetAction(parse =>
        {
            string uuidText = parse.GetValue(uuid)!;
            if (!Guid.TryParse(uuidText, out Guid id))
            {
                throw new UsageException($"--uuid: '{uuidText}' is not a UUID");
            }
            RegionDefinition def = RegionDefinition.ForNewRegion(parse.GetValue(blockSize), parse.GetValue(extentSize),
                parse.GetValue(extentCount), id, parse.GetValue(encrypted));
            if (def.ValidateOptions() is { } problem)
            {
                throw new UsageException(problem);
            }
            string dir = parse.GetValue(data)!;
            using Region region = Region.Create(dir, def);

            if (parse.GetValue(importPath) is { } image)
            {
                long size = new FileInfo(image).Length;
                Console.WriteLine($"Importing {image} ({size} bytes) to region");
                ulong blocks = region.Import(image);
                // The imported data and the first flush number reach the disk.
                region.Flush(flushNumber: 1, genNumber: 0);
                Console.WriteLine($"Populated {region.ExtentCount} extents by copying {size} bytes ({blocks} blocks)");
            }
            Console.WriteLine($"UUID: {region.Definition.Uuid}");
            Console.WriteLine($"Blocks per extent:{region.Definition.ExtentSize.Value} Total Extents: {region.ExtentCount}");
            return Program.ExitOk;
        });
        return command;
    }
}

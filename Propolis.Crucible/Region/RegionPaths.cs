namespace Propolis.Crucible.Regions;

/// <summary>
/// Where a region keeps its files (crucible common/src/region.rs <c>config_path</c>, downstairs/src/extent.rs
/// <c>extent_dir</c>, <c>extent_file_name</c>, <c>extent_path</c>, <c>copy_dir</c>, <c>replace_dir</c>,
/// <c>completed_dir</c>). Extent <c>eid</c> lives at <c>DIR/XX/XXX/XXX</c> in upper-case hex: bits 24–31,
/// bits 12–23, then bits 0–11 as the file name, so that no directory holds more than 4096 files.
/// </summary>
public static class RegionPaths
{
    public const string ConfigFileName = "region.json";

    public static string ConfigPath(string dir) => Path.Combine(dir, ConfigFileName);

    /// <summary>The extent's data file name: the low 12 bits of its number, three hex digits.</summary>
    public static string ExtentFileName(uint eid) => (eid & 0xFFF).ToString("X3");

    public static string ExtentDir(string dir, uint eid) =>
        Path.Combine(dir, ((eid >> 24) & 0xFF).ToString("X2"), ((eid >> 12) & 0xFFF).ToString("X3"));

    public static string ExtentPath(string dir, uint eid) => Path.Combine(ExtentDir(dir, eid), ExtentFileName(eid));

    /// <summary>Where a repair downloads an extent's files before they replace the extent's own.</summary>
    public static string CopyDir(string dir, uint eid) => ExtentPath(dir, eid) + ".copy";

    /// <summary>A repair's downloaded files once complete, about to be moved over the extent.</summary>
    public static string ReplaceDir(string dir, uint eid) => ExtentPath(dir, eid) + ".replace";

    /// <summary>A repair's directory after its files were moved, about to be deleted.</summary>
    public static string CompletedDir(string dir, uint eid) => ExtentPath(dir, eid) + ".completed";
}

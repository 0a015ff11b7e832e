using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Propolis.Crucible.Regions;

/// <summary>The last half of an extent repair (crucible downstairs/src/extent.rs).</summary>
public static class ExtentReplacement
{
    /// <summary>
    /// <c>move_replacement_extent</c>: copies the files in <c>NNN.replace</c> over the extent's
    /// own (removing SQLite side files the replacement lacks), then retires the directory.
    /// Also run when an extent is opened with a <c>NNN.replace</c> directory left by an
    /// interrupted repair.
    /// </summary>
    public static void MoveReplacementExtent(string regionDir, uint eid, ILogger? log = null)
    {
        log ??= NullLogger.Instance;
        string destinationDir = RegionPaths.ExtentDir(regionDir, eid);
        string replace = RegionPaths.ReplaceDir(regionDir, eid);
        string completed = RegionPaths.CompletedDir(regionDir, eid);
        if (!Directory.Exists(replace))
        {
            throw new RegionException(RegionError.IoError, $"{replace} does not exist");
        }
        if (Directory.Exists(completed))
        {
            Directory.Delete(completed, recursive: true);
        }
        log.LogInformation("Copy files from {Replace} in {Destination}", replace, destinationDir);

        string data = RegionPaths.ExtentFileName(eid);
        CopyAndSync(Path.Combine(replace, data), Path.Combine(destinationDir, data));
        string originalDb = Path.Combine(destinationDir, data + ".db");
        string newDb = Path.Combine(replace, data + ".db");
        if (File.Exists(originalDb) || File.Exists(newDb))
        {
            CopyAndSync(newDb, originalDb);
            foreach (string suffix in new[] { ".db-shm", ".db-wal" })
            {
                string n = Path.Combine(replace, data + suffix);
                string o = Path.Combine(destinationDir, data + suffix);
                if (File.Exists(n))
                {
                    CopyAndSync(n, o);
                }
                else if (File.Exists(o))
                {
                    log.LogInformation("Remove old file {File} as there is no replacement", o);
                    File.Delete(o);
                }
            }
        }
        FileIo.SyncDirectory(destinationDir);

        log.LogInformation("Move directory {Replace} to {Completed}", replace, completed);
        Directory.Move(replace, completed);
        FileIo.SyncDirectory(destinationDir);
        Directory.Delete(completed, recursive: true);
        FileIo.SyncDirectory(destinationDir);
    }

    private static void CopyAndSync(string from, string to)
    {
        try
        {
            File.Copy(from, to, overwrite: true);
            using var f = new FileStream(to, FileMode.Open, FileAccess.ReadWrite);
            f.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegionException(RegionError.IoError, $"copy of {from} to {to} got: {e.Message}", e);
        }
    }
}

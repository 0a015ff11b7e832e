using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Http;
using Propolis.Crucible.Protocol;
using Regions = Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>A repair that failed, with the <see cref="CrucibleError"/> the upstairs is told.</summary>
public sealed class ExtentRepairException(CrucibleError error) : Exception(error.ToString())
{
    public CrucibleError Error { get; } = error;
}

/// <summary>
/// The files an extent may have, in the order the real <c>get_extent_copy</c> fetches them,
/// with the repair API's <c>FileType</c> name and the file name suffix (crucible
/// <c>ExtentType</c>: Data has none, then <c>.db</c>, <c>.db-shm</c>, <c>.db-wal</c>).
/// </summary>
public static class ExtentFileTypes
{
    public static readonly (string FileType, string Suffix)[] All =
    [
        ("data", ""),
        ("db", ".db"),
        ("db_shm", ".db-shm"),
        ("db_wal", ".db-wal"),
    ];

    public static string FileName(uint eid, string suffix) => Regions.RegionPaths.ExtentFileName(eid) + suffix;
}

/// <summary>
/// The client side of extent repair (crucible downstairs/src/region.rs <c>repair_extent</c>,
/// <c>get_extent_copy</c>; extent.rs <c>move_replacement_extent</c>): fetches a closed extent's
/// files from another downstairs' repair service into <c>NNN.copy</c>, checks the source still
/// has the extent closed, renames the directory to <c>NNN.replace</c>, copies the files over the
/// extent's own, then renames to <c>NNN.completed</c> and deletes it, syncing at every step so
/// that an interruption anywhere is finished or undone when the extent is next opened.
/// </summary>
public static class ExtentRepairClient
{
    /// <summary>
    /// Replaces closed extent <paramref name="eid"/> of the region in <paramref name="regionDir"/>
    /// with the copy served at <paramref name="source"/>. <paramref name="clone"/> accepts the
    /// wider set of files of a whole-region clone.
    /// </summary>
    public static void RepairExtent(string regionDir, uint eid, EndPoint source, bool clone, ILogger? log = null,
        TimeSpan? timeout = null)
    {
        log ??= NullLogger.Instance;
        GetExtentCopy(regionDir, eid, source, clone, log, timeout ?? TimeSpan.FromMinutes(5));
        Regions.ExtentReplacement.MoveReplacementExtent(regionDir, eid, log);
    }

    private static void GetExtentCopy(string regionDir, uint eid, EndPoint source, bool clone, ILogger log, TimeSpan timeout)
    {
        string replace = Regions.RegionPaths.ReplaceDir(regionDir, eid);
        if (Directory.Exists(replace))
        {
            throw Fail(CrucibleErrorKind.IoError, $"Replace directory: {replace} already exists");
        }
        string copy = Regions.RegionPaths.CopyDir(regionDir, eid);
        if (Directory.Exists(copy))
        {
            throw Fail(CrucibleErrorKind.IoError, $"Copy directory:{copy} already exists");
        }
        Directory.CreateDirectory(copy);
        log.LogInformation("Created copy dir {CopyDir}", copy);

        List<string> files;
        try
        {
            (int status, byte[] body) = Get(source, $"/extent/{eid}/files", timeout);
            if (status != 200)
            {
                throw Fail(CrucibleErrorKind.RepairRequestError, $"Failed to get repair files: status {status}: {Describe(body)}");
            }
            files = ParseStringArray(body);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or HttpMessageException or JsonException)
        {
            throw Fail(CrucibleErrorKind.RepairRequestError, $"Failed to get repair files: {e.Message}");
        }
        files.Sort(StringComparer.Ordinal);
        log.LogInformation("eid:{Eid} Found repair files: {Files}", eid, string.Join(", ", files));
        if (clone ? !ValidateCloneFiles(eid, files) : !ValidateRepairFiles(eid, files))
        {
            throw Fail(CrucibleErrorKind.RepairFilesInvalid,
                $"Invalid {(clone ? "clone" : "repair")} file list: [{string.Join(", ", files.Select(f => $"\"{f}\""))}]");
        }

        int count = 0;
        foreach ((string fileType, string suffix) in ExtentFileTypes.All)
        {
            string name = ExtentFileTypes.FileName(eid, suffix);
            if (!files.Contains(name))
            {
                continue;
            }
            string local = Path.Combine(copy, name);
            if (File.Exists(local))
            {
                throw Fail(CrucibleErrorKind.IoError, $"Copy file:{local} already exists");
            }
            using (var file = new FileStream(local, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None))
            {
                HttpClientResponse response;
                try
                {
                    response = Http1Client.SendAsync(source, "GET", $"/newextent/{eid}/{fileType}", file, timeout)
                        .GetAwaiter().GetResult();
                }
                catch (Exception e) when (e is System.Net.Sockets.SocketException or TimeoutException)
                {
                    throw Fail(CrucibleErrorKind.RepairRequestError, $"Failed to get extent {eid} {fileType} file: {e.Message}");
                }
                catch (Exception e) when (e is IOException or HttpMessageException)
                {
                    throw Fail(CrucibleErrorKind.RepairStreamError, $"repair {local}: stream error: {e.Message}");
                }
                if (response.Status != 200)
                {
                    throw Fail(CrucibleErrorKind.RepairRequestError, $"Failed to get extent {eid} {fileType} file: status {response.Status}");
                }
                try
                {
                    file.Flush(flushToDisk: true);
                }
                catch (IOException e)
                {
                    throw Fail(CrucibleErrorKind.IoError, $"repair {local}: fsync failure: {e.Message}");
                }
            }
            count++;
        }

        log.LogInformation("Verify extent {Eid} still ready for copy", eid);
        bool ready;
        try
        {
            (int status, byte[] body) = Get(source, $"/extent/{eid}/repair-ready", timeout);
            if (status != 200)
            {
                throw Fail(CrucibleErrorKind.RepairRequestError,
                    $"Failed to verify extent is still valid for repair: status {status}: {Describe(body)}");
            }
            ready = JsonSerializer.Deserialize(body, RepairJsonContext.Default.Boolean);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or HttpMessageException or JsonException)
        {
            throw Fail(CrucibleErrorKind.RepairRequestError, $"Failed to verify extent is still valid for repair {e.Message}");
        }
        if (!ready)
        {
            log.LogWarning("The repair of {Eid} is being aborted.", eid);
            throw Fail(CrucibleErrorKind.RepairRequestError, $"Extent {eid} on remote repair server is in incorrect state");
        }

        log.LogInformation("{Count} repair files downloaded, move directory {Copy} to {Replace}", count, copy, replace);
        Directory.Move(copy, replace);
        Regions.FileIo.SyncDirectory(Regions.RegionPaths.ExtentDir(regionDir, eid));
    }

    /// <summary><c>validate_repair_files</c>: a raw extent's only file is its data file.</summary>
    public static bool ValidateRepairFiles(uint eid, IReadOnlyList<string> files) =>
        files.Count == 1 && files[0] == ExtentFileTypes.FileName(eid, "");

    /// <summary><c>validate_clone_files</c>: data; data and db; or all four.</summary>
    public static bool ValidateCloneFiles(uint eid, IReadOnlyList<string> files)
    {
        string[] all = ExtentFileTypes.All.Select(t => ExtentFileTypes.FileName(eid, t.Suffix)).ToArray();
        return files.SequenceEqual(all.Take(1)) || files.SequenceEqual(all.Take(2)) || files.SequenceEqual(all);
    }

    private static (int, byte[]) Get(EndPoint source, string path, TimeSpan timeout) =>
        Http1Client.SendAsync(source, "GET", path, timeout).GetAwaiter().GetResult();

    private static List<string> ParseStringArray(byte[] body) =>
        JsonSerializer.Deserialize(body, RepairJsonContext.Default.ListString)
        ?? throw new JsonException("expected an array of file names, got null");

    private static string Describe(byte[] body) => System.Text.Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 512)));

    private static ExtentRepairException Fail(CrucibleErrorKind kind, string detail) => new(CrucibleError.WithDetail(kind, detail));
}

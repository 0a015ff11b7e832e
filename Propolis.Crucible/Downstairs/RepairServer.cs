using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Http;
using Regions = Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>
/// The downstairs repair service (crucible downstairs/src/repair.rs, API "Downstairs Repair"
/// 1.0.0), served on the downstairs port + <see cref="RepairPortOffset"/>. Another downstairs
/// fetches a closed extent's files from it to replace its own copy.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term>GET /extent/{eid}/files</term><description>the extent's file names (JSON array); 400 if the extent directory is missing or a symlink, or the data file is missing ("EBADF")</description></item>
/// <item><term>GET /newextent/{eid}/{file_type}</term><description>the bytes of one file; file_type is data, db, db_shm or db_wal</description></item>
/// <item><term>GET /extent/{eid}/repair-ready</term><description>true if the extent is closed or the region read-only</description></item>
/// <item><term>GET /region-info</term><description>the RegionDefinition</description></item>
/// <item><term>GET /region-mode</term><description>true if read-only</description></item>
/// <item><term>GET /work</term><description>logs the work queue; true</description></item>
/// </list>
/// </remarks>
public sealed class RepairServer
{
    /// <summary>crucible common <c>REPAIR_PORT_OFFSET</c>.</summary>
    public const int RepairPortOffset = 4000;

    private readonly Downstairs _downstairs;
    private readonly ILogger _log;

    public RepairServer(Downstairs downstairs, ILogger? logger = null)
    {
        _downstairs = downstairs;
        _log = logger ?? NullLogger.Instance;
    }

    public Task ServeAsync(Socket listener, CancellationToken cancellationToken)
    {
        _log.LogInformation("Repair listens on {Address} for path:{Dir}", listener.LocalEndPoint, _downstairs.RegionDirectory);
        return HttpServer.ServeAsync(listener, Handle, _log, cancellationToken);
    }

    /// <summary>Answers one request (public so that it can be driven without a socket).</summary>
    public HttpResponse Handle(HttpRequest request)
    {
        string[] seg = request.Path.Trim('/').Split('/');
        HttpResponse? r = seg switch
        {
            ["extent", var eid, "files"] => Route(request, () => WithEid(eid, GetFilesForExtent)),
            ["extent", var eid, "repair-ready"] => Route(request, () => WithEid(eid, ExtentRepairReady)),
            ["newextent", var eid, var fileType] => Route(request, () => WithEid(eid, e => GetExtentFile(e, fileType))),
            ["region-info"] => Route(request, () => HttpResponse.Json(Compact(_downstairs.RegionDefinition.ToJsonUtf8()))),
            ["region-mode"] => Route(request, () => Bool(_downstairs.ReadOnly)),
            ["work"] => Route(request, () =>
            {
                _downstairs.ShowWork();
                return Bool(true);
            }),
            _ => null,
        };
        return r ?? HttpResponse.Error(404, "Not Found");
    }

    private static HttpResponse Route(HttpRequest request, Func<HttpResponse> get) =>
        request.Method is "GET" or "HEAD" ? get() : HttpResponse.Error(405, "Method Not Allowed");

    private static HttpResponse WithEid(string text, Func<uint, HttpResponse> then) =>
        uint.TryParse(text, System.Globalization.NumberStyles.None, null, out uint eid)
            ? then(eid)
            : HttpResponse.Error(400, $"bad parameter in URL path: unable to parse '{text}' as an integer");

    private HttpResponse GetFilesForExtent(uint eid)
    {
        string dir = Regions.RegionPaths.ExtentDir(_downstairs.RegionDirectory, eid);
        var info = new DirectoryInfo(dir);
        if (!info.Exists && !File.Exists(dir))
        {
            return HttpResponse.Error(400, $"Failed to get \"{dir}\" metadata: No such file or directory");
        }
        if (info.LinkTarget is not null)
        {
            return HttpResponse.Error(400, $"File \"{dir}\" is a symlink");
        }
        if (!info.Exists)
        {
            return HttpResponse.Error(400, $"Expected \"{dir}\" to be a directory");
        }
        var files = new List<string>();
        bool required = true;
        foreach ((_, string suffix) in ExtentFileTypes.All)
        {
            string name = ExtentFileTypes.FileName(eid, suffix);
            if (File.Exists(Path.Combine(dir, name)))
            {
                files.Add(name);
            }
            else if (required)
            {
                return HttpResponse.Error(400, "EBADF");
            }
            required = false;
        }
        return HttpResponse.Json(JsonSerializer.SerializeToUtf8Bytes(files, RepairJsonContext.Default.ListString));
    }

    private HttpResponse GetExtentFile(uint eid, string fileType)
    {
        string? suffix = null;
        foreach ((string type, string s) in ExtentFileTypes.All)
        {
            if (type == fileType)
            {
                suffix = s;
            }
        }
        if (suffix is null)
        {
            return HttpResponse.Error(400,
                $"bad parameter in URL path: unknown variant `{fileType}`, expected one of `data`, `db`, `db_shm`, `db_wal`");
        }
        string path = Regions.RegionPaths.ExtentPath(_downstairs.RegionDirectory, eid) + suffix;
        var info = new FileInfo(path);
        if (!info.Exists && !Directory.Exists(path))
        {
            return HttpResponse.Error(400, $"Failed to get \"{path}\" metadata: No such file or directory");
        }
        if (info.LinkTarget is not null)
        {
            return HttpResponse.Error(400, "File is symlink");
        }
        if (!info.Exists)
        {
            return HttpResponse.Error(400, "Expected a file, found a directory");
        }
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return HttpResponse.Error(400, $"file \"{path}\": {e.Message}");
        }
        return HttpResponse.Stream(stream, stream.Length);
    }

    private HttpResponse ExtentRepairReady(uint eid)
    {
        if (_downstairs.ReadOnly)
        {
            return Bool(true);
        }
        if (eid >= _downstairs.RegionDefinition.ExtentCount)
        {
            return HttpResponse.Error(500, $"extent {eid} is beyond the region's {_downstairs.RegionDefinition.ExtentCount} extents");
        }
        return Bool(_downstairs.IsExtentClosed(eid));
    }

    private static HttpResponse Bool(bool value) => HttpResponse.JsonValue(w => w.WriteBooleanValue(value));

    /// <summary>region.json is pretty-printed; the API answers compact JSON as serde_json does.</summary>
    private static byte[] Compact(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(json.Length);
        using (var w = new Utf8JsonWriter(buffer))
        {
            doc.WriteTo(w);
        }
        return buffer.WrittenSpan.ToArray();
    }
}

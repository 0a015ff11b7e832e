using System.Text.Json;
using Microsoft.Extensions.Logging;
using Propolis.Crucible.Http;
using Propolis.Crucible.Vcr;
using Propolis.Standalone.Config;

namespace Propolis.Standalone.Api;

/// <summary>
/// The management API of <c>propolis-standalone --api ADDR</c>: the one propolis-server endpoint a
/// standalone VM can serve, <c>PUT /instance/disk/{id}/vcr</c> (propolis-server
/// <c>instance_issue_crucible_vcr_request</c>).
/// </summary>
/// <remarks>
/// <para><c>{id}</c> is the Crucible volume id (the block_dev's <c>upstairs_id</c>) or, as a
/// convenience, the block_dev's name. The body is an <see cref="InstanceVcrReplace"/>. The answer
/// is the crucible <c>ReplaceResult</c> as JSON (<c>"started"</c>, <c>"started_already"</c>,
/// <c>"completed_already"</c>, <c>"vcr_matches"</c>), as propolis-server answers it.</para>
/// <para>Errors are dropshot-shaped (<c>{"request_id", "message"}</c>): 400 for a body that is not
/// a valid request (with line and column) and for a replacement crucible refuses (its
/// <c>CrucibleError</c> text, naming the rule); 404 for an unknown volume or a name that is not
/// the volume's block_dev; 405 for another method; 415 for a body that is not JSON; 424 while
/// there is no running VM (propolis-server's "no instance").</para>
/// </remarks>
internal sealed partial class ManagementApi(ILogger logger)
{
    public const string VcrPathTemplate = "/instance/disk/{id}/vcr";

    private volatile IReadOnlyList<CrucibleVolume>? _volumes;
    private volatile IReadOnlyList<BlockDevConfig> _otherDisks = [];
    private volatile string _noInstance = "the VM is still being built";

    /// <summary>The VM is running: its Crucible volumes can be reconfigured; its other disks'
    /// block_devs (<paramref name="otherDisks"/>) are named when a request asks for one of them.</summary>
    public void Attach(IReadOnlyList<CrucibleVolume> volumes, IReadOnlyList<BlockDevConfig>? otherDisks = null)
    {
        _otherDisks = [.. (otherDisks ?? []).Where(d => volumes.All(v => v.BlockDev != d.Name))];
        _volumes = volumes;
    }

    /// <summary>The VM is going away: requests get 424 with <paramref name="reason"/>.</summary>
    public void Detach(string reason)
    {
        _noInstance = reason;
        _volumes = null;
    }

    public HttpResponse Handle(HttpRequest request)
    {
        var (response, outcome) = Route(request);
        if (response.Status < 400)
            LogRequest(logger, request.Method, request.Path, response.Status, outcome);
        else
            LogRefused(logger, request.Method, request.Path, response.Status, outcome);
        return response;
    }

    private (HttpResponse, string) Route(HttpRequest request)
    {
        string[] seg = request.Path.Trim('/').Split('/');
        if (seg is not ["instance", "disk", { Length: > 0 } id, "vcr"])
            return Error(404, $"no such endpoint {request.Path}; this API serves PUT {VcrPathTemplate}");
        if (request.Method != "PUT")
            return Error(405, $"{request.Method} is not allowed on {VcrPathTemplate}; use PUT");
        if (request.Headers.TryGetValue("Content-Type", out var contentType)
            && !contentType.Split(';')[0].Trim().Equals("application/json", StringComparison.OrdinalIgnoreCase))
            return Error(415, $"the body must be JSON (Content-Type: application/json), not {contentType}");

        if (_volumes is not { } volumes)
            return Error(424, $"no instance: {_noInstance}");
        var volume = Find(volumes, id);
        if (volume is null && _otherDisks.FirstOrDefault(d => d.Name == id) is { } other)
            return Error(404, $"disk [block_dev.{id}] has backend type \"{other.Type}\", not \"crucible\": only Crucible volumes can be reconfigured");
        if (volume is null)
        {
            var known = volumes.Count == 0
                ? "this VM has no type = \"crucible\" block_dev"
                : "its crucible volumes: " + string.Join(", ", volumes.Select(v => $"{v.Id} ([block_dev.{v.BlockDev}])"));
            return Error(404, $"No crucible backend for id {id}; {known}");
        }

        string? name;
        VolumeConstructionRequest replacement;
        try
        {
            (name, replacement) = VcrReplaceBody.Parse(request.Body);
        }
        catch (VcrBodyException e)
        {
            return Error(400, $"invalid request body {e.Describe()}");
        }
        if (name is not null && name != volume.BlockDev)
            return Error(404, $"Crucible backend for \"{name}\" not found: volume {volume.Id} is [block_dev.{volume.BlockDev}]");

        try
        {
            var result = volume.Replace(replacement);
            var json = JsonSerializer.SerializeToUtf8Bytes(result, ApiJsonContext.Default.ReplaceResult);
            return (HttpResponse.Json(json), $"volume {volume.Id} ([block_dev.{volume.BlockDev}]): {System.Text.Encoding.UTF8.GetString(json)}");
        }
        catch (ReplaceRequestInvalidException e)
        {
            return Error(400, e.Error.ToString());
        }
    }

    private static CrucibleVolume? Find(IReadOnlyList<CrucibleVolume> volumes, string id) =>
        Guid.TryParse(id, out var guid)
            ? volumes.FirstOrDefault(v => v.Id == guid)
            : volumes.FirstOrDefault(v => v.BlockDev == id);

    private static (HttpResponse, string) Error(int status, string message) => (HttpResponse.Error(status, message), message);

    [LoggerMessage(Level = LogLevel.Information, Message = "api: {Method} {Path}: {Status} {Outcome}")]
    private static partial void LogRequest(ILogger logger, string method, string path, int status, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "api: {Method} {Path}: {Status} {Outcome}")]
    private static partial void LogRefused(ILogger logger, string method, string path, int status, string outcome);
}

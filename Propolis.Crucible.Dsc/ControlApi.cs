using System.Text.Json;
using Propolis.Crucible.Http;

namespace Propolis.Crucible.Dsc;

/// <summary>
/// dsc's control API ("DownStairs Control" 0.0.1, crucible dsc/src/control.rs), served on
/// <c>--control</c> (default 127.0.0.1:9998). Queries answer JSON; commands are queued for
/// the main task and answer 204.
/// </summary>
/// <remarks>
/// GET /allrunning, /allstopped, /readonly (bool); /regioncount (uint); /regioninfo
/// (RegionExtentInfo); /state/cid/{cid} (DownstairsState, snake_case); /pid/cid/{cid}
/// (uint or null); /port/cid/{cid} (uint); /uuid/cid/{cid} (string).
/// POST /start/cid/{cid}, /start/all, /stop/cid/{cid}, /stop/all, /stop/rand,
/// /disablerestart/cid/{cid}, /disablerestart/all, /enablerestart/cid/{cid},
/// /enablerestart/all, /shutdown, /randomstop/enable, /randomstop/disable,
/// /randomstop/min/{min}, /randomstop/max/{max}. An unknown cid is 400.
/// </remarks>
public sealed class ControlApi(DscInfo dsc)
{
    public HttpResponse Handle(HttpRequest request)
    {
        string[] seg = request.Path.Trim('/').Split('/');
        bool get = request.Method is "GET" or "HEAD";
        bool post = request.Method == "POST";
        switch (seg)
        {
            case ["allrunning"]: return get ? Bool(dsc.AllRunning()) : MethodNotAllowed();
            case ["allstopped"]: return get ? Bool(dsc.AllStopped()) : MethodNotAllowed();
            case ["readonly"]: return get ? Bool(dsc.ReadOnly) : MethodNotAllowed();
            case ["regioncount"]: return get ? Json(w => w.WriteNumberValue(dsc.RegionCount)) : MethodNotAllowed();
            case ["regioninfo"]:
                if (!get)
                {
                    return MethodNotAllowed();
                }
                if (dsc.RegionInfo is not { } ri)
                {
                    return HttpResponse.Error(400, "failed to get region info: No region info found");
                }
                return Json(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("block_size", ri.BlockSize);
                    w.WriteNumber("blocks_per_extent", ri.BlocksPerExtent);
                    w.WriteNumber("extent_count", ri.ExtentCount);
                    w.WriteEndObject();
                });
            case ["state", "cid", var c]: return get ? WithCid(c, cid => Json(w => w.WriteStringValue(dsc.GetState(cid).ToJsonName()))) : MethodNotAllowed();
            case ["pid", "cid", var c]:
                return get ? WithCid(c, cid => Json(w =>
                {
                    if (dsc.GetPid(cid) is int pid)
                    {
                        w.WriteNumberValue(pid);
                    }
                    else
                    {
                        w.WriteNullValue();
                    }
                })) : MethodNotAllowed();
            case ["port", "cid", var c]: return get ? WithCid(c, cid => Json(w => w.WriteNumberValue(dsc.GetPort(cid)))) : MethodNotAllowed();
            case ["uuid", "cid", var c]: return get ? WithCid(c, cid => Json(w => w.WriteStringValue(dsc.GetUuid(cid).ToString()))) : MethodNotAllowed();

            case ["start", "cid", var c]: return post ? WithCid(c, cid => Queue(new DscCmd.Start(cid))) : MethodNotAllowed();
            case ["start", "all"]: return post ? Queue(new DscCmd.StartAll()) : MethodNotAllowed();
            case ["stop", "cid", var c]: return post ? WithCid(c, cid => Queue(new DscCmd.Stop(cid))) : MethodNotAllowed();
            case ["stop", "all"]: return post ? Queue(new DscCmd.StopAll()) : MethodNotAllowed();
            case ["stop", "rand"]: return post ? Queue(new DscCmd.StopRand()) : MethodNotAllowed();
            case ["disablerestart", "cid", var c]: return post ? WithCid(c, cid => Queue(new DscCmd.DisableRestart(cid))) : MethodNotAllowed();
            case ["disablerestart", "all"]: return post ? Queue(new DscCmd.DisableRestartAll()) : MethodNotAllowed();
            case ["enablerestart", "cid", var c]: return post ? WithCid(c, cid => Queue(new DscCmd.EnableRestart(cid))) : MethodNotAllowed();
            case ["enablerestart", "all"]: return post ? Queue(new DscCmd.EnableRestartAll()) : MethodNotAllowed();
            case ["shutdown"]: return post ? Queue(new DscCmd.Shutdown()) : MethodNotAllowed();
            case ["randomstop", "enable"]: return post ? Queue(new DscCmd.EnableRandomStop()) : MethodNotAllowed();
            case ["randomstop", "disable"]: return post ? Queue(new DscCmd.DisableRandomStop()) : MethodNotAllowed();
            case ["randomstop", "min", var v]: return post ? WithU64(v, n => Queue(new DscCmd.RandomStopMin(n))) : MethodNotAllowed();
            case ["randomstop", "max", var v]: return post ? WithU64(v, n => Queue(new DscCmd.RandomStopMax(n))) : MethodNotAllowed();
            default: return HttpResponse.Error(404, "Not Found");
        }
    }

    private HttpResponse Queue(DscCmd cmd)
    {
        dsc.AddCommand(cmd);
        return HttpResponse.NoContent();
    }

    private HttpResponse WithCid(string text, Func<int, HttpResponse> then)
    {
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, null, out int cid))
        {
            return HttpResponse.Error(400, $"bad parameter in URL path: unable to parse '{text}' as an integer");
        }
        return dsc.IsValidClient(cid) ? then(cid) : HttpResponse.Error(400, $"Invalid client id: {cid}", "BadInput");
    }

    private static HttpResponse WithU64(string text, Func<ulong, HttpResponse> then) =>
        ulong.TryParse(text, System.Globalization.NumberStyles.None, null, out ulong n)
            ? then(n)
            : HttpResponse.Error(400, $"bad parameter in URL path: unable to parse '{text}' as an integer");

    private static HttpResponse Bool(bool v) => Json(w => w.WriteBooleanValue(v));

    private static HttpResponse Json(Action<Utf8JsonWriter> write) => HttpResponse.JsonValue(write);

    private static HttpResponse MethodNotAllowed() => HttpResponse.Error(405, "Method Not Allowed");
}

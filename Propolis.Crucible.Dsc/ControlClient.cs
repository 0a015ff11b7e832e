using System.Net;
using System.Text;
using System.Text.Json;
using Propolis.Crucible.Http;

namespace Propolis.Crucible.Dsc;

/// <summary>
/// <c>dsc cmd</c> (crucible dsc/src/client.rs): one request to a running dsc's control API.
/// Answers are printed as the real client prints them (Rust's Debug format: <c>true</c>,
/// <c>Some(1234)</c>, <c>None</c>, <c>Running</c>, ...).
/// </summary>
public static class ControlClient
{
    /// <summary>A client command: its HTTP method and path, and how the answer is printed (null: nothing).</summary>
    public sealed record Command(string Method, string Path, Func<JsonElement, string>? Format);

    public static Command AllRunning() => new("GET", "/allrunning", FormatBool);
    public static Command AllStopped() => new("GET", "/allstopped", FormatBool);
    public static Command ReadOnly() => new("GET", "/readonly", FormatBool);
    public static Command RegionCount() => new("GET", "/regioncount", e => e.GetUInt64().ToString());
    public static Command RegionInfo() => new("GET", "/regioninfo", e => new RegionExtentInfo(
        e.GetProperty("block_size").GetUInt64(), e.GetProperty("blocks_per_extent").GetUInt64(), e.GetProperty("extent_count").GetUInt32()).ToString());
    public static Command State(uint cid) => new("GET", $"/state/cid/{cid}", e =>
        DownstairsStateNames.TryParseJsonName(e.GetString() ?? "", out DownstairsState s) ? s.ToString() : e.GetRawText());
    public static Command Pid(uint cid) => new("GET", $"/pid/cid/{cid}", e => e.ValueKind == JsonValueKind.Null ? "None" : $"Some({e.GetUInt32()})");
    public static Command Port(uint cid) => new("GET", $"/port/cid/{cid}", e => e.GetUInt32().ToString());
    public static Command Uuid(uint cid) => new("GET", $"/uuid/cid/{cid}", e => e.GetString() ?? "");
    public static Command Post(string path) => new("POST", path, null);

    private static string FormatBool(JsonElement e) => e.GetBoolean() ? "true" : "false";

    /// <summary>Turns <c>--server</c> (<c>http://HOST:PORT</c>, default port 80) into an endpoint.</summary>
    public static EndPoint ParseServer(string server)
    {
        if (!Uri.TryCreate(server, UriKind.Absolute, out Uri? uri) || uri.Scheme != "http")
        {
            throw new DscException($"--server '{server}' is not an http:// URL (for example http://127.0.0.1:9998)");
        }
        if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out IPAddress? ip))
        {
            return new IPEndPoint(ip, uri.Port);
        }
        return new DnsEndPoint(uri.Host, uri.Port);
    }

    /// <summary>Sends <paramref name="command"/>; returns the line to print (null if none).</summary>
    public static string? Run(string server, Command command)
    {
        EndPoint endPoint = ParseServer(server);
        if (endPoint is DnsEndPoint dns)
        {
            IPAddress[] addresses;
            try
            {
                addresses = Dns.GetHostAddresses(dns.Host);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new DscException($"cannot resolve {dns.Host}: {e.Message}");
            }
            endPoint = new IPEndPoint(addresses.First(), dns.Port);
        }
        int status;
        byte[] body;
        try
        {
            (status, body) = Http1Client.SendAsync(endPoint, command.Method, command.Path, TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or TimeoutException or HttpMessageException)
        {
            throw new DscException($"cannot reach dsc at {server}: {e.Message} (is `dsc start` running with --control there?)");
        }
        if (status is < 200 or > 299)
        {
            string message = Encoding.UTF8.GetString(body);
            try
            {
                using JsonDocument doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("message", out JsonElement m))
                {
                    message = m.GetString() ?? message;
                }
            }
            catch (JsonException)
            {
            }
            throw new DscException($"{command.Method} {command.Path}: {status}: {message}");
        }
        if (command.Format is null)
        {
            return null;
        }
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            return command.Format(doc.RootElement);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new DscException($"{command.Method} {command.Path}: unexpected answer '{Encoding.UTF8.GetString(body)}': {e.Message}");
        }
    }
}

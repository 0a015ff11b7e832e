using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Propolis.Crucible.Http;
using Propolis.Crucible.Upstairs;

namespace Propolis.Standalone.Api;

/// <summary>
/// <c>propolis-standalone vcr --api ADDR -u ID --vcr-replace FILE</c>: propolis-cli's <c>vcr</c>
/// command. Reads FILE (an <see cref="InstanceVcrReplace"/>), checks it locally (so that a JSON
/// mistake is reported as FILE:LINE:COL), PUTs it to <c>/instance/disk/ID/vcr</c> and prints the
/// <c>ReplaceResult</c>.
/// </summary>
/// <remarks>Exit status: 0 when the server accepted the request; 1 when it refused it (its message
/// is printed) or could not be reached; 2 when FILE cannot be read or is not a valid request.</remarks>
internal static class VcrClient
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static int Run(IPEndPoint api, string id, string file, TextWriter stdout, TextWriter stderr, string program)
    {
        byte[] body;
        try
        {
            if (Directory.Exists(file))
            {
                stderr.WriteLine($"{program}: vcr: cannot read {file}: it is a directory");
                return Cli.ExitConfigError;
            }
            body = File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            stderr.WriteLine($"{program}: vcr: cannot read {(file.Length == 0 ? "''" : file)}: {Config.Values.DescribeIoError(e)}");
            return Cli.ExitConfigError;
        }
        try
        {
            VcrReplaceBody.Parse(body);
        }
        catch (VcrBodyException e)
        {
            stderr.WriteLine(e is { Line: { } line, InVcrJson: false }
                ? $"{file}:{line}:{e.Column}: {e.Message}"
                : $"{file}: {e.Describe()}");
            stderr.WriteLine($"{program}: vcr: {file} is not a valid request ({VcrReplaceBody.Shape}); nothing was sent");
            return Cli.ExitConfigError;
        }

        var path = "/instance/disk/" + Uri.EscapeDataString(id) + "/vcr";
        int status;
        byte[] answer;
        try
        {
            (status, answer) = Http1Client.SendAsync(api, "PUT", path, HttpRequestBody.Json(body), Timeout).GetAwaiter().GetResult();
        }
        catch (SocketException e)
        {
            stderr.WriteLine($"{program}: vcr: cannot reach {api}: {e.Message} (is propolis-standalone running with --api {api}?)");
            return Cli.ExitRuntimeFailure;
        }
        catch (Exception e) when (e is IOException or TimeoutException or HttpMessageException)
        {
            stderr.WriteLine($"{program}: vcr: PUT {path} on {api} failed: {e.Message}");
            return Cli.ExitRuntimeFailure;
        }

        if (status == 200 && TryResult(answer, out var result))
        {
            stdout.WriteLine(result);
            return Cli.ExitSuccess;
        }
        stderr.WriteLine(status == 200
            ? $"{program}: vcr: {api} answered PUT {path} with something that is not a ReplaceResult: {Excerpt(answer)}"
            : $"{program}: vcr: {api} refused the request (HTTP {status}): {ErrorMessage(answer)}");
        return Cli.ExitRuntimeFailure;
    }

    private static bool TryResult(byte[] answer, out string result)
    {
        result = "";
        try
        {
            var r = JsonSerializer.Deserialize(answer, ApiJsonContext.Default.ReplaceResult);
            result = JsonSerializer.Serialize(r, ApiJsonContext.Default.ReplaceResult).Trim('"');
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>The <c>message</c> of a dropshot error body, else the body itself.</summary>
    private static string ErrorMessage(byte[] answer)
    {
        try
        {
            using var doc = JsonDocument.Parse(answer);
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String)
                return m.GetString()!;
        }
        catch (JsonException)
        {
        }
        return Excerpt(answer);
    }

    private static string Excerpt(byte[] answer)
    {
        var text = Encoding.UTF8.GetString(answer, 0, Math.Min(answer.Length, 400)).Trim();
        return text.Length == 0 ? "(empty body)" : text;
    }
}

using System.Buffers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Propolis.Crucible.Http;

/// <summary>One HTTP request as the server read it.</summary>
public sealed record HttpRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body);

/// <summary>A response: a status and a body of bytes or of a stream of known length.</summary>
public sealed class HttpResponse
{
    private HttpResponse(int status, string? contentType, byte[] body, Stream? stream, long streamLength)
    {
        Status = status;
        ContentType = contentType;
        Body = body;
        BodyStream = stream;
        StreamLength = streamLength;
    }

    public int Status { get; }

    public string? ContentType { get; }

    public byte[] Body { get; }

    /// <summary>A body streamed from here (disposed once sent) instead of <see cref="Body"/>.</summary>
    public Stream? BodyStream { get; }

    public long StreamLength { get; }

    public static HttpResponse Json(byte[] utf8Json, int status = 200) => new(status, "application/json", utf8Json, null, 0);

    /// <summary>dropshot's <c>HttpResponseUpdatedNoContent</c>.</summary>
    public static HttpResponse NoContent() => new(204, null, [], null, 0);

    public static HttpResponse Stream(Stream body, long length, string contentType = "application/octet-stream") =>
        new(200, contentType, [], body, length);

    /// <summary>An error in dropshot's shape: <c>{"request_id", "error_code"?, "message"}</c>.</summary>
    public static HttpResponse Error(int status, string message, string? errorCode = null)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("request_id", Guid.NewGuid().ToString("D"));
            if (errorCode is not null)
            {
                w.WriteString("error_code", errorCode);
            }
            w.WriteString("message", message);
            w.WriteEndObject();
        }
        return Json(buffer.WrittenSpan.ToArray(), status);
    }

    /// <summary>A JSON body written by <paramref name="write"/> (one value).</summary>
    public static HttpResponse JsonValue(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }
        return Json(buffer.WrittenSpan.ToArray());
    }
}

/// <summary>
/// A small HTTP/1.1 server over a listening socket (RFC 9112): request line, headers and a
/// Content-Length body in; status line, Content-Length and body out; keep-alive unless the
/// client asks to close. Enough for the repair API and dsc's control API, which the real
/// programs serve with dropshot.
/// </summary>
public static class HttpServer
{
    /// <summary>Largest request body accepted (dropshot's default is 1024 bytes; these APIs take none).</summary>
    public const int MaxRequestBody = 64 * 1024;

    public static async Task ServeAsync(Socket listener, Func<HttpRequest, HttpResponse> handler, ILogger? log,
        CancellationToken cancellationToken)
    {
        log ??= NullLogger.Instance;
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                Socket socket = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                connections.RemoveAll(t => t.IsCompleted);
                connections.Add(ServeConnectionAsync(socket, handler, log, cancellationToken));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        await Task.WhenAll(connections).ConfigureAwait(false);
    }

    private static async Task ServeConnectionAsync(Socket socket, Func<HttpRequest, HttpResponse> handler, ILogger log,
        CancellationToken ct)
    {
        await Task.Yield();
        using var stream = new NetworkStream(socket, ownsSocket: true);
        var reader = new HttpReader(stream);
        try
        {
            while (true)
            {
                HttpRequest request;
                bool keepAlive;
                try
                {
                    var head = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                    if (head is null)
                    {
                        return;
                    }
                    (request, keepAlive) = await ReadRequestAsync(reader, head.Value.StartLine, head.Value.Headers, ct).ConfigureAwait(false);
                }
                catch (HttpMessageException e)
                {
                    await WriteResponseAsync(stream, HttpResponse.Error(e.Status, e.Message), head: false, keepAlive: false, ct).ConfigureAwait(false);
                    return;
                }
                HttpResponse response;
                try
                {
                    response = handler(request);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogError("{Method} {Path}: {Error}", request.Method, request.Path, e.Message);
                    response = HttpResponse.Error(500, "Internal Server Error");
                }
                log.LogDebug("{Method} {Path} -> {Status}", request.Method, request.Path, response.Status);
                await WriteResponseAsync(stream, response, request.Method == "HEAD", keepAlive, ct).ConfigureAwait(false);
                if (!keepAlive)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            log.LogDebug("HTTP connection ended: {Error}", e.Message);
        }
    }

    private static async ValueTask<(HttpRequest, bool)> ReadRequestAsync(HttpReader reader, string startLine,
        Dictionary<string, string> headers, CancellationToken ct)
    {
        string[] parts = startLine.Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || parts[1].Length == 0)
        {
            throw new HttpMessageException(400, $"malformed request line '{startLine}'");
        }
        bool http10 = parts[2] == "HTTP/1.0";
        headers.TryGetValue("Connection", out string? connection);
        bool keepAlive = http10
            ? string.Equals(connection, "keep-alive", StringComparison.OrdinalIgnoreCase)
            : !string.Equals(connection, "close", StringComparison.OrdinalIgnoreCase);
        if (headers.ContainsKey("Transfer-Encoding"))
        {
            throw new HttpMessageException(411, "request bodies must have a Content-Length");
        }
        byte[] body = [];
        if (headers.TryGetValue("Content-Length", out string? lengthText))
        {
            if (!long.TryParse(lengthText, out long length) || length < 0)
            {
                throw new HttpMessageException(400, $"bad Content-Length '{lengthText}'");
            }
            if (length > MaxRequestBody)
            {
                throw new HttpMessageException(413, $"request body of {length} bytes is larger than {MaxRequestBody}");
            }
            using var ms = new MemoryStream((int)length);
            await reader.CopyExactAsync(length, ms, ct).ConfigureAwait(false);
            body = ms.ToArray();
        }
        string target = parts[1];
        int query = target.IndexOf('?');
        string path = Uri.UnescapeDataString(query >= 0 ? target.Substring(0, query) : target);
        return (new HttpRequest(parts[0], path, headers, body), keepAlive);
    }

    private static async ValueTask WriteResponseAsync(Stream stream, HttpResponse response, bool head, bool keepAlive,
        CancellationToken ct)
    {
        try
        {
            long length = response.BodyStream is not null ? response.StreamLength : response.Body.Length;
            var sb = new StringBuilder(160);
            sb.Append("HTTP/1.1 ").Append(response.Status).Append(' ').Append(ReasonPhrase(response.Status)).Append("\r\n");
            if (response.ContentType is not null)
            {
                sb.Append("Content-Type: ").Append(response.ContentType).Append("\r\n");
            }
            if (response.Status != 204)
            {
                sb.Append("Content-Length: ").Append(length).Append("\r\n");
            }
            sb.Append("Date: ").Append(DateTime.UtcNow.ToString("R")).Append("\r\n");
            if (!keepAlive)
            {
                sb.Append("Connection: close\r\n");
            }
            sb.Append("\r\n");
            await stream.WriteAsync(Encoding.Latin1.GetBytes(sb.ToString()), ct).ConfigureAwait(false);
            if (head || response.Status == 204)
            {
                return;
            }
            if (response.BodyStream is { } body)
            {
                await CopyExactlyAsync(body, stream, length, ct).ConfigureAwait(false);
            }
            else
            {
                await stream.WriteAsync(response.Body, ct).ConfigureAwait(false);
            }
            await stream.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            response.BodyStream?.Dispose();
        }
    }

    private static async ValueTask CopyExactlyAsync(Stream source, Stream destination, long length, CancellationToken ct)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
        try
        {
            while (length > 0)
            {
                int n = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length)), ct).ConfigureAwait(false);
                if (n == 0)
                {
                    // The file shrank under us; the client sees a short body and fails the transfer.
                    throw new IOException($"file ended with {length} bytes still promised");
                }
                await destination.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                length -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static string ReasonPhrase(int status) => status switch
    {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        424 => "Failed Dependency",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
}

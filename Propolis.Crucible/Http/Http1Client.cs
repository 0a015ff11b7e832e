using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Propolis.Crucible.Http;

/// <summary>A response read by <see cref="Http1Client"/>: status and headers (the body went to the caller's stream).</summary>
public sealed record HttpClientResponse(int Status, IReadOnlyDictionary<string, string> Headers);

/// <summary>A request body: its media type and bytes.</summary>
public sealed record HttpRequestBody(string ContentType, ReadOnlyMemory<byte> Body)
{
    public static HttpRequestBody Json(ReadOnlyMemory<byte> utf8Json) => new("application/json", utf8Json);
}

/// <summary>
/// A minimal HTTP/1.1 client: one request per connection (<c>Connection: close</c>), bodies
/// framed by Content-Length, chunked transfer coding, or the end of the connection — what
/// the repair client needs to fetch from our repair service or from a real (dropshot)
/// downstairs, what <c>dsc cmd</c> needs to talk to the control API, and what
/// <c>propolis-standalone vcr</c> needs to PUT a JSON body.
/// </summary>
public static class Http1Client
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Sends <paramref name="method"/> <paramref name="path"/> and copies the response body to <paramref name="body"/>.</summary>
    public static Task<HttpClientResponse> SendAsync(EndPoint server, string method, string path, Stream body,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        SendAsync(server, method, path, null, body, timeout, cancellationToken);

    /// <summary>Sends <paramref name="method"/> <paramref name="path"/> with <paramref name="content"/>
    /// as the request body (Content-Length framed) and copies the response body to <paramref name="body"/>.</summary>
    public static async Task<HttpClientResponse> SendAsync(EndPoint server, string method, string path, HttpRequestBody? content, Stream body,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout ?? DefaultTimeout);
        CancellationToken ct = cts.Token;
        using var socket = new Socket(server.AddressFamily == AddressFamily.Unspecified ? AddressFamily.InterNetwork : server.AddressFamily,
            SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(server, ct).ConfigureAwait(false);
            using var stream = new NetworkStream(socket, ownsSocket: false);
            string host = server is IPEndPoint ip ? ip.ToString() : server.ToString() ?? "localhost";
            string request = $"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\nConnection: close\r\n"
                + (content is { } c ? $"Content-Type: {c.ContentType}\r\nContent-Length: {c.Body.Length}\r\n"
                    : method is "POST" or "PUT" ? "Content-Length: 0\r\n" : "") + "\r\n";
            await stream.WriteAsync(Encoding.Latin1.GetBytes(request), ct).ConfigureAwait(false);
            if (content is { } sent)
            {
                await stream.WriteAsync(sent.Body, ct).ConfigureAwait(false);
            }
            var reader = new HttpReader(stream);
            var head = await reader.ReadHeadAsync(ct).ConfigureAwait(false)
                ?? throw new HttpMessageException(502, $"{server} closed the connection without answering {method} {path}");
            string[] status = head.StartLine.Split(' ', 3);
            if (status.Length < 2 || !status[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(status[1], out int code))
            {
                throw new HttpMessageException(502, $"{server} answered with a malformed status line '{head.StartLine}'");
            }
            Dictionary<string, string> headers = head.Headers;
            if (method == "HEAD" || code is 204 or 304 || code < 200)
            {
                return new HttpClientResponse(code, headers);
            }
            if (headers.TryGetValue("Transfer-Encoding", out string? te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                await reader.CopyChunkedAsync(body, ct).ConfigureAwait(false);
            }
            else if (headers.TryGetValue("Content-Length", out string? cl))
            {
                if (!long.TryParse(cl, out long length) || length < 0)
                {
                    throw new HttpMessageException(502, $"{server} sent a bad Content-Length '{cl}'");
                }
                await reader.CopyExactAsync(length, body, ct).ConfigureAwait(false);
            }
            else
            {
                await reader.CopyToEndAsync(body, ct).ConfigureAwait(false);
            }
            return new HttpClientResponse(code, headers);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{method} {path} on {server} took longer than {(timeout ?? DefaultTimeout).TotalSeconds} s");
        }
    }

    /// <summary>A request whose body is small: returns the status and the body bytes.</summary>
    public static Task<(int Status, byte[] Body)> SendAsync(EndPoint server, string method, string path,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        SendAsync(server, method, path, (HttpRequestBody?)null, timeout, cancellationToken);

    /// <summary>A request with a small body and a small answer: returns the status and the body bytes.</summary>
    public static async Task<(int Status, byte[] Body)> SendAsync(EndPoint server, string method, string path, HttpRequestBody? content,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        using var ms = new MemoryStream();
        HttpClientResponse r = await SendAsync(server, method, path, content, ms, timeout, cancellationToken).ConfigureAwait(false);
        return (r.Status, ms.ToArray());
    }
}

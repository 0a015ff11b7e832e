using System.Text;

namespace Propolis.Crucible.Http;

/// <summary>
/// Buffered reading of HTTP/1.1 messages from a stream: the start line and headers
/// (RFC 9112 §2.1: CRLF-terminated lines up to an empty line), then exact byte counts.
/// Shared by <see cref="HttpServer"/> and <see cref="Http1Client"/>.
/// </summary>
internal sealed class HttpReader
{
    /// <summary>Largest start line plus header section accepted (dropshot's and hyper's are of this order).</summary>
    public const int MaxHeaderBytes = 16 * 1024;

    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    public HttpReader(Stream stream) => _stream = stream;

    /// <summary>
    /// Reads the start line and headers. Null if the stream ended before any byte of a new message
    /// (a keep-alive connection closed by the peer).
    /// </summary>
    public async ValueTask<(string StartLine, Dictionary<string, string> Headers)?> ReadHeadAsync(CancellationToken ct)
    {
        int scanned = 0;
        while (true)
        {
            ReadOnlySpan<byte> window = _buffer.AsSpan(_start, _end - _start);
            int idx = window.Slice(Math.Max(0, scanned - 3)).IndexOf("\r\n\r\n"u8);
            if (idx >= 0)
            {
                int headEnd = Math.Max(0, scanned - 3) + idx;
                string head = Encoding.Latin1.GetString(window.Slice(0, headEnd));
                _start += headEnd + 4;
                return ParseHead(head);
            }
            scanned = window.Length;
            if (window.Length >= MaxHeaderBytes)
            {
                throw new HttpMessageException(431, $"request header section is larger than {MaxHeaderBytes} bytes");
            }
            Compact();
            int n = await _stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (n == 0)
            {
                if (_end == _start)
                {
                    return null;
                }
                throw new HttpMessageException(400, "connection closed in the middle of a message header");
            }
            _end += n;
        }
    }

    private static (string, Dictionary<string, string>) ParseHead(string head)
    {
        string[] lines = head.Split("\r\n");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 1; i < lines.Length; i++)
        {
            int colon = lines[i].IndexOf(':');
            if (colon <= 0)
            {
                throw new HttpMessageException(400, $"malformed header line '{lines[i]}'");
            }
            string name = lines[i].Substring(0, colon).Trim();
            string value = lines[i].Substring(colon + 1).Trim();
            headers[name] = headers.TryGetValue(name, out string? prior) ? prior + ", " + value : value;
        }
        return (lines[0], headers);
    }

    /// <summary>Reads one CRLF-terminated line (a chunk-size line).</summary>
    public async ValueTask<string> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            int idx = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (idx >= 0)
            {
                string line = Encoding.Latin1.GetString(_buffer, _start, idx);
                _start += idx + 2;
                return line;
            }
            if (_end - _start >= MaxHeaderBytes)
            {
                throw new HttpMessageException(400, "line too long");
            }
            Compact();
            int n = await _stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new HttpMessageException(400, "connection closed in the middle of a line");
            }
            _end += n;
        }
    }

    /// <summary>Copies exactly <paramref name="count"/> bytes to <paramref name="destination"/>.</summary>
    public async ValueTask CopyExactAsync(long count, Stream destination, CancellationToken ct)
    {
        while (count > 0)
        {
            if (_start == _end)
            {
                _start = _end = 0;
                int n = await _stream.ReadAsync(_buffer.AsMemory(0, (int)Math.Min(_buffer.Length, Math.Max(count, 1))), ct).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new HttpMessageException(400, $"connection closed with {count} bytes of the body still to come");
                }
                _end = n;
            }
            int take = (int)Math.Min(count, _end - _start);
            await destination.WriteAsync(_buffer.AsMemory(_start, take), ct).ConfigureAwait(false);
            _start += take;
            count -= take;
        }
    }

    /// <summary>Copies everything until the peer closes the connection (a body delimited by close).</summary>
    public async ValueTask CopyToEndAsync(Stream destination, CancellationToken ct)
    {
        if (_end > _start)
        {
            await destination.WriteAsync(_buffer.AsMemory(_start, _end - _start), ct).ConfigureAwait(false);
        }
        _start = _end = 0;
        await _stream.CopyToAsync(destination, ct).ConfigureAwait(false);
    }

    /// <summary>Copies a chunked body (RFC 9112 §7.1), ignoring chunk extensions and trailers.</summary>
    public async ValueTask CopyChunkedAsync(Stream destination, CancellationToken ct)
    {
        while (true)
        {
            string line = await ReadLineAsync(ct).ConfigureAwait(false);
            int semi = line.IndexOf(';');
            string hex = (semi >= 0 ? line.Substring(0, semi) : line).Trim();
            if (!long.TryParse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, null, out long size) || size < 0)
            {
                throw new HttpMessageException(400, $"bad chunk size '{line}'");
            }
            if (size == 0)
            {
                while ((await ReadLineAsync(ct).ConfigureAwait(false)).Length != 0)
                {
                }
                return;
            }
            await CopyExactAsync(size, destination, ct).ConfigureAwait(false);
            if ((await ReadLineAsync(ct).ConfigureAwait(false)).Length != 0)
            {
                throw new HttpMessageException(400, "chunk not followed by CRLF");
            }
        }
    }

    private void Compact()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
    }
}

/// <summary>A malformed HTTP message; <see cref="Status"/> is the status a server answers it with.</summary>
public sealed class HttpMessageException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Propolis.Standalone.Config;

/// <summary>Parsers for the string-encoded values of the schema. Each returns null with a
/// reason instead of throwing.</summary>
internal static class Values
{
    /// <summary>"ip:port" with a dotted-quad IPv4 address, or "[ipv6]:port", as Rust's
    /// <c>SocketAddr</c> accepts them. The port must be given.</summary>
    public static IPEndPoint? ParseSocketAddress(string text, out string reason)
    {
        reason = "";
        string host, port;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                reason = "an IPv6 address is written \"[addr]:port\"";
                return null;
            }
            host = text[1..close];
            port = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                reason = $"'{host}' is not an IPv6 address";
                return null;
            }
            return WithPort(v6, port, ref reason);
        }

        int colon = text.LastIndexOf(':');
        if (colon < 0)
        {
            reason = "the port is missing (\"ip:port\")";
            return null;
        }
        host = text[..colon];
        port = text[(colon + 1)..];
        if (host.Contains(':'))
        {
            reason = "an IPv6 address must be in brackets: \"[addr]:port\"";
            return null;
        }
        var v4 = ParseDottedQuad(host);
        if (v4 is null)
        {
            reason = $"'{host}' is not an IPv4 address (host names are not resolved)";
            return null;
        }
        return WithPort(v4, port, ref reason);
    }

    private static IPEndPoint? WithPort(IPAddress address, string port, ref string reason)
    {
        if (port.Length == 0 || port.Length > 5 || !port.All(char.IsAsciiDigit)
            || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p > 65535)
        {
            reason = $"'{port}' is not a port number (0 to 65535)";
            return null;
        }
        return new IPEndPoint(address, p);
    }

    // IPAddress.TryParse also takes "1" or "0x7f.1"; a socket address in this file is four
    // decimal octets.
    private static IPAddress? ParseDottedQuad(string text)
    {
        var parts = text.Split('.');
        if (parts.Length != 4)
            return null;
        var bytes = new byte[4];
        for (int i = 0; i < 4; i++)
        {
            var p = parts[i];
            if (p.Length == 0 || p.Length > 3 || !p.All(char.IsAsciiDigit) || (p.Length > 1 && p[0] == '0'))
                return null;
            int v = int.Parse(p, CultureInfo.InvariantCulture);
            if (v > 255)
                return null;
            bytes[i] = (byte)v;
        }
        return new IPAddress(bytes);
    }

    /// <summary>A UUID as the Rust uuid crate reads it: hyphenated, simple (32 hex digits),
    /// braced or "urn:uuid:".</summary>
    public static Guid? ParseUuid(string text)
    {
        var t = text.StartsWith("urn:uuid:", StringComparison.OrdinalIgnoreCase) ? text[9..] : text;
        foreach (var format in new[] { "D", "N", "B" })
        {
            if (Guid.TryParseExact(t, format, out var g))
                return g;
        }
        return null;
    }

    /// <summary>"xx:xx:xx:xx:xx:xx" (hex, either case).</summary>
    public static byte[]? ParseMac(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 6)
            return null;
        var mac = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            if (parts[i].Length != 2
                || !byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mac[i]))
                return null;
        }
        return mac;
    }

    public static string FormatMac(byte[] mac) => string.Join(':', mac.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    /// <summary>A CPUID leaf key: hex "7" or "0x7", optionally "-subleaf" (also hex).</summary>
    public static (uint Leaf, uint? Subleaf)? ParseCpuidLeaf(string key)
    {
        int dash = key.IndexOf('-');
        if (dash < 0)
            return ParseHex(key) is { } leaf ? (leaf, null) : null;
        if (ParseHex(key[..dash]) is { } l && ParseHex(key[(dash + 1)..]) is { } s)
            return (l, s);
        return null;
    }

    private static uint? ParseHex(string text)
    {
        var t = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        if (t.Length == 0 || t.Length > 8 || !t.All(char.IsAsciiHexDigit))
            return null;
        return uint.Parse(t, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
    }

    /// <summary>"4 KiB", "512 B", "2 GiB": the largest binary unit that divides the size.</summary>
    public static string FormatSize(long bytes)
    {
        string[] units = { "B", "KiB", "MiB", "GiB", "TiB" };
        int u = 0;
        long v = bytes;
        while (u < units.Length - 1 && v >= 1024 && v % 1024 == 0)
        {
            v /= 1024;
            u++;
        }
        return $"{v.ToString(CultureInfo.InvariantCulture)} {units[u]}";
    }

    /// <summary>The reason a file operation failed, in the words of errno.</summary>
    public static string DescribeIoError(Exception e) => e switch
    {
        FileNotFoundException => "no such file",
        DirectoryNotFoundException => "no such file or directory",
        UnauthorizedAccessException => "permission denied",
        PathTooLongException => "path too long",
        ArgumentException => "not a valid path",
        IOException io when io.Message.Length > 0 => io.Message,
        _ => e.Message,
    };
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Propolis.Crucible.Upstairs;
using Propolis.Crucible.Vcr;

namespace Propolis.Standalone.Api;

/// <summary>
/// The body of <c>PUT /instance/disk/{id}/vcr</c>: propolis-server's <c>InstanceVCRReplace</c>.
/// </summary>
/// <remarks>
/// propolis-server takes <c>{"name": DISK, "vcr_json": "VCR as a JSON string"}</c> (propolis
/// <c>137d0b3b</c>, which added the endpoint; later versions dropped <c>name</c>). Its
/// <c>docs/server-send-vcr.md</c> is also read as showing the VCR inline, as <c>"vcr": {...}</c>; both
/// are accepted here, exactly one of them. <c>name</c> is optional and, when given, must be the
/// volume's <c>[block_dev.NAME]</c> (propolis-server looked the backend up by it).
/// Unknown fields are refused, so that a misspelt <c>vcr_json</c> is not silently ignored.
/// </remarks>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record InstanceVcrReplace
{
    public string? Name { get; init; }

    public string? VcrJson { get; init; }

    public VolumeConstructionRequest? Vcr { get; init; }
}

/// <summary>A request body that is not a valid <see cref="InstanceVcrReplace"/>. <see cref="Line"/>
/// and <see cref="Column"/> (1-based) locate JSON errors: in the body, or with
/// <see cref="InVcrJson"/> in the <c>vcr_json</c> string.</summary>
internal sealed class VcrBodyException(string message, long? line = null, long? column = null, bool inVcrJson = false)
    : Exception(message)
{
    public long? Line { get; } = line;

    public long? Column { get; } = column;

    public bool InVcrJson { get; } = inVcrJson;

    /// <summary>"at line L, column C: message" (with "vcr_json" first when the error is inside it).</summary>
    public string Describe()
    {
        var where = Line is { } l ? $"line {l}, column {Column}" : null;
        return (InVcrJson, where) switch
        {
            (true, null) => $"vcr_json: {Message}",
            (true, _) => $"vcr_json at {where}: {Message}",
            (false, null) => Message,
            (false, _) => $"at {where}: {Message}",
        };
    }
}

internal static partial class VcrReplaceBody
{
    public const string Shape = "{\"name\": BLOCK_DEV, \"vcr_json\": \"VCR as a JSON string\"} or {\"name\": BLOCK_DEV, \"vcr\": {VCR}}";

    /// <summary>Parses and checks a body; returns the optional disk name and the replacement VCR.</summary>
    /// <exception cref="VcrBodyException">Not JSON, not of the shape, or its VCR is not a VCR.</exception>
    public static (string? Name, VolumeConstructionRequest Vcr) Parse(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Trim(" \t\r\n"u8).IsEmpty)
            throw new VcrBodyException($"the request body is empty; send {Shape}");
        InstanceVcrReplace? body;
        try
        {
            body = JsonSerializer.Deserialize(utf8, ApiJsonContext.Default.InstanceVcrReplace);
        }
        catch (JsonException e)
        {
            throw FromJson(e, inVcrJson: false);
        }
        catch (NotSupportedException e)
        {
            throw FromNotSupported(e, inVcrJson: false);
        }
        if (body is null)
            throw new VcrBodyException($"the request body is null; send {Shape}");
        VolumeConstructionRequest vcr;
        switch (body.VcrJson, body.Vcr)
        {
            case (null, null):
                throw new VcrBodyException($"the request has neither vcr_json nor vcr; send {Shape}");
            case (not null, not null):
                throw new VcrBodyException("the request has both vcr_json and vcr; send one of them");
            case (null, { } inline):
                vcr = inline;
                break;
            case ({ } text, null):
                try
                {
                    vcr = VolumeConstructionRequest.Parse(text);
                }
                catch (JsonException e)
                {
                    throw FromJson(e, inVcrJson: true);
                }
                catch (NotSupportedException e)
                {
                    throw FromNotSupported(e, inVcrJson: true);
                }
                break;
        }
        return (body.Name, vcr);
    }

    private static VcrBodyException FromJson(JsonException e, bool inVcrJson) =>
        Located(e.Message, e.Path, e.LineNumber, e.BytePositionInLine, inVcrJson);

    /// <summary>System.Text.Json's error for an object with no (or a misplaced) <c>"type"</c>: the
    /// position is only in its message.</summary>
    private static VcrBodyException FromNotSupported(NotSupportedException e, bool inVcrJson)
    {
        var m = PositionInMessage().Match(e.Message);
        return m.Success
            ? Located(e.Message, m.Groups[1].Value, long.Parse(m.Groups[2].ValueSpan), long.Parse(m.Groups[3].ValueSpan), inVcrJson)
            : Located(e.Message, null, null, null, inVcrJson);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"Path: (\S+) \| LineNumber: (\d+) \| BytePositionInLine: (\d+)")]
    private static partial System.Text.RegularExpressions.Regex PositionInMessage();

    /// <summary>
    /// The published executable keeps no framework message texts (UseSystemResourceKeys): a
    /// System.Text.Json error arrives as its resource key and arguments
    /// ("DeserializeUnableToConvertValue, System.Guid"). Those become a sentence again: the
    /// common ones as the framework words them, any other key split into words.
    /// </summary>
    internal static string Readable(string message)
    {
        var m = ResourceKeyForm().Match(message);
        if (!m.Success)
            return message;
        string key = m.Groups[1].Value;
        string[] args = m.Groups[2].Success ? m.Groups[2].Value.Split(", ") : [];
        string Arg(int i) => i < args.Length ? args[i] : "?";
        return key switch
        {
            "DeserializeUnableToConvertValue" => "the JSON value is not of the type this field takes",
            "DeserializationMustSpecifyTypeDiscriminator" => $"a {Arg(0)} needs its \"type\" (volume, region, url or file)",
            "UnrecognizedTypeDiscriminator" => $"unknown \"type\" '{Arg(0)}' (volume, region, url or file)",
            "JsonRequiredPropertiesMissing" => $"{Arg(0)} is missing required fields: {string.Join(", ", args.Skip(1))}",
            "UnmappedJsonProperty" => $"unknown field '{Arg(0)}'",
            _ => Words(key) + (args.Length > 0 ? $" ({string.Join(", ", args)})" : ""),
        };
    }

    private static string Words(string key)
    {
        var sb = new System.Text.StringBuilder(key.Length + 8);
        for (int i = 0; i < key.Length; i++)
        {
            char c = key[i];
            if (i > 0 && char.IsUpper(c))
                sb.Append(' ').Append(char.ToLowerInvariant(c));
            else
                sb.Append(i == 0 ? char.ToUpperInvariant(c) : c);
        }
        return sb.ToString();
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^([A-Z][A-Za-z]+)(?:, (.*))?$")]
    private static partial System.Text.RegularExpressions.Regex ResourceKeyForm();

    private static VcrBodyException Located(string text, string? path, long? line, long? bytePosition, bool inVcrJson)
    {
        // System.Text.Json appends " Path: $.x | LineNumber: 0 | BytePositionInLine: 3." (or, from
        // the reader, " LineNumber: ..."); the position is given separately, 1-based.
        var message = text;
        foreach (var marker in (ReadOnlySpan<string>)[" Path: ", " LineNumber: "])
        {
            var cut = message.IndexOf(marker, StringComparison.Ordinal);
            if (cut >= 0)
                message = message[..cut];
        }
        message = message
            .Replace("Propolis.Standalone.Api.InstanceVcrReplace", "the request body", StringComparison.Ordinal)
            .Replace("Propolis.Crucible.Vcr.VolumeConstructionRequest", "VolumeConstructionRequest", StringComparison.Ordinal)
            .Replace("Propolis.Crucible.Vcr.VolumeRequest", "volume", StringComparison.Ordinal)
            .Replace("Propolis.Crucible.Vcr.RegionRequest", "region", StringComparison.Ordinal)
            .Replace("Propolis.Crucible.Vcr.CrucibleOpts", "opts", StringComparison.Ordinal)
            .Replace("Propolis.Crucible.Vcr.UrlRequest", "url", StringComparison.Ordinal)
            .Replace("Propolis.Crucible.Vcr.FileRequest", "file", StringComparison.Ordinal)
            .TrimEnd();
        message = Readable(message);
        if (path is { Length: > 1 })
            message += $" ({path})";
        return line is { } l
            ? new VcrBodyException(message, l + 1, (bytePosition ?? 0) + 1, inVcrJson)
            : new VcrBodyException(message, inVcrJson: inVcrJson);
    }
}

/// <summary>System.Text.Json metadata for the API, generated at build time (NativeAOT: no
/// reflection); the same naming as the VCR types' own context.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    AllowOutOfOrderMetadataProperties = true,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(InstanceVcrReplace))]
[JsonSerializable(typeof(ReplaceResult))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;

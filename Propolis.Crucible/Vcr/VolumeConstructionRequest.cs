using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Propolis.Crucible.Upstairs;

namespace Propolis.Crucible.Vcr;

/// <summary>
/// crucible-client-types <c>VolumeConstructionRequest</c>: serde's internally tagged enum
/// (<c>"type": "volume" | "url" | "region" | "file"</c>, snake_case fields). Options are written as
/// <c>null</c> and may be missing on input; every other field is required, as serde requires it.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(VolumeRequest), "volume")]
[JsonDerivedType(typeof(UrlRequest), "url")]
[JsonDerivedType(typeof(RegionRequest), "region")]
[JsonDerivedType(typeof(FileRequest), "file")]
public abstract record VolumeConstructionRequest
{
    /// <summary>Every downstairs target in the tree, sub-volumes first (crucible <c>targets()</c>).</summary>
    public virtual IEnumerable<string> Targets() => [];

    public static VolumeConstructionRequest Parse(string json) =>
        JsonSerializer.Deserialize(json, VcrJsonContext.Default.VolumeConstructionRequest)
        ?? throw new JsonException("a volume construction request is an object, not null");

    public string ToJson() => JsonSerializer.Serialize(this, VcrJsonContext.Default.VolumeConstructionRequest);
}

/// <summary><c>Volume { id, block_size, sub_volumes, read_only_parent }</c>.</summary>
public sealed record VolumeRequest : VolumeConstructionRequest
{
    [JsonPropertyOrder(0)]
    public required Guid Id { get; init; }

    [JsonPropertyOrder(1)]
    public required ulong BlockSize { get; init; }

    [JsonPropertyOrder(2)]
    public required IReadOnlyList<VolumeConstructionRequest> SubVolumes { get; init; }

    [JsonPropertyOrder(3)]
    public VolumeConstructionRequest? ReadOnlyParent { get; init; }

    public override IEnumerable<string> Targets() => SubVolumes.SelectMany(s => s.Targets());
}

/// <summary><c>Url { id, block_size, url }</c>.</summary>
public sealed record UrlRequest : VolumeConstructionRequest
{
    [JsonPropertyOrder(0)]
    public required Guid Id { get; init; }

    [JsonPropertyOrder(1)]
    public required ulong BlockSize { get; init; }

    [JsonPropertyOrder(2)]
    public required string Url { get; init; }
}

/// <summary><c>Region { block_size, blocks_per_extent, extent_count, opts, gen }</c>.</summary>
public sealed record RegionRequest : VolumeConstructionRequest
{
    [JsonPropertyOrder(0)]
    public required ulong BlockSize { get; init; }

    [JsonPropertyOrder(1)]
    public required ulong BlocksPerExtent { get; init; }

    [JsonPropertyOrder(2)]
    public required uint ExtentCount { get; init; }

    [JsonPropertyOrder(3)]
    public required CrucibleOpts Opts { get; init; }

    /// <summary>serde renames <c>generation</c> to <c>gen</c>.</summary>
    [JsonPropertyOrder(4)]
    [JsonPropertyName("gen")]
    public required ulong Generation { get; init; }

    public override IEnumerable<string> Targets() => Opts.Target;

    /// <summary>
    /// The upstairs this region describes (crucible <c>Volume::construct</c> for a Region, with
    /// <c>up_main</c>'s TLS context and control server address). Throws
    /// <see cref="ArgumentException"/> for a bad target, key or control address, and
    /// <see cref="Tls.CrucibleTlsException"/> when the TLS files cannot be used; the TLS context
    /// then belongs to the caller.
    /// </summary>
    public UpstairsOptions ToUpstairsOptions() => new()
    {
        Tls = Opts.CertPem is null && Opts.KeyPem is null && Opts.RootCertPem is null
            ? null
            : Opts.CertPem is not null && Opts.KeyPem is not null && Opts.RootCertPem is not null
                ? Tls.CrucibleTlsContext.FromPaths(Opts.CertPem, Opts.KeyPem, Opts.RootCertPem)
                : throw new ArgumentException("opts.cert_pem, opts.key_pem and opts.root_cert_pem must be given together"),
        ControlAddress = Opts.Control is null ? null : ParseAddress(Opts.Control, "control"),
        Targets = Opts.Target.Select(ParseTarget).ToArray(),
        Generation = Generation,
        UpstairsId = Opts.Id,
        EncryptionKey = Opts.Key is null ? null : UpstairsOptions.DecodeKey(Opts.Key),
        ReadOnly = Opts.ReadOnly,
        Lossy = Opts.Lossy,
        FlushTimeout = Opts.FlushTimeout is { } f ? TimeSpan.FromSeconds(f) : UpstairsOptions.DefaultFlushTimeout,
        BlockSize = BlockSize,
        BlocksPerExtent = BlocksPerExtent,
        ExtentCount = ExtentCount,
    };

    internal static IPEndPoint ParseTarget(string t) => ParseAddress(t, "target");

    private static IPEndPoint ParseAddress(string t, string what) =>
        IPEndPoint.TryParse(t, out IPEndPoint? ep) && ep.Port != 0
            ? ep
            : throw new ArgumentException($"{what} '{t}' is not an IP:port socket address");
}

/// <summary><c>File { id, block_size, path }</c>.</summary>
public sealed record FileRequest : VolumeConstructionRequest
{
    [JsonPropertyOrder(0)]
    public required Guid Id { get; init; }

    [JsonPropertyOrder(1)]
    public required ulong BlockSize { get; init; }

    [JsonPropertyOrder(2)]
    public required string Path { get; init; }
}

/// <summary>crucible-client-types <c>CrucibleOpts</c>, fields in declaration order.</summary>
public sealed record CrucibleOpts
{
    public required Guid Id { get; init; }

    /// <summary><c>Vec&lt;SocketAddr&gt;</c>: "IP:port" strings ("[v6]:port" for IPv6).</summary>
    public required IReadOnlyList<string> Target { get; init; }

    public required bool Lossy { get; init; }

    /// <summary><c>Option&lt;f32&gt;</c> seconds.</summary>
    public float? FlushTimeout { get; init; }

    /// <summary>base64 AES-256 key.</summary>
    public string? Key { get; init; }

    public string? CertPem { get; init; }

    public string? KeyPem { get; init; }

    public string? RootCertPem { get; init; }

    /// <summary><c>Option&lt;SocketAddr&gt;</c>: the upstairs control server address.</summary>
    public string? Control { get; init; }

    public required bool ReadOnly { get; init; }

    public bool Equals(CrucibleOpts? other) =>
        other is not null && Id == other.Id && Target.SequenceEqual(other.Target) && Lossy == other.Lossy
        && FlushTimeout == other.FlushTimeout && Key == other.Key && CertPem == other.CertPem && KeyPem == other.KeyPem
        && RootCertPem == other.RootCertPem && Control == other.Control && ReadOnly == other.ReadOnly;

    public override int GetHashCode() => HashCode.Combine(Id, Target.Count, Lossy, Key, ReadOnly);
}

/// <summary>System.Text.Json metadata generated at build time (NativeAOT: no reflection).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    AllowOutOfOrderMetadataProperties = true,
    UseStringEnumConverter = true,
    WriteIndented = true)]
[JsonSerializable(typeof(VolumeConstructionRequest))]
[JsonSerializable(typeof(ReplaceResult))]
public sealed partial class VcrJsonContext : JsonSerializerContext;

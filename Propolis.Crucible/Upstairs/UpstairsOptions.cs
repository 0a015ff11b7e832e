using System.Net;
using Propolis.Crucible.Tls;

namespace Propolis.Crucible.Upstairs;

/// <summary>
/// What an <see cref="Upstairs"/> is built from: crucible's <c>CrucibleOpts</c> (target, key,
/// lossy, flush_timeout, read_only, id) with the generation and the expected region geometry
/// (the VCR's <c>block_size</c>, <c>blocks_per_extent</c>, <c>extent_count</c>).
/// </summary>
public sealed record UpstairsOptions
{
    /// <summary>crucible's <c>flush_timeout</c> default: 0.5 s.</summary>
    public static readonly TimeSpan DefaultFlushTimeout = TimeSpan.FromSeconds(0.5);

    /// <summary>The three downstairs, in client-id order (0, 1, 2).</summary>
    public required IReadOnlyList<IPEndPoint> Targets { get; init; }

    /// <summary>The upstairs generation: at least 1, and above every extent generation the downstairs hold.</summary>
    public required ulong Generation { get; init; }

    /// <summary>The upstairs id (<c>opts.id</c>, the VCR's region id, the standalone's upstairs_id).</summary>
    public Guid UpstairsId { get; init; } = Guid.NewGuid();

    /// <summary>The 32-byte AES-256-GCM-SIV key, or null for an unencrypted volume.</summary>
    public byte[]? EncryptionKey { get; init; }

    public bool ReadOnly { get; init; }

    /// <summary>
    /// <c>lossy</c>: crucible's test option. The real upstairs once skipped sending new jobs at
    /// random and sent them later (reordering work at the downstairs); since crucible#1460 it
    /// only warns "lossy flag no longer changes upstairs behavior", because the option is kept
    /// in serialized VCRs. This upstairs does the same: a warning at activation, no other effect.
    /// (The downstairs' <c>--lossy</c> still delays and defers work.)
    /// </summary>
    public bool Lossy { get; init; }

    /// <summary>TLS to the downstairs (<c>cert_pem</c>, <c>key_pem</c>, <c>root_cert_pem</c>), or null for plain TCP.
    /// The upstairs uses it and does not dispose it.</summary>
    public CrucibleTlsContext? Tls { get; init; }

    /// <summary><c>control</c>: where to serve the upstairs control HTTP API (GET /info, GET /work), or null.</summary>
    public IPEndPoint? ControlAddress { get; init; }

    /// <summary>Interval of the automatic flush (<c>flush_timeout</c>); zero disables it.</summary>
    public TimeSpan FlushTimeout { get; init; } = DefaultFlushTimeout;

    /// <summary>Expected block size in bytes; 0 takes the first downstairs' value.</summary>
    public ulong BlockSize { get; init; }

    /// <summary>Expected blocks per extent; 0 takes the first downstairs' value.</summary>
    public ulong BlocksPerExtent { get; init; }

    /// <summary>Expected number of extents; 0 takes the first downstairs' value.</summary>
    public uint ExtentCount { get; init; }

    /// <summary>How long one TCP connect may take (crucible: 10 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>First delay before a reconnect; doubled after each failure up to <see cref="MaxReconnectDelay"/>.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Longest delay between reconnect attempts (crucible's CLIENT_RECONNECT_DELAY: 10 s).</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Ruok every this often on an idle connection (crucible's PING_INTERVAL: 5 s).</summary>
    public TimeSpan PingInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A connection that sends nothing for this long is dropped (crucible's CLIENT_TIMEOUT: 45 s).</summary>
    public TimeSpan InactivityTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>A downstairs that is offline with more than this many jobs waiting for it is faulted
    /// (crucible's IO_OUTSTANDING_MAX_JOBS: 1000).</summary>
    public int MaxOutstandingJobs { get; init; } = 1000;

    /// <summary>... or with more than this many bytes of writes waiting (IO_OUTSTANDING_MAX_BYTES: 50 MiB).</summary>
    public long MaxOutstandingBytes { get; init; } = 50L << 20;

    /// <summary>Throws <see cref="ArgumentException"/> naming what is wrong.</summary>
    public void Validate()
    {
        if (Targets is null || Targets.Count != 3)
        {
            throw new ArgumentException($"an upstairs needs exactly 3 targets, not {Targets?.Count ?? 0}");
        }
        if (Targets.Distinct().Count() != 3)
        {
            throw new ArgumentException($"the 3 targets must differ: {string.Join(", ", Targets)}");
        }
        if (Generation == 0)
        {
            throw new ArgumentException("generation 0 is illegal: use 1 or more");
        }
        if (EncryptionKey is not null && EncryptionKey.Length != 32)
        {
            throw new ArgumentException($"the encryption key is {EncryptionKey.Length} bytes; AES-256-GCM-SIV needs 32");
        }
        if (BlockSize != 0 && (!ulong.IsPow2(BlockSize) || BlockSize < 512 || BlockSize > 32768))
        {
            throw new ArgumentException($"block_size {BlockSize} is not a power of two from 512 to 32768");
        }
        if (FlushTimeout < TimeSpan.Zero)
        {
            throw new ArgumentException("flush_timeout must not be negative");
        }
    }

    /// <summary>Decodes a base64 <c>key</c> / <c>encryption_key</c>; throws <see cref="ArgumentException"/> when it is not 32 bytes of base64.</summary>
    public static byte[] DecodeKey(string base64)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            throw new ArgumentException("the encryption key is not valid base64 (make one with: openssl rand -base64 32)");
        }
        if (key.Length != 32)
        {
            throw new ArgumentException($"the encryption key decodes to {key.Length} bytes; AES-256-GCM-SIV needs 32 (openssl rand -base64 32)");
        }
        return key;
    }
}

/// <summary>A failure the user must act on: activation refused, region mismatch, deactivated.</summary>
public sealed class UpstairsException(string message) : Exception(message);

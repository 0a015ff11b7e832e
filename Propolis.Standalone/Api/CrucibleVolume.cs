using Propolis.Core.Lifecycle;
using Propolis.Crucible.Upstairs;
using Propolis.Crucible.Vcr;
using Propolis.Standalone.Config;
using Propolis.Standalone.Machine;

namespace Propolis.Standalone.Api;

/// <summary>
/// A Crucible volume of the running VM, as the management API sees it: its id (the upstairs id),
/// its <c>[block_dev.NAME]</c>, and the volume construction request it currently answers to, which a
/// replacement is compared with (propolis-server keeps this VCR in its instance spec and replaces
/// it there once crucible has accepted a replacement).
/// </summary>
internal sealed class CrucibleVolume
{
    private readonly Lock _lock = new();
    private readonly Func<VolumeConstructionRequest, VolumeConstructionRequest, ReplaceResult> _targetReplace;
    private VolumeRequest _current;

    /// <param name="targetReplace">crucible's <c>Volume::target_replace(original, replacement)</c>:
    /// checks the pair and starts the replacement, or throws <see cref="ReplaceRequestInvalidException"/>.</param>
    public CrucibleVolume(string blockDev, VolumeRequest current,
        Func<VolumeConstructionRequest, VolumeConstructionRequest, ReplaceResult> targetReplace)
    {
        BlockDev = blockDev;
        _current = current;
        _targetReplace = targetReplace;
    }

    /// <summary>The volume id: the upstairs id (<c>upstairs_id</c>, or the random one it was given).</summary>
    public Guid Id => _current.Id;

    public string BlockDev { get; }

    public VolumeRequest Current
    {
        get
        {
            lock (_lock)
                return _current;
        }
    }

    /// <summary>
    /// crucible <c>Volume::target_replace</c> with the current VCR as the original; on success the
    /// replacement becomes the current VCR. A bare <c>region</c> (the request the real
    /// propolis-standalone builds from its TOML) is compared with the volume's one sub-volume.
    /// </summary>
    /// <exception cref="ReplaceRequestInvalidException">The replacement breaks a rule (the message names it).</exception>
    public ReplaceResult Replace(VolumeConstructionRequest replacement)
    {
        lock (_lock)
        {
            VolumeConstructionRequest original = _current;
            VolumeRequest? next = replacement as VolumeRequest;
            if (replacement is RegionRequest region && _current is { SubVolumes: [RegionRequest only], ReadOnlyParent: null })
            {
                original = only;
                next = _current with { SubVolumes = [region] };
            }
            ReplaceResult result;
            try
            {
                result = _targetReplace(original, replacement);
            }
            catch (ArgumentException e)
            {
                // A target that is not an IP:port socket address.
                throw new ReplaceRequestInvalidException(e.Message);
            }
            if (next is not null)
                _current = next;
            return result;
        }
    }

    /// <summary>
    /// The request propolis-standalone builds from a <c>type = "crucible"</c> block_dev: a volume
    /// (id = upstairs id, the block size) of one region with every TOML key in its options, no
    /// read-only parent. (The real standalone builds the region alone; propolis-server's disks are
    /// volumes, and that is what its VCR replacement documentation sends.)
    /// </summary>
    public static VolumeRequest RequestFor(CrucibleBlockDev c, Guid upstairsId) => new()
    {
        Id = upstairsId,
        BlockSize = (ulong)c.BlockSize,
        SubVolumes =
        [
            new RegionRequest
            {
                BlockSize = (ulong)c.BlockSize,
                BlocksPerExtent = c.BlocksPerExtent,
                ExtentCount = c.ExtentCount,
                Generation = c.Generation,
                Opts = new CrucibleOpts
                {
                    Id = upstairsId,
                    Target = [.. c.Targets.Select(t => t.ToString())],
                    Lossy = c.Lossy,
                    FlushTimeout = c.FlushTimeoutSeconds is { } s ? (float)s : null,
                    Key = c.EncryptionKey is { } k ? Convert.ToBase64String(k) : null,
                    CertPem = c.Tls?.CertPem,
                    KeyPem = c.Tls?.KeyPem,
                    RootCertPem = c.Tls?.RootCertPem,
                    Control = c.ControlAddress?.ToString(),
                    ReadOnly = c.ReadOnly,
                },
            },
        ],
        ReadOnlyParent = null,
    };

    /// <summary>The Crucible volumes among a machine's devices (one per crucible block_dev in use).</summary>
    public static IReadOnlyList<CrucibleVolume> FromDevices(IEnumerable<ILifecycle> devices)
    {
        var volumes = new List<CrucibleVolume>();
        var seen = new HashSet<Upstairs>();
        foreach (var disk in devices.OfType<StorageDevices.Disk>())
        {
            if (disk.Backend is not CrucibleBlockBackend backend || disk.BlockDev is not CrucibleBlockDev config
                || !seen.Add(backend.Upstairs))
                continue;
            volumes.Add(For(config, backend.Upstairs));
        }
        return volumes;
    }

    /// <summary>The volume of a crucible block_dev whose upstairs is <paramref name="upstairs"/>:
    /// replacements go to crucible's <c>target_replace</c> on it.</summary>
    public static CrucibleVolume For(CrucibleBlockDev config, Upstairs upstairs) =>
        new(config.Name, RequestFor(config, upstairs.UpstairsId),
            (original, replacement) => VcrReplacement.TargetReplace(upstairs, original, replacement));
}

using System.Net;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Upstairs;

namespace Propolis.Crucible.Vcr;

/// <summary>A replacement VCR was refused: crucible's <c>CrucibleError::ReplaceRequestInvalid</c>, with its text.</summary>
public sealed class ReplaceRequestInvalidException(string message) : Exception(message)
{
    public CrucibleError Error => CrucibleError.WithDetail(CrucibleErrorKind.ReplaceRequestInvalid, Message);
}

/// <summary>What comparing an original VCR with a replacement found (crucible <c>ReplacementRequestCheck</c>).</summary>
/// <param name="Old">The target being replaced; null when the replacement only raises the generation.</param>
/// <param name="New">The target replacing it.</param>
public readonly record struct ReplacementCheck(string? Old, string? New)
{
    public bool MatchesOriginal => Old is null;
}

/// <summary>
/// The replacement rules of crucible <c>upstairs/src/volume.rs</c> (<c>compare_vcr_for_update</c>,
/// <c>compare_vcr_for_replacement</c>, <c>compare_vcr_region_for_replacement</c>,
/// <c>target_replace</c>).
/// </summary>
/// <remarks>
/// Volumes must have the same id, block size and number of sub-volumes; regions the same block
/// size, blocks per extent, extent count and every option but the targets, a generation not
/// lower than the original's, and at most one target changed. Across the whole tree at most one
/// target may change. Two identical VCRs are refused ("The VCRs have no difference"), as in
/// crucible; a VCR that only raises the sub-volume generation matches the original
/// (<see cref="ReplaceResult.VcrMatches"/>, nothing to do). A read-only parent may disappear
/// from the replacement but not appear, and may not be the only thing with a raised generation.
/// </remarks>
public static class VcrReplacement
{
    private enum Delta
    {
        Same,
        Generation,
        Target,
    }

    private abstract record Compare;

    private sealed record VolumeCompare(List<Compare> Subs, Compare ReadOnlyParent) : Compare;

    private sealed record RegionCompare(Delta Delta, string? Old, string? New) : Compare;

    private sealed record NewMissing : Compare;

    /// <summary>Compares; throws <see cref="ReplaceRequestInvalidException"/> when the replacement is not valid.</summary>
    public static ReplacementCheck Check(VolumeConstructionRequest original, VolumeConstructionRequest replacement)
    {
        Compare result = CompareVcr(original, replacement);
        var targets = new List<RegionCompare>();
        bool allSame = true;
        var parts = new Queue<Compare>();
        parts.Enqueue(result);
        while (parts.TryDequeue(out Compare? part))
        {
            switch (part)
            {
                case VolumeCompare v:
                    foreach (Compare s in v.Subs)
                    {
                        parts.Enqueue(s);
                    }
                    parts.Enqueue(v.ReadOnlyParent);
                    break;
                case RegionCompare { Delta: Delta.Generation }:
                    allSame = false;
                    break;
                case RegionCompare { Delta: Delta.Target } t:
                    targets.Add(t);
                    allSame = false;
                    break;
            }
        }
        if (targets.Count > 1)
        {
            throw new ReplaceRequestInvalidException("Multiple target changes");
        }
        if (allSame)
        {
            throw new ReplaceRequestInvalidException("The VCRs have no difference");
        }
        switch (result)
        {
            case VolumeCompare v:
                if (targets.Count == 0)
                {
                    if (v.Subs.Count > 0 && AllSame(v.Subs[0]))
                    {
                        throw new ReplaceRequestInvalidException("ROP has generation bump!");
                    }
                    return new ReplacementCheck(null, null);
                }
                foreach (Compare sc in v.Subs)
                {
                    if (sc is not RegionCompare)
                    {
                        throw new ReplaceRequestInvalidException($"Unsupported multi level CompareResult {sc}");
                    }
                }
                return new ReplacementCheck(targets[0].Old, targets[0].New);
            case RegionCompare r:
                return r.Delta switch
                {
                    Delta.Generation => new ReplacementCheck(null, null),
                    Delta.Target => new ReplacementCheck(r.Old, r.New),
                    _ => throw new ReplaceRequestInvalidException("The VCRs have no difference"),
                };
            default:
                throw new ReplaceRequestInvalidException("Replacement missing when comparing to replace");
        }
    }

    /// <summary>
    /// crucible <c>Volume::target_replace</c>: checks the pair and, for a target change, asks
    /// <paramref name="upstairs"/> to replace the downstairs (which starts live repair onto the new one).
    /// </summary>
    public static ReplaceResult TargetReplace(Upstairs.Upstairs upstairs, VolumeConstructionRequest original, VolumeConstructionRequest replacement)
    {
        ReplacementCheck check = Check(original, replacement);
        if (check.MatchesOriginal)
        {
            return ReplaceResult.VcrMatches;
        }
        IPEndPoint old = RegionRequest.ParseTarget(check.Old!);
        IPEndPoint @new = RegionRequest.ParseTarget(check.New!);
        ReplaceResult r;
        try
        {
            r = upstairs.ReplaceDownstairs(old, @new);
        }
        catch (UpstairsException e)
        {
            throw new ReplaceRequestInvalidException($"Replace downstairs failed for {upstairs.UpstairsId} with {e.Message}");
        }
        if (r == ReplaceResult.Missing)
        {
            throw new ReplaceRequestInvalidException($"Volume {upstairs.UpstairsId} Can't locate {check.Old} to replace");
        }
        return r;
    }

    private static bool AllSame(Compare c) => c switch
    {
        VolumeCompare v => v.Subs.All(AllSame) && AllSame(v.ReadOnlyParent),
        RegionCompare r => r.Delta == Delta.Same,
        _ => true,
    };

    private static Compare CompareVcr(VolumeConstructionRequest o, VolumeConstructionRequest n)
    {
        switch (o, n)
        {
            case (VolumeRequest ov, VolumeRequest nv):
                if (ov.Id != nv.Id)
                {
                    throw new ReplaceRequestInvalidException($"ID mismatch {ov.Id} vs. {nv.Id}");
                }
                if (ov.BlockSize != nv.BlockSize)
                {
                    throw new ReplaceRequestInvalidException($"block_size mismatch {ov.BlockSize} vs. {nv.BlockSize}");
                }
                if (ov.SubVolumes.Count != nv.SubVolumes.Count)
                {
                    throw new ReplaceRequestInvalidException($"subvolume len mismatch {ov.SubVolumes.Count} vs. {nv.SubVolumes.Count}");
                }
                var subs = new List<Compare>();
                for (int i = 0; i < ov.SubVolumes.Count; i++)
                {
                    subs.Add(CompareVcr(ov.SubVolumes[i], nv.SubVolumes[i]));
                }
                Compare rop = (ov.ReadOnlyParent, nv.ReadOnlyParent) switch
                {
                    (_, null) => new NewMissing(),
                    (null, _) => throw new ReplaceRequestInvalidException("VCR added where there should not be one"),
                    ({ } a, { } b) => CompareVcr(a, b),
                };
                return new VolumeCompare(subs, rop);
            case (RegionRequest or, RegionRequest nr):
                return CompareRegion(or, nr);
            default:
                throw new ReplaceRequestInvalidException("Cannot replace VCR");
        }
    }

    private static RegionCompare CompareRegion(RegionRequest o, RegionRequest n)
    {
        if (o == n)
        {
            return new RegionCompare(Delta.Same, null, null);
        }
        if (o.BlockSize != n.BlockSize)
        {
            throw new ReplaceRequestInvalidException("sub_volume block_size mismatch");
        }
        if (o.BlocksPerExtent != n.BlocksPerExtent)
        {
            throw new ReplaceRequestInvalidException("sub_volume blocks_per_extent mismatch");
        }
        if (o.ExtentCount != n.ExtentCount)
        {
            throw new ReplaceRequestInvalidException("sub_volume extent_count mismatch");
        }
        if (n.Generation < o.Generation)
        {
            throw new ReplaceRequestInvalidException($"New sub_volume generation too low {o.Generation} vs. {n.Generation}");
        }
        CrucibleOpts oo = o.Opts, no = n.Opts;
        if (oo.Id != no.Id)
        {
            throw new ReplaceRequestInvalidException($"sub_volume opts id invalid {oo.Id} vs. {no.Id}");
        }
        if (oo.Lossy != no.Lossy)
        {
            throw new ReplaceRequestInvalidException($"sub_volume opts lossy invalid {oo.Lossy} vs. {no.Lossy}");
        }
        if (oo.FlushTimeout != no.FlushTimeout)
        {
            throw new ReplaceRequestInvalidException($"sub_volume opts flush_timeout mismatch {oo.FlushTimeout} vs. {no.FlushTimeout}");
        }
        if (oo.Key != no.Key)
        {
            throw new ReplaceRequestInvalidException("sub_volume opts key invalid");
        }
        if (oo.CertPem != no.CertPem)
        {
            throw new ReplaceRequestInvalidException("sub_volume opts cert_pem invalid");
        }
        if (oo.KeyPem != no.KeyPem)
        {
            throw new ReplaceRequestInvalidException("sub_volume opts key_pem invalid");
        }
        if (oo.RootCertPem != no.RootCertPem)
        {
            throw new ReplaceRequestInvalidException("sub_volume opts root_cert_pem invalid");
        }
        if (oo.Control != no.Control)
        {
            throw new ReplaceRequestInvalidException($"sub_volume opts control invalid {oo.Control} vs. {no.Control}");
        }
        if (oo.ReadOnly != no.ReadOnly)
        {
            throw new ReplaceRequestInvalidException($"sub_volume opts read_only invalid {oo.ReadOnly} vs. {no.ReadOnly}");
        }
        if (oo.Target.Count != 3 || no.Target.Count != 3)
        {
            throw new ReplaceRequestInvalidException($"sub_volume needs 3 targets, not {oo.Target.Count} and {no.Target.Count}");
        }
        int changed = -1;
        for (int cid = 0; cid < 3; cid++)
        {
            if (!SameTarget(oo.Target[cid], no.Target[cid]))
            {
                if (changed >= 0)
                {
                    throw new ReplaceRequestInvalidException(
                        $"sub_volume multiple different targets: [{string.Join(", ", oo.Target)}] vs. [{string.Join(", ", no.Target)}]");
                }
                changed = cid;
            }
        }
        return changed >= 0
            ? new RegionCompare(Delta.Target, oo.Target[changed], no.Target[changed])
            : new RegionCompare(Delta.Generation, null, null);
    }

    /// <summary>SocketAddr equality: the same address and port, however they are spelt.</summary>
    private static bool SameTarget(string a, string b) =>
        IPEndPoint.TryParse(a, out IPEndPoint? x) && IPEndPoint.TryParse(b, out IPEndPoint? y) ? x.Equals(y) : a == b;
}

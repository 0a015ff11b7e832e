using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Upstairs;

/// <summary>One extent's committed state as reported by ExtentVersions (crucible <c>mend.rs</c>
/// <c>ExtentMetadata</c>). Ordered by generation, then flush number, then dirty: the field order
/// the real upstairs relies on to pick a repair source.</summary>
public readonly record struct ExtentMetadata(ulong Generation, ulong Flush, bool Dirty) : IComparable<ExtentMetadata>
{
    public int CompareTo(ExtentMetadata other)
    {
        int c = Generation.CompareTo(other.Generation);
        if (c != 0)
        {
            return c;
        }
        c = Flush.CompareTo(other.Flush);
        return c != 0 ? c : Dirty.CompareTo(other.Dirty);
    }

    public override string ToString() => $"(gen {Generation}, flush {Flush}, dirty {Dirty})";
}

/// <summary>An extent to repair: copy it from <see cref="Source"/> to every client in <see cref="Destinations"/>
/// (crucible <c>ExtentFix</c>).</summary>
public sealed record ExtentFix(uint Extent, int Source, IReadOnlyList<int> Destinations);

/// <summary>
/// Reconciliation planning (crucible <c>mend.rs</c> <c>DownstairsMend</c> and
/// <c>downstairs.rs</c> <c>convert_rc_to_messages</c>).
/// </summary>
public static class Reconciliation
{
    /// <summary>
    /// The extents that need repair: those where any downstairs is dirty or the three differ.
    /// The source is the downstairs with the highest (generation, flush, dirty), the lowest
    /// client id among equals; the destinations are the others that differ from it, or all
    /// others when the source is dirty.
    /// </summary>
    public static List<ExtentFix> Plan(IReadOnlyList<ExtentMetadata[]> meta)
    {
        int extents = meta[0].Length;
        foreach (ExtentMetadata[] m in meta)
        {
            if (m.Length != extents)
            {
                throw new UpstairsException($"the downstairs report different extent counts ({string.Join(", ", meta.Select(x => x.Length))})");
            }
        }
        var fixes = new List<ExtentFix>();
        for (int e = 0; e < extents; e++)
        {
            ExtentMetadata baseValue = meta[0][e];
            bool anyDiff = meta.Any(m => m[e].Dirty || m[e] != baseValue);
            if (!anyDiff)
            {
                continue;
            }
            int source = 0;
            for (int c = 1; c < meta.Count; c++)
            {
                if (meta[c][e].CompareTo(meta[source][e]) > 0)
                {
                    source = c;
                }
            }
            ExtentMetadata s = meta[source][e];
            var dest = new List<int>();
            for (int c = 0; c < meta.Count; c++)
            {
                if (c != source && (s.Dirty || meta[c][e] != s))
                {
                    dest.Add(c);
                }
            }
            fixes.Add(new ExtentFix((uint)e, source, dest));
        }
        return fixes;
    }

    /// <summary>
    /// The message sequence of the repair: for each extent, ExtentFlush of the source with the
    /// next flush number and generation, ExtentClose on all, ExtentRepair to the destinations,
    /// ExtentReopen on all; repair ids count from 0.
    /// </summary>
    public static List<Message> Messages(IReadOnlyList<ExtentFix> fixes, ulong maxFlush, ulong maxGen,
        IReadOnlyList<SocketAddr> repairAddresses)
    {
        var list = new List<Message>(fixes.Count * 4);
        ulong id = 0;
        foreach (ExtentFix f in fixes)
        {
            var eid = new ExtentId(f.Extent);
            list.Add(new Message.ExtentFlush(new ReconciliationId(id++), eid, new ClientId((byte)f.Source), maxFlush, maxGen));
            list.Add(new Message.ExtentClose(new ReconciliationId(id++), eid));
            list.Add(new Message.ExtentRepair(new ReconciliationId(id++), eid, new ClientId((byte)f.Source),
                repairAddresses[f.Source], f.Destinations.Select(d => new ClientId((byte)d)).ToArray()));
            list.Add(new Message.ExtentReopen(new ReconciliationId(id++), eid));
        }
        return list;
    }

    /// <summary>Whether client <paramref name="client"/> takes part in reconciliation step <paramref name="m"/>.</summary>
    public static bool Concerns(Message m, int client) => m switch
    {
        Message.ExtentFlush f => f.ClientId.Value == client,
        Message.ExtentRepair r => r.DestClients.AsSpan().Contains(new ClientId((byte)client)),
        _ => true,
    };
}

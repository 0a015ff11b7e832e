using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Upstairs;

/// <summary>The kinds of upstairs job (crucible <c>IOop</c>).</summary>
internal enum JobKind : byte
{
    Read,
    Write,
    WriteUnwritten,
    Flush,
    Barrier,
    /// <summary>Live repair step 1: ExtentLiveFlushClose to the good downstairs, ExtentLiveClose to the one under repair.</summary>
    LiveClose,
    /// <summary>Live repair step 2: ExtentLiveRepair to the one under repair, ExtentLiveNoOp to the others.</summary>
    LiveRepair,
    /// <summary>Live repair step 3: ExtentLiveNoOp to all.</summary>
    LiveNoOp,
    /// <summary>Live repair step 4: ExtentLiveReopen to all.</summary>
    LiveReopen,
}

/// <summary>Where one job stands on one downstairs (crucible <c>IOState</c>).</summary>
internal enum JobClientState : byte
{
    /// <summary>Not sent: the downstairs is offline and gets it on replay.</summary>
    New,
    InProgress,
    Done,
    Error,
    /// <summary>Never sent: the downstairs is faulted, or under live repair beyond the job's extents.</summary>
    Skipped,
}

/// <summary>A job's state on each of the three downstairs, held inline in the job.</summary>
[System.Runtime.CompilerServices.InlineArray(3)]
internal struct ClientStates
{
    private JobClientState _first;
}

/// <summary>
/// One job (crucible <c>DownstairsIO</c>): its id, dependencies, block range, data and per-downstairs
/// state. Write data is held (encrypted) until the job retires, for replay to a downstairs that
/// comes back.
/// </summary>
internal sealed class IoJob
{
    public IoJob(JobId id, JobKind kind, ulong start, ulong count, JobId[] deps)
    {
        Id = id;
        Kind = kind;
        Start = start;
        Count = count;
        Dependencies = deps;
    }

    public JobId Id { get; }

    public JobKind Kind { get; }

    /// <summary>First block (absolute); for flush and barrier 0 with <see cref="Count"/> ulong.MaxValue.</summary>
    public ulong Start { get; }

    public ulong Count { get; }

    public JobId[] Dependencies { get; }

    /// <summary>Per downstairs, by client id (inline: no array per job).</summary>
    public ClientStates State;

    /// <summary>Write data: <see cref="Length"/> bytes of a rented array.</summary>
    public byte[]? Buffer;

    public int Length;

    public BlockContext[]? Contexts;

    public ulong FlushNumber;

    /// <summary>Live repair: the extent, the source client and its repair address.</summary>
    public uint Extent;

    public int RepairSource;

    public SocketAddr RepairAddress;

    /// <summary>Live repair: the client being repaired.</summary>
    public int RepairTarget = -1;

    public bool Acked;

    /// <summary>Sent again to a downstairs that came back (crucible <c>DownstairsIO::replay</c>).</summary>
    public bool Replay;

    /// <summary>A write done on one downstairs only, waiting for live repair to copy it to a second.</summary>
    public bool AwaitingRepair;

    /// <summary>Whom to tell; null once told.</summary>
    public UpstairsIo? Io;

    /// <summary>Live repair: completed when the job is finished on every downstairs.</summary>
    public TaskCompletionSource? Finished;

    /// <summary>A flush or barrier: <c>[Id]</c>, the dependency array of every job that depends on it alone.</summary>
    public JobId[]? AsDependency;

    /// <summary>The message sent to every downstairs that needs no variant of its own (built once, on first send).</summary>
    public Message? Message;

    /// <summary>The first error a downstairs reported for this job.</summary>
    public CrucibleError? FirstError;

    public bool IsWrite => Kind is JobKind.Write or JobKind.WriteUnwritten;

    public bool IsFlushOrBarrier => Kind is JobKind.Flush or JobKind.Barrier;

    public bool IsLiveRepair => Kind >= JobKind.LiveClose;

    public bool Overlaps(ulong start, ulong count) =>
        Start < start + count && start < Start + Count;

    public int CountIn(JobClientState s)
    {
        int n = 0;
        foreach (JobClientState x in State)
        {
            n += x == s ? 1 : 0;
        }
        return n;
    }

    public bool AllTerminal
    {
        get
        {
            foreach (JobClientState x in State)
            {
                if (x is JobClientState.New or JobClientState.InProgress)
                {
                    return false;
                }
            }
            return true;
        }
    }

    public override string ToString() => $"{Id} {Kind} [{State[0]},{State[1]},{State[2]}]";
}

/// <summary>
/// A guest request given to the <see cref="Upstairs"/>: it fills write data, receives read data and
/// is told the result, each exactly once, on an upstairs thread. Subclass and reuse (the block
/// backend keeps one per queue slot), so a request allocates no handle of its own.
/// </summary>
public abstract class UpstairsIo
{
    /// <summary>Write: copy the data to write into <paramref name="destination"/> (whole blocks).</summary>
    protected internal virtual void FillWrite(Span<byte> destination)
    {
    }

    /// <summary>Read: the validated (decrypted) data of all the requested blocks.</summary>
    protected internal virtual void ReadData(ReadOnlySpan<byte> data)
    {
    }

    /// <summary>The result: null for success.</summary>
    protected internal abstract void Completed(CrucibleError? error);
}

/// <summary>
/// The jobs not yet retired, in id order (crucible <c>ActiveJobs</c>, a BTreeMap): a sorted list, as
/// jobs arrive almost always in id order (live repair reserves ids it enqueues later) and retire
/// from the front. Adding is an append in steady state and allocates nothing once the list has
/// grown; lookups are binary searches.
/// </summary>
internal sealed class JobTable
{
    private readonly List<IoJob> _list = new();

    public int Count => _list.Count;

    /// <summary>In id order. Not to be changed while enumerated.</summary>
    public List<IoJob> Values => _list;

    public void Add(IoJob job)
    {
        ulong id = job.Id.Value;
        int at = _list.Count;
        while (at > 0 && _list[at - 1].Id.Value > id)
        {
            at--;
        }
        if (at > 0 && _list[at - 1].Id.Value == id)
        {
            throw new ArgumentException($"job {id} is already queued");
        }
        _list.Insert(at, job);
    }

    public bool TryGetValue(ulong id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IoJob? job)
    {
        int lo = 0, hi = _list.Count - 1;
        while (lo <= hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            ulong v = _list[mid].Id.Value;
            if (v == id)
            {
                job = _list[mid];
                return true;
            }
            if (v < id)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        job = null;
        return false;
    }

    /// <summary>The first <paramref name="count"/> jobs (the oldest) leave the table.</summary>
    public void RemoveFirst(int count) => _list.RemoveRange(0, count);

    public void Clear() => _list.Clear();
}

using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Propolis.Crucible.Http;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Upstairs;

/// <summary>
/// One downstairs' state as the control API shows it: crucible's serializable <c>DsState</c>
/// (<c>{"type":"connecting","value":{"mode","state":{"type"}}}</c>, <c>{"type":"active"}</c>,
/// <c>{"type":"live_repair"}</c>, <c>{"type":"stopping","value":{"type":…}}</c>).
/// </summary>
public readonly record struct DownstairsControlState(ClientPhase Phase, ConnectionMode Mode)
{
    /// <summary>crucible <c>ConnectionMode</c> in snake case.</summary>
    public string ModeName => Mode switch
    {
        ConnectionMode.New => "new",
        ConnectionMode.Offline => "offline",
        ConnectionMode.Faulted => "faulted",
        _ => "replaced",
    };

    /// <summary>crucible <c>NegotiationState</c> for a downstairs still connecting, else null.</summary>
    public string? NegotiationState => Phase switch
    {
        // Disconnected: the client task is connecting again (crucible NegotiationState::Start).
        ClientPhase.Disconnected or ClientPhase.WaitYesItsMe => "start",
        ClientPhase.WaitNowActive => "wait_for_promote",
        ClientPhase.WaitRegionInfo => "wait_for_region_info",
        ClientPhase.WaitExtentVersions => "get_extent_versions",
        ClientPhase.WaitQuorum => "wait_quorum",
        ClientPhase.Reconcile => "reconcile",
        ClientPhase.LiveRepairReady => "live_repair_ready",
        _ => null,
    };

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        switch (Phase)
        {
            case ClientPhase.Active:
                w.WriteString("type", "active");
                break;
            case ClientPhase.LiveRepair:
                w.WriteString("type", "live_repair");
                break;
            case ClientPhase.Stopped:
                // Stopped only when the upstairs deactivated or failed (crucible ClientStopReason::Deactivated / Disabled).
                w.WriteString("type", "stopping");
                w.WriteStartObject("value");
                w.WriteString("type", "deactivated");
                w.WriteEndObject();
                break;
            default:
                w.WriteString("type", "connecting");
                w.WriteStartObject("value");
                w.WriteString("mode", ModeName);
                w.WriteStartObject("state");
                w.WriteString("type", NegotiationState);
                w.WriteEndObject();
                w.WriteEndObject();
                break;
        }
        w.WriteEndObject();
    }
}

/// <summary>crucible control.rs <c>UpstairsStats</c>, the body of <c>GET /info</c>.</summary>
public sealed record UpstairsStats(
    UpstairsState State,
    DownstairsControlState[] DsState,
    int UpJobs,
    int DsJobs,
    int ReconcileDone,
    int ReconcileNeeded,
    int[] ExtentsRepaired,
    int[] ExtentsConfirmed,
    long?[] ExtentLimit,
    int[] LiveRepairCompleted,
    int[] LiveRepairAborted)
{
    /// <summary>crucible <c>UpState</c>: after a deactivation the real upstairs is Initializing again.</summary>
    public string StateName => State switch
    {
        UpstairsState.Active => "active",
        _ => "initializing",
    };

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("state", StateName);
        w.WriteStartArray("ds_state");
        foreach (DownstairsControlState s in DsState)
        {
            s.WriteTo(w);
        }
        w.WriteEndArray();
        w.WriteNumber("up_jobs", UpJobs);
        w.WriteNumber("ds_jobs", DsJobs);
        w.WriteNumber("reconcile_done", ReconcileDone);
        w.WriteNumber("reconcile_needed", ReconcileNeeded);
        WriteArray(w, "extents_repaired", ExtentsRepaired);
        WriteArray(w, "extents_confirmed", ExtentsConfirmed);
        w.WriteStartArray("extent_limit");
        foreach (long? l in ExtentLimit)
        {
            if (l is { } v)
            {
                w.WriteNumberValue(v);
            }
            else
            {
                w.WriteNullValue();
            }
        }
        w.WriteEndArray();
        WriteArray(w, "live_repair_completed", LiveRepairCompleted);
        WriteArray(w, "live_repair_aborted", LiveRepairAborted);
        w.WriteEndObject();
    }

    private static void WriteArray(Utf8JsonWriter w, string name, int[] values)
    {
        w.WriteStartArray(name);
        foreach (int v in values)
        {
            w.WriteNumberValue(v);
        }
        w.WriteEndArray();
    }
}

/// <summary>crucible lib.rs <c>WorkSummary</c>: one job of <c>GET /work</c>.</summary>
public sealed record WorkSummary(ulong Id, bool Replay, string JobType, ulong NumBlocks, JobId[] Deps, bool Acked, string[] State)
{
    private static readonly string[][] s_states = BuildStates();

    internal static WorkSummary Of(IoJob j) => new(j.Id.Value, j.Replay, JobTypeName(j.Kind),
        j.IsLiveRepair ? j.Extent : j.IsFlushOrBarrier ? 0 : j.Count, j.Dependencies, j.Acked,
        s_states[Index(j.State)]);

    /// <summary>crucible <c>IOop::ioop_summary</c> names.</summary>
    internal static string JobTypeName(JobKind k) => k switch
    {
        JobKind.Read => "Read",
        JobKind.Write => "Write",
        JobKind.WriteUnwritten => "WriteU",
        JobKind.Flush => "Flush",
        JobKind.Barrier => "Barrier",
        JobKind.LiveClose => "FClose",
        JobKind.LiveRepair => "Repair",
        JobKind.LiveNoOp => "NoOp",
        _ => "Reopen",
    };

    /// <summary>crucible <c>IOState</c>'s Display: a job not yet sent to an offline downstairs is
    /// in progress there in the real upstairs (it is replayed), so both show as "Sent".</summary>
    private static string StateName(JobClientState s) => s switch
    {
        JobClientState.New or JobClientState.InProgress => "Sent",
        JobClientState.Done => "Done",
        JobClientState.Skipped => "Skip",
        _ => " Err",
    };

    private const int StateCount = 5;

    private static int Index(in ClientStates s) => ((int)s[0] * StateCount + (int)s[1]) * StateCount + (int)s[2];

    private static string[][] BuildStates()
    {
        var all = new string[StateCount * StateCount * StateCount][];
        for (int i = 0; i < all.Length; i++)
        {
            all[i] = new[]
            {
                StateName((JobClientState)(i / (StateCount * StateCount))),
                StateName((JobClientState)(i / StateCount % StateCount)),
                StateName((JobClientState)(i % StateCount)),
            };
        }
        return all;
    }

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("id", Id);
        w.WriteBoolean("replay", Replay);
        w.WriteString("job_type", JobType);
        w.WriteNumber("num_blocks", NumBlocks);
        w.WriteStartArray("deps");
        foreach (JobId d in Deps)
        {
            w.WriteNumberValue(d.Value);
        }
        w.WriteEndArray();
        w.WriteString("ack_status", Acked ? "acked" : "not_acked");
        w.WriteStartArray("state");
        foreach (string s in State)
        {
            w.WriteStringValue(s);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}

/// <summary>crucible control.rs <c>DownstairsWork</c>, the body of <c>GET /work</c>.</summary>
public sealed record DownstairsWork(WorkSummary[] Jobs, WorkSummary[] Completed)
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteStartArray("jobs");
        foreach (WorkSummary s in Jobs)
        {
            s.WriteTo(w);
        }
        w.WriteEndArray();
        w.WriteStartArray("completed");
        foreach (WorkSummary s in Completed)
        {
            s.WriteTo(w);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}

/// <summary>
/// The last <see cref="Capacity"/> retired jobs (crucible <c>retired_jobs: AllocRingBuffer::new(8)</c>),
/// kept as the fields a summary needs in a preallocated ring: retiring a job allocates nothing,
/// only reading the ring (a control request) does.
/// </summary>
internal sealed class RetiredJobs
{
    public const int Capacity = 8;

    private readonly Entry[] _ring = new Entry[Capacity];
    private int _next;
    private int _count;

    private struct Entry
    {
        public ulong Id;
        public bool Replay;
        public JobKind Kind;
        public ulong NumBlocks;
        public JobId[] Deps;
        public bool Acked;
        public JobClientState S0, S1, S2;
    }

    public void Add(IoJob j)
    {
        ref Entry e = ref _ring[_next];
        e.Id = j.Id.Value;
        e.Replay = j.Replay;
        e.Kind = j.Kind;
        e.NumBlocks = j.IsLiveRepair ? j.Extent : j.IsFlushOrBarrier ? 0 : j.Count;
        e.Deps = j.Dependencies;
        e.Acked = j.Acked;
        e.S0 = j.State[0];
        e.S1 = j.State[1];
        e.S2 = j.State[2];
        _next = (_next + 1) % Capacity;
        _count = Math.Min(_count + 1, Capacity);
    }

    /// <summary>Oldest first.</summary>
    public WorkSummary[] ToArray()
    {
        var result = new WorkSummary[_count];
        int start = (_next - _count + Capacity) % Capacity;
        for (int i = 0; i < _count; i++)
        {
            Entry e = _ring[(start + i) % Capacity];
            var job = new IoJob(new JobId(e.Id), e.Kind, 0, e.NumBlocks, e.Deps) { Replay = e.Replay, Acked = e.Acked, Extent = (uint)e.NumBlocks };
            job.State[0] = e.S0;
            job.State[1] = e.S1;
            job.State[2] = e.S2;
            result[i] = WorkSummary.Of(job);
        }
        return result;
    }
}

/// <summary>
/// The upstairs control HTTP server (crucible <c>upstairs/src/control.rs</c>, started when
/// <c>opts.control</c> is set): <c>GET /info</c> → <see cref="UpstairsStats"/>,
/// <c>GET /work</c> → <see cref="DownstairsWork"/>; anything else is dropshot's 404 or 405.
/// </summary>
public sealed class UpstairsControlServer : IAsyncDisposable
{
    private readonly Upstairs _upstairs;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;

    private UpstairsControlServer(Upstairs upstairs, Socket listener, ILogger log)
    {
        _upstairs = upstairs;
        _listener = listener;
        _serving = HttpServer.ServeAsync(listener, Handle, log, _stop.Token);
    }

    public IPEndPoint Address => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>Listens at <paramref name="at"/>; throws <see cref="UpstairsException"/> naming the address if it cannot.</summary>
    public static UpstairsControlServer Start(Upstairs upstairs, IPEndPoint at, ILogger log)
    {
        var listener = new Socket(at.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(at);
            listener.Listen(16);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new UpstairsException($"the upstairs control server cannot listen on {at} (control_addr): {e.Message}");
        }
        log.LogInformation("upstairs control server listening on http://{Address} (GET /info, GET /work)", listener.LocalEndPoint);
        return new UpstairsControlServer(upstairs, listener, log);
    }

    /// <summary>The request handler (public for tests that go without a socket).</summary>
    public HttpResponse Handle(HttpRequest request)
    {
        string path = request.Path;
        int q = path.IndexOf('?');
        if (q >= 0)
        {
            path = path[..q];
        }
        if (path is not ("/info" or "/work"))
        {
            return HttpResponse.Error(404, "Not Found");
        }
        if (request.Method is not ("GET" or "HEAD"))
        {
            return HttpResponse.Error(405, "Method Not Allowed");
        }
        return path == "/info"
            ? HttpResponse.JsonValue(_upstairs.GetStats().WriteTo)
            : HttpResponse.JsonValue(_upstairs.GetWorkSummary().WriteTo);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        try
        {
            await _serving.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception)
        {
        }
        _stop.Dispose();
    }
}

using System.Diagnostics;
using System.Threading.Channels;
using Propolis.Crucible.Regions;

namespace Propolis.Crucible.Dsc;

/// <summary>A user-facing dsc failure: printed as <c>dsc: MESSAGE</c>, exit status 1.</summary>
public sealed class DscException(string message) : Exception(message);

/// <summary>One downstairs of the set (dsc <c>DownstairsInfo</c>).</summary>
public sealed record DownstairsInfo(string DsBin, string RegionDir, int Port, Guid Uuid, string OutputFile, int ClientId, bool ReadOnly)
{
    /// <summary>The real dsc's command line: <c>DS_BIN run -p PORT -d DIR --mode ro|rw</c>.</summary>
    public string[] RunArguments() => ["run", "-p", Port.ToString(), "-d", RegionDir, "--mode", ReadOnly ? "ro" : "rw"];
}

/// <summary>Commands the control API queues for the main task (dsc <c>DscCmd</c>).</summary>
public abstract record DscCmd
{
    public sealed record Start(int Cid) : DscCmd;
    public sealed record StartAll : DscCmd;
    public sealed record Stop(int Cid) : DscCmd;
    public sealed record StopRand : DscCmd;
    public sealed record StopAll : DscCmd;
    public sealed record DisableRestart(int Cid) : DscCmd;
    public sealed record DisableRestartAll : DscCmd;
    public sealed record EnableRestart(int Cid) : DscCmd;
    public sealed record EnableRestartAll : DscCmd;
    public sealed record Shutdown : DscCmd;
    public sealed record EnableRandomStop : DscCmd;
    public sealed record DisableRandomStop : DscCmd;
    public sealed record RandomStopMin(ulong Seconds) : DscCmd;
    public sealed record RandomStopMax(ulong Seconds) : DscCmd;
}

/// <summary>
/// What dsc knows and does (crucible dsc/src/main.rs <c>DscInfo</c>, <c>Regions</c>,
/// <c>start_dsc</c>): the region directories (downstairs <c>i</c> uses
/// <c>REGION_DIR/PORT</c>, port = port base + 10 i), each downstairs' state and pid, and the
/// queue of commands from the control API.
/// </summary>
public sealed class DscInfo
{
    public const int PortStep = 10;

    private readonly object _lock = new();
    private readonly List<DownstairsInfo> _ds = new();
    private readonly string[] _regionDirs;
    private readonly DownstairsState[] _state;
    private readonly int?[] _pid;
    private RegionExtentInfo? _regionInfo;
    private readonly Channel<DscCmd> _work = Channel.CreateUnbounded<DscCmd>();
    private readonly TextWriter _out;

    /// <summary>
    /// <c>DscInfo::new</c>: checks the downstairs binary and the region directories (one, shared,
    /// or one per downstairs). With <paramref name="create"/> the region directories must not
    /// exist and are created; otherwise they must exist. The output directory is created if needed.
    /// </summary>
    public DscInfo(string dsBin, string outputDir, IReadOnlyList<string> regionDirs, bool create, int portBase,
        int regionCount, bool readOnly, TextWriter? stdout = null)
    {
        _out = stdout ?? Console.Out;
        if (!File.Exists(dsBin) && !Directory.Exists(dsBin))
        {
            throw new DscException($"Can't find downstairs binary at \"{dsBin}\" (give its path with --ds-bin)");
        }
        if (!File.Exists(dsBin))
        {
            throw new DscException($"{dsBin} is not a file");
        }
        if (regionCount < 1)
        {
            throw new DscException("--region-count must be at least 1");
        }
        if (regionDirs.Count != 1 && regionDirs.Count != regionCount)
        {
            throw new DscException($"Region directory needs one or {regionCount} elements (got {regionDirs.Count} --region-dir)");
        }
        if (portBase < 1 || portBase + PortStep * (regionCount - 1) + 4000 > 65535)
        {
            throw new DscException($"port base {portBase} leaves no room for {regionCount} downstairs and their repair ports (port + 4000) below 65536");
        }
        if (create)
        {
            foreach (string rd in regionDirs)
            {
                if (Path.Exists(rd))
                {
                    throw new DscException($"Remove region \"{rd}\" before running");
                }
                _out.WriteLine($"Creating region directory at: {rd}");
                Directory.CreateDirectory(rd);
            }
        }
        else
        {
            foreach (string rd in regionDirs)
            {
                if (!Path.Exists(rd))
                {
                    throw new DscException($"Failed to find region \"{rd}\"");
                }
            }
        }
        if (Directory.Exists(outputDir))
        {
            if (!create)
            {
                _out.WriteLine($"Using existing output directory \"{outputDir}\"");
            }
        }
        else
        {
            _out.WriteLine($"Creating dsc directory at: {outputDir}");
            Directory.CreateDirectory(outputDir);
        }

        DsBin = dsBin;
        OutputDir = outputDir;
        PortBase = portBase;
        ReadOnly = readOnly;
        _regionDirs = regionDirs.Count == 1 ? Enumerable.Repeat(regionDirs[0], regionCount).ToArray() : regionDirs.ToArray();
        _state = new DownstairsState[regionCount];
        _pid = new int?[regionCount];
    }

    public string DsBin { get; }

    public string OutputDir { get; }

    public int PortBase { get; }

    public bool ReadOnly { get; }

    public int RegionCount
    {
        get
        {
            lock (_lock)
            {
                return _ds.Count;
            }
        }
    }

    /// <summary><c>port_to_region</c>: a downstairs' region lives in REGION_DIR/PORT.</summary>
    public static string PortToRegion(string regionDir, int port) => Path.Combine(regionDir, port.ToString());

    public int PortOf(int dsId) => PortBase + dsId * PortStep;

    /// <summary>The region UUID dsc gives downstairs on <paramref name="port"/>: <c>12345678-0000-0000-0000-{port:012}</c>.</summary>
    public static Guid UuidForPort(int port) => Guid.Parse($"12345678-0000-0000-0000-{port:D12}");

    public IReadOnlyList<DownstairsInfo> Downstairs
    {
        get
        {
            lock (_lock)
            {
                return _ds.ToArray();
            }
        }
    }

    /// <summary><c>create_regions</c>: runs <c>DS_BIN create</c> for every downstairs.</summary>
    public void CreateRegions(ulong extentSize, uint extentCount, ulong blockSize, bool encrypted)
    {
        for (int i = 0; i < _regionDirs.Length; i++)
        {
            CreateDsRegion(i, extentSize, extentCount, blockSize, encrypted);
        }
        _out.WriteLine($"Created {_regionDirs.Length} regions");
    }

    /// <summary>
    /// <c>create_ds_region</c>: <c>DS_BIN create -d DIR --uuid UUID --extent-count N --extent-size N
    /// --block-size N [--encrypted]</c>, its output shown if it fails.
    /// </summary>
    public void CreateDsRegion(int dsId, ulong extentSize, uint extentCount, ulong blockSize, bool encrypted)
    {
        int port = PortOf(dsId);
        string dir = PortToRegion(_regionDirs[dsId], port);
        Guid uuid = UuidForPort(port);
        var args = new List<string>
        {
            "create", "-d", dir, "--uuid", uuid.ToString(), "--extent-count", extentCount.ToString(),
            "--extent-size", extentSize.ToString(), "--block-size", blockSize.ToString(),
        };
        if (encrypted)
        {
            args.Add("--encrypted");
        }
        var psi = new ProcessStartInfo(DsBin)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        var sw = Stopwatch.StartNew();
        string stdout, stderr;
        int exit;
        try
        {
            using Process p = Process.Start(psi)!;
            Task<string> err = p.StandardError.ReadToEndAsync();
            stdout = p.StandardOutput.ReadToEnd();
            stderr = err.GetAwaiter().GetResult();
            p.WaitForExit();
            exit = p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new DscException($"cannot run {DsBin}: {e.Message}");
        }
        if (exit != 0)
        {
            _out.WriteLine($"Create failed for \"{_regionDirs[dsId]}\" exit status: {exit}");
            _out.WriteLine($"dir:{dir} uuid: {uuid} es:{extentSize} ec:{extentCount}");
            _out.WriteLine($"Output:\n{stdout}");
            _out.WriteLine($"Error:\n{stderr}");
            throw new DscException("Creating region failed");
        }
        _out.WriteLine($"Downstairs region {dsId} created at {dir} in {sw.Elapsed.TotalSeconds:F4}");
        var info = new RegionExtentInfo(blockSize, extentSize, extentCount);
        lock (_lock)
        {
            if (_regionInfo is { } cur)
            {
                WarnDifferences(cur, info);
            }
            else
            {
                _regionInfo = info;
            }
            _ds.Add(new DownstairsInfo(DsBin, dir, port, uuid, OutputPath(port), dsId, ReadOnly));
        }
    }

    /// <summary><c>generate_region_set</c>: the existing regions, read from their region.json.</summary>
    public void GenerateRegionSet()
    {
        RegionExtentInfo? info = null;
        var found = new List<DownstairsInfo>();
        for (int i = 0; i < _regionDirs.Length; i++)
        {
            int port = PortOf(i);
            string dir = PortToRegion(_regionDirs[i], port);
            if (!Directory.Exists(dir))
            {
                throw new DscException($"Can't find region dir \"{dir}\" (create the regions with `dsc create` or `dsc start --create`)");
            }
            string config = RegionPaths.ConfigPath(dir);
            RegionDefinition def;
            try
            {
                def = RegionDefinition.FromJson(File.ReadAllBytes(config));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or RegionException)
            {
                throw new DscException($"Error opening region config \"{config}\": {e.Message}");
            }
            var ri = new RegionExtentInfo(def.BlockSize, def.ExtentSize.Value, def.ExtentCount);
            if (info is { } cur)
            {
                WarnDifferences(cur, ri);
            }
            else
            {
                info = ri;
            }
            found.Add(new DownstairsInfo(DsBin, dir, port, def.Uuid, OutputPath(port), i, ReadOnly));
        }
        _out.WriteLine($"Update our region info with: {info}");
        lock (_lock)
        {
            _ds.AddRange(found);
            _regionInfo = info;
        }
    }

    private string OutputPath(int port) => Path.Combine(OutputDir, $"downstairs-{port}.txt");

    private void WarnDifferences(RegionExtentInfo cur, RegionExtentInfo ri)
    {
        if (cur.BlockSize != ri.BlockSize)
        {
            _out.WriteLine($"WARNING: block size difference: {cur.BlockSize} vs. {ri.BlockSize}");
        }
        if (cur.BlocksPerExtent != ri.BlocksPerExtent)
        {
            _out.WriteLine($"WARNING: extent size difference: {cur.BlocksPerExtent} vs. {ri.BlocksPerExtent}");
        }
        if (cur.ExtentCount != ri.ExtentCount)
        {
            _out.WriteLine($"WARNING: extent count difference: {cur.ExtentCount} vs. {ri.ExtentCount}");
        }
    }

    // ---- state, as the control API reads it ----

    public bool IsValidClient(int cid)
    {
        lock (_lock)
        {
            return cid >= 0 && cid < _state.Length && cid < _ds.Count;
        }
    }

    public bool AllRunning()
    {
        lock (_lock)
        {
            return _state.All(s => s == DownstairsState.Running);
        }
    }

    public bool AllStopped()
    {
        lock (_lock)
        {
            return _state.All(s => s is not (DownstairsState.Running or DownstairsState.Starting or DownstairsState.Stopping));
        }
    }

    public DownstairsState GetState(int cid)
    {
        lock (_lock)
        {
            return _state[cid];
        }
    }

    public int? GetPid(int cid)
    {
        lock (_lock)
        {
            return _pid[cid];
        }
    }

    public int GetPort(int cid)
    {
        lock (_lock)
        {
            return _ds[cid].Port;
        }
    }

    public Guid GetUuid(int cid)
    {
        lock (_lock)
        {
            return _ds[cid].Uuid;
        }
    }

    public RegionExtentInfo? RegionInfo
    {
        get
        {
            lock (_lock)
            {
                return _regionInfo;
            }
        }
    }

    internal void Report(int cid, DownstairsState state, int? pid)
    {
        lock (_lock)
        {
            _state[cid] = state;
            _pid[cid] = pid;
        }
    }

    /// <summary><c>DscWork::add_cmd</c>: queues a command for the main task.</summary>
    public void AddCommand(DscCmd cmd) => _work.Writer.TryWrite(cmd);

    /// <summary>
    /// <c>start_dsc</c>: starts every downstairs, waits until all run, then carries out queued
    /// commands and random stops until a shutdown has stopped them all.
    /// </summary>
    public async Task RunAsync(CancellationToken shutdownSignal = default)
    {
        DownstairsInfo[] all = Downstairs.ToArray();
        var events = Channel.CreateUnbounded<MonitorInfo>();
        var monitors = all.Select(d => new DownstairsMonitor(d, events.Writer, _out)).ToArray();
        foreach (DownstairsMonitor m in monitors)
        {
            _out.WriteLine($"start ds: {m.Info.Port}");
            m.Start();
        }

        // Wait here for every downstairs to start.
        int running = 0;
        while (running < all.Length)
        {
            MonitorInfo mi = await events.Reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
            _out.WriteLine($"[{mi.Port}][{mi.ClientId}] initial start wait reports {mi.State}");
            Report(mi.ClientId, mi.State, mi.Pid);
            if (mi.State == DownstairsState.Running)
            {
                running++;
            }
            else if (mi.State == DownstairsState.Error)
            {
                foreach (DownstairsMonitor m in monitors)
                {
                    m.Post(DownstairsAction.DisableRestart);
                    m.Post(DownstairsAction.Stop);
                }
                await WaitAllDownAsync(events.Reader, monitors).ConfigureAwait(false);
                throw new DscException($"downstairs {mi.ClientId} (port {mi.Port}) could not be started");
            }
        }
        _out.WriteLine("All downstairs are running");

        bool randomStop = false;
        ulong restartMin = 9, restartMax = 10;
        bool shutdown = false;
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        using var signalRegistration = shutdownSignal.Register(() => AddCommand(new DscCmd.Shutdown()));
        Task<bool> workReady = _work.Reader.WaitToReadAsync().AsTask();
        Task<bool> eventReady = events.Reader.WaitToReadAsync().AsTask();
        while (true)
        {
            TimeSpan wait = deadline - DateTime.UtcNow;
            Task timer = Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero);
            Task done = await Task.WhenAny(workReady, eventReady, timer).ConfigureAwait(false);
            if (done == eventReady)
            {
                while (events.Reader.TryRead(out MonitorInfo mi))
                {
                    _out.WriteLine($"[{mi.Port}][{mi.ClientId}] reports {mi.State}");
                    Report(mi.ClientId, mi.State, mi.Pid);
                }
                if (shutdown && AllStopped())
                {
                    break;
                }
                eventReady = events.Reader.WaitToReadAsync().AsTask();
            }
            else if (done == workReady)
            {
                while (_work.Reader.TryRead(out DscCmd? cmd))
                {
                    _out.WriteLine($"got dsc {cmd}");
                    switch (cmd)
                    {
                        case DscCmd.EnableRandomStop:
                            randomStop = true;
                            break;
                        case DscCmd.DisableRandomStop:
                            randomStop = false;
                            break;
                        case DscCmd.RandomStopMin m:
                            restartMin = m.Seconds;
                            break;
                        case DscCmd.RandomStopMax m:
                            restartMax = m.Seconds;
                            break;
                        case DscCmd.Shutdown:
                            _out.WriteLine("Shutdown");
                            foreach (DownstairsMonitor m in monitors)
                            {
                                m.Post(DownstairsAction.DisableRestart);
                                m.Post(DownstairsAction.Stop);
                            }
                            shutdown = true;
                            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(1);
                            break;
                        default:
                            DoWork(cmd, monitors);
                            break;
                    }
                }
                workReady = _work.Reader.WaitToReadAsync().AsTask();
            }
            else
            {
                if (shutdown)
                {
                    if (AllStopped())
                    {
                        break;
                    }
                    _out.WriteLine("Waiting for all downstairs to exit");
                    deadline = DateTime.UtcNow + TimeSpan.FromSeconds(1);
                }
                else
                {
                    if (randomStop)
                    {
                        int cid = Random.Shared.Next(monitors.Length);
                        _out.WriteLine($"Random restart: stop rand {cid}");
                        monitors[cid].Post(DownstairsAction.Stop);
                    }
                    deadline = DateTime.UtcNow + TimeSpan.FromSeconds(RandomSeconds(restartMin, restartMax));
                }
            }
        }
        foreach (DownstairsMonitor m in monitors)
        {
            m.Dispose();
        }
    }

    private async Task WaitAllDownAsync(ChannelReader<MonitorInfo> events, DownstairsMonitor[] monitors)
    {
        while (monitors.Any(m => m.HasChild))
        {
            if (await events.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(1)).ContinueWith(t => t.IsCompletedSuccessfully).ConfigureAwait(false))
            {
                while (events.TryRead(out MonitorInfo mi))
                {
                    Report(mi.ClientId, mi.State, mi.Pid);
                }
            }
        }
        foreach (DownstairsMonitor m in monitors)
        {
            m.Dispose();
        }
    }

    /// <summary>A whole number of seconds in [min, max) (the real <c>random_range(min..max)</c>); min if the range is empty.</summary>
    private static double RandomSeconds(ulong min, ulong max) =>
        max > min ? min + (double)(ulong)Random.Shared.NextInt64(0, (long)Math.Min(max - min, long.MaxValue)) : min;

    /// <summary><c>do_dsc_work</c>: the commands passed on to downstairs monitors.</summary>
    private void DoWork(DscCmd cmd, DownstairsMonitor[] monitors)
    {
        switch (cmd)
        {
            case DscCmd.Start s:
                monitors[s.Cid].Post(DownstairsAction.Start);
                break;
            case DscCmd.StartAll:
                foreach (DownstairsMonitor m in monitors)
                {
                    m.Post(DownstairsAction.Start);
                }
                break;
            case DscCmd.Stop s:
                monitors[s.Cid].Post(DownstairsAction.Stop);
                break;
            case DscCmd.StopRand:
                int cid = Random.Shared.Next(monitors.Length);
                _out.WriteLine($"stop rand {cid}");
                monitors[cid].Post(DownstairsAction.Stop);
                break;
            case DscCmd.StopAll:
                foreach (DownstairsMonitor m in monitors)
                {
                    m.Post(DownstairsAction.Stop);
                }
                break;
            case DscCmd.DisableRestart s:
                monitors[s.Cid].Post(DownstairsAction.DisableRestart);
                break;
            case DscCmd.DisableRestartAll:
                foreach (DownstairsMonitor m in monitors)
                {
                    m.Post(DownstairsAction.DisableRestart);
                }
                break;
            case DscCmd.EnableRestart s:
                monitors[s.Cid].Post(DownstairsAction.EnableRestart);
                break;
            case DscCmd.EnableRestartAll:
                foreach (DownstairsMonitor m in monitors)
                {
                    m.Post(DownstairsAction.EnableRestart);
                }
                break;
        }
    }

    /// <summary><c>cleanup</c>: removes the output directory and the region directories.</summary>
    public static void Cleanup(string outputDir, IEnumerable<string> regionDirs, TextWriter stdout)
    {
        if (Directory.Exists(outputDir))
        {
            stdout.WriteLine($"Removing existing dsc directory \"{outputDir}\"");
            Directory.Delete(outputDir, recursive: true);
        }
        foreach (string rd in regionDirs)
        {
            if (Directory.Exists(rd))
            {
                stdout.WriteLine($"Removing existing region \"{rd}\"");
                Directory.Delete(rd, recursive: true);
            }
        }
    }
}

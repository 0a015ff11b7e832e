using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Downstairs;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Regions;
using Propolis.Crucible.Upstairs;
using CrucibleUpstairs = Propolis.Crucible.Upstairs.Upstairs;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

namespace Propolis.Crucible.Tests.Upstairs;

/// <summary>
/// Real downstairs in this process (<see cref="DownstairsHost"/> on 127.0.0.1), each behind a
/// <see cref="TcpProxy"/> that a test can cut (to make the downstairs disappear and come back at
/// the same address) or hold (to delay its replies).
/// </summary>
internal sealed class RegionSet : IAsyncDisposable
{
    public const int BlockSize = 512;
    public const ulong BlocksPerExtent = 8;
    public const uint ExtentCount = 4;
    public const ulong TotalBlocks = BlocksPerExtent * ExtentCount;

    private readonly List<string> _dirs = new();
    private readonly List<DownstairsHost> _hosts = new();
    private readonly List<TcpProxy> _proxies = new();
    private readonly bool _encrypted;
    private readonly bool _readOnly;
    private readonly Propolis.Crucible.Tls.CrucibleTlsContext? _tls;

    private RegionSet(bool encrypted, bool readOnly, Propolis.Crucible.Tls.CrucibleTlsContext? tls)
    {
        _encrypted = encrypted;
        _readOnly = readOnly;
        _tls = tls;
    }

    public static readonly byte[] Key = Convert.FromBase64String("tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=");

    /// <summary>Three (or <paramref name="count"/>) regions; <paramref name="fill"/> may write to region i before it is served.</summary>
    /// <param name="tls">When set, every downstairs accepts only TLS with this context (its certificate must name downstairs0..2).</param>
    public static RegionSet Start(int count = 3, bool encrypted = false, bool readOnly = false, Action<int, Region>? fill = null,
        Propolis.Crucible.Tls.CrucibleTlsContext? tls = null)
    {
        var set = new RegionSet(encrypted, readOnly, tls);
        for (int i = 0; i < count; i++)
        {
            set.Add(fill is null ? null : r => fill(i, r));
        }
        return set;
    }

    /// <summary>Adds one more downstairs (a replacement target); returns its index.</summary>
    public int Add(Action<Region>? fill = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "upstairs-test-" + Guid.NewGuid().ToString("N"));
        using (Region r = Region.Create(dir, RegionDefinition.ForNewRegion(BlockSize, BlocksPerExtent, ExtentCount, Guid.NewGuid(), _encrypted)))
        {
            fill?.Invoke(r);
        }
        _dirs.Add(dir);
        DownstairsHost host = DownstairsHost.Start(new DownstairsRunOptions
        {
            Address = IPAddress.Loopback,
            Port = 0,
            DataDirectory = dir,
            ReadOnly = _readOnly,
            Tls = _tls,
        }, DebugLoggerFactory.Instance);
        _hosts.Add(host);
        _proxies.Add(new TcpProxy(host.Address));
        return _hosts.Count - 1;
    }

    public IPEndPoint Target(int i) => _proxies[i].Address;

    public TcpProxy Proxy(int i) => _proxies[i];

    public DownstairsHost Host(int i) => _hosts[i];

    public string Dir(int i) => _dirs[i];

    public UpstairsOptions Options(ulong generation, Func<UpstairsOptions, UpstairsOptions>? tweak = null)
    {
        var o = new UpstairsOptions
        {
            Targets = new[] { Target(0), Target(1), Target(2) },
            Generation = generation,
            EncryptionKey = _encrypted ? Key : null,
            ReadOnly = _readOnly,
            BlockSize = BlockSize,
            BlocksPerExtent = BlocksPerExtent,
            ExtentCount = ExtentCount,
            ReconnectDelay = TimeSpan.FromMilliseconds(50),
            MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
            FlushTimeout = TimeSpan.Zero,
        };
        return tweak is null ? o : tweak(o);
    }

    public async Task<CrucibleUpstairs> ActivateAsync(ulong generation, Func<UpstairsOptions, UpstairsOptions>? tweak = null)
    {
        var up = new CrucibleUpstairs(Options(generation, tweak), DebugLogger.Instance);
        await up.ActivateAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return up;
    }

    /// <summary>Stops every downstairs and reads region <paramref name="i"/>'s blocks and contexts from disk.</summary>
    public async Task<(byte[] Data, BlockContext?[] Contexts)> ReadRegionAsync(int i)
    {
        await StopHostsAsync();
        using Region r = Region.Open(_dirs[i], readOnly: true);
        var data = new byte[TotalBlocks * BlockSize];
        var contexts = new BlockContext?[TotalBlocks];
        for (uint e = 0; e < ExtentCount; e++)
        {
            r.Read(e, 0, data.AsSpan((int)(e * BlocksPerExtent * BlockSize), (int)BlocksPerExtent * BlockSize),
                contexts.AsSpan((int)(e * BlocksPerExtent), (int)BlocksPerExtent));
        }
        return (data, contexts);
    }

    private bool _stopped;

    public async Task StopHostsAsync()
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        foreach (TcpProxy p in _proxies)
        {
            p.Dispose();
        }
        foreach (DownstairsHost h in _hosts)
        {
            await h.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopHostsAsync();
        foreach (string d in _dirs)
        {
            try
            {
                Directory.Delete(d, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    public static byte[] Pattern(int blocks, byte seed)
    {
        var b = new byte[blocks * BlockSize];
        for (int i = 0; i < b.Length; i++)
        {
            b[i] = (byte)(seed + i * 13 + (i >> 9));
        }
        return b;
    }
}

/// <summary>
/// A TCP forwarder: <see cref="Cut"/> drops every connection and refuses new ones until
/// <see cref="Restore"/>; <see cref="Hold"/> keeps the downstairs' bytes back until <see cref="Release"/>.
/// </summary>
internal sealed class TcpProxy : IDisposable
{
    private readonly IPEndPoint _to;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _open = new();
    private readonly object _lock = new();
    private volatile bool _cut;
    private TaskCompletionSource _released = Released();

    public TcpProxy(IPEndPoint to)
    {
        _to = to;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
        _ = AcceptLoop();
    }

    private static TaskCompletionSource Released()
    {
        var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.SetResult();
        return t;
    }

    public IPEndPoint Address => (IPEndPoint)_listener.LocalEndPoint!;

    public int Connections;

    public void Cut()
    {
        _cut = true;
        lock (_lock)
        {
            foreach (Socket s in _open)
            {
                s.Dispose();
            }
            _open.Clear();
        }
    }

    public void Restore() => _cut = false;

    public void Hold() => _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => _released.TrySetResult();

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket inbound;
            try
            {
                inbound = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            if (_cut)
            {
                inbound.Dispose();
                continue;
            }
            var outbound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await outbound.ConnectAsync(_to);
            }
            catch (SocketException)
            {
                inbound.Dispose();
                outbound.Dispose();
                continue;
            }
            inbound.NoDelay = true;
            Interlocked.Increment(ref Connections);
            lock (_lock)
            {
                _open.Add(inbound);
                _open.Add(outbound);
            }
            _ = Pump(inbound, outbound, hold: false);
            _ = Pump(outbound, inbound, hold: true);
        }
    }

    private async Task Pump(Socket from, Socket to, bool hold)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0)
                {
                    break;
                }
                if (hold)
                {
                    await _released.Task;
                }
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
            }
        }
        catch (Exception)
        {
        }
        from.Dispose();
        to.Dispose();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        Cut();
        _released.TrySetResult();
    }
}

/// <summary>Logs to stderr when UPSTAIRS_TEST_LOG is set, or appends to the file it names when it is
/// an absolute path (dotnet test does not show a passing test's stderr), for debugging a failing test.</summary>
internal sealed class DebugLogger : Microsoft.Extensions.Logging.ILogger
{
    private static readonly string? Setting = Environment.GetEnvironmentVariable("UPSTAIRS_TEST_LOG");

    private static readonly TextWriter Output = Setting is not null && Path.IsPathRooted(Setting)
        ? TextWriter.Synchronized(new StreamWriter(Setting, append: true) { AutoFlush = true })
        : Console.Error;

    public static readonly Microsoft.Extensions.Logging.ILogger? Instance = Setting is null ? null : new DebugLogger();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state,
        Exception? exception, Func<TState, Exception?, string> formatter) =>
        Output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {formatter(state, exception)}");
}

internal sealed class DebugLoggerFactory : Microsoft.Extensions.Logging.ILoggerFactory
{
    public static Microsoft.Extensions.Logging.ILoggerFactory Instance =>
        DebugLogger.Instance is null ? NullLoggerFactory.Instance : new DebugLoggerFactory();

    public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
    {
    }

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => DebugLogger.Instance!;

    public void Dispose()
    {
    }
}

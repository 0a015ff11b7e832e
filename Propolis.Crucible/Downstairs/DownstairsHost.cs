using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Tls;
using Regions = Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>What <c>crucible-downstairs run</c> is asked to do (crucible downstairs/src/main.rs <c>Args::Run</c>).</summary>
public sealed record DownstairsRunOptions
{
    public const int DefaultPort = 9000;

    /// <summary><c>-a/--address</c>: where to listen for upstairs (default 0.0.0.0).</summary>
    public IPAddress Address { get; init; } = IPAddress.Any;

    /// <summary><c>-p/--port</c> (default 9000); the repair service listens on port + 4000.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary><c>-d/--data</c>: the region directory.</summary>
    public required string DataDirectory { get; init; }

    /// <summary><c>--mode ro</c>.</summary>
    public bool ReadOnly { get; init; }

    public bool Lossy { get; init; }

    public bool ReadErrors { get; init; }

    public bool WriteErrors { get; init; }

    public bool FlushErrors { get; init; }

    /// <summary><c>--cert-pem --key-pem --root-cert-pem</c>: accept only TLS connections whose client
    /// certificate the roots trust. The host does not own it.</summary>
    public CrucibleTlsContext? Tls { get; init; }
}

/// <summary>
/// A running downstairs (crucible <c>DownstairsClient::spawn</c>): the region opened, the
/// upstairs listener on ADDRESS:PORT and the repair service on ADDRESS:PORT+4000, whose
/// address is the one announced in YesItsMe.
/// </summary>
public sealed class DownstairsHost : IAsyncDisposable
{
    private readonly Regions.Region _region;
    private readonly Socket _listener;
    private readonly Socket _repairListener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private readonly Task _repairServing;

    private DownstairsHost(Regions.Region region, Socket listener, Socket repairListener, Downstairs downstairs,
        RepairServer repair, CrucibleTlsContext? tls, ILogger log)
    {
        _region = region;
        _listener = listener;
        _repairListener = repairListener;
        Downstairs = downstairs;
        _serving = downstairs.ListenAsync(listener, _stop.Token, tls);
        _repairServing = repair.ServeAsync(repairListener, _stop.Token);
        log.LogInformation(tls is null ? "No SSL acceptor configured" : "Configured SSL acceptor");
        log.LogInformation("downstairs listening on {Address}", listener.LocalEndPoint);
    }

    public Downstairs Downstairs { get; }

    public IPEndPoint Address => (IPEndPoint)_listener.LocalEndPoint!;

    public IPEndPoint RepairAddress => (IPEndPoint)_repairListener.LocalEndPoint!;

    /// <summary>
    /// Opens the region and starts listening. Port 0 picks free ports for both listeners (then
    /// the repair port is not port + 4000). Throws <see cref="Regions.RegionException"/> or
    /// <see cref="SocketException"/> with a message fit for the user.
    /// </summary>
    public static DownstairsHost Start(DownstairsRunOptions options, ILoggerFactory loggers)
    {
        ILogger log = loggers.CreateLogger("downstairs");
        if (options.Port is < 0 or > 65535 || options.Port != 0 && options.Port + RepairServer.RepairPortOffset > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"port {options.Port}: the repair port (port + {RepairServer.RepairPortOffset}) must be below 65536");
        }
        Regions.Region region = Regions.Region.Open(options.DataDirectory, options.ReadOnly);
        Socket? listener = null, repairListener = null;
        try
        {
            log.LogInformation("Opened existing region file \"{Dir}\"", region.Directory);
            log.LogInformation("Upstairs <-> Downstairs Message Version: {Version}", CrucibleProtocol.CrucibleMessageVersion);
            listener = Listen(new IPEndPoint(options.Address, options.Port));
            int repairPort = options.Port == 0 ? 0 : options.Port + RepairServer.RepairPortOffset;
            repairListener = Listen(new IPEndPoint(options.Address, repairPort));
            var repairAddress = (IPEndPoint)repairListener.LocalEndPoint!;
            log.LogInformation("Using repair address: {Address}", repairAddress);
            var downstairs = new Downstairs(region, new DownstairsOptions
            {
                ReadOnly = options.ReadOnly,
                RepairAddress = SocketAddr.FromEndPoint(repairAddress),
                Lossy = options.Lossy,
                ReadErrors = options.ReadErrors,
                WriteErrors = options.WriteErrors,
                FlushErrors = options.FlushErrors,
            }, log);
            var repair = new RepairServer(downstairs, loggers.CreateLogger("repair"));
            return new DownstairsHost(region, listener, repairListener, downstairs, repair, options.Tls, log);
        }
        catch
        {
            listener?.Dispose();
            repairListener?.Dispose();
            region.Dispose();
            throw;
        }
    }

    private static Socket Listen(IPEndPoint at)
    {
        var s = new Socket(at.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(at);
            s.Listen(128);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>Completes when both services have stopped (after <see cref="DisposeAsync"/>, or if one fails).</summary>
    public Task Completion => Task.WhenAll(_serving, _repairServing);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        _listener.Dispose();
        _repairListener.Dispose();
        _region.Dispose();
        _stop.Dispose();
    }
}

using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Propolis.Crucible.Http;

namespace Propolis.Standalone.Api;

/// <summary>A listening socket for <c>--api ADDR</c> could not be made.</summary>
internal sealed class ApiBindException(string message) : Exception(message);

/// <summary>
/// Serves <see cref="ManagementApi"/> over HTTP/1.1 (the repository's <see cref="HttpServer"/>) on
/// the address of <c>--api</c>, from the start of the run (so that a taken port is an error before
/// the machine is built) until disposed.
/// </summary>
internal sealed partial class ApiServer : IDisposable
{
    private const int SolSocket = 1;    // <asm-generic/socket.h>
    private const int SoReuseAddr = 2;

    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;

    private ApiServer(Socket listener, ManagementApi api, ILogger logger)
    {
        _listener = listener;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _serving = HttpServer.ServeAsync(listener, api.Handle, logger, _stop.Token);
    }

    /// <summary>The address bound (the port chosen by the system when <c>--api</c> gave port 0).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <exception cref="ApiBindException">The address cannot be bound (in use, not local, not permitted).</exception>
    public static ApiServer Start(IPEndPoint address, ManagementApi api, ILogger logger)
    {
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SO_REUSEADDR alone (a restart binds again while old connections sit in TIME_WAIT);
            // .NET's ReuseAddress would add SO_REUSEPORT, letting a second VM share the port.
            listener.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            listener.Bind(address);
            listener.Listen(16);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new ApiBindException($"--api {address}: cannot listen there: {e.Message}");
        }
        var server = new ApiServer(listener, api, logger);
        LogListening(logger, server.LocalEndPoint, ManagementApi.VcrPathTemplate);
        return server;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        try
        {
            _serving.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // A connection that failed while closing; the process is going away.
        }
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "management API listening on {Address}: PUT {Path}")]
    private static partial void LogListening(ILogger logger, IPEndPoint address, string path);
}

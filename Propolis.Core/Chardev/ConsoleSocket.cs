using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using FileStat = Propolis.Core.Interop.Interop.FileStat;

namespace Propolis.Core.Chardev;

/// <summary>A serial port's console, served on a Unix domain socket (propolis-standalone's
/// <c>./ttya</c>): connect with e.g. <c>socat -,raw,echo=0 UNIX-CONNECT:ttya</c>.</summary>
/// <remarks>
/// <list type="bullet">
/// <item>The socket file is created with mode 0600 (before it listens, so nobody can connect in
/// between). A stale socket file left by a dead process is replaced; a socket another process is
/// still serving, or a file that is not a socket, is refused with an <see cref="IOException"/>.</item>
/// <item>One client at a time. A second client receives <see cref="BusyMessage"/> and is
/// disconnected; the first keeps the console. After the client leaves, the next one may connect.</item>
/// <item>Output never stalls the guest: everything the guest transmits is appended to a ring of
/// <see cref="DefaultHistoryBytes"/> bytes and sent from there by a dedicated thread. Bytes not yet
/// delivered to a client (all output while none is attached, and a slow client's backlog) stay in
/// the ring and are sent to the next client; when the ring is full the oldest undelivered bytes
/// are dropped (<see cref="DroppedBytes"/>).</item>
/// <item>Input reaches the guest byte for byte (no line discipline, no escape character). When
/// the UART's receiver is full the input thread waits for the guest to read; nothing is dropped.</item>
/// <item><see cref="Dispose"/> first gives an attached client what the guest wrote last (up to
/// <see cref="DrainMilliseconds"/>: the panic message before an <c>exit_on_reboot</c> exit is the
/// line a user most needs), then disconnects it, detaches from the port and removes the socket
/// file.</item>
/// </list>
/// Per byte nothing is allocated: output is copied into the ring under a short lock and sent in
/// chunks; input is read into a pooled buffer and offered to the port.
/// </remarks>
public sealed partial class ConsoleSocket : ISerialSink, IDisposable
{
    /// <summary>The socket propolis-standalone serves COM1 on, relative to its working directory.</summary>
    public const string DefaultPath = "ttya";

    /// <summary>Size of the undelivered-output ring: 1 MiB.</summary>
    public const int DefaultHistoryBytes = 1 << 20;

    /// <summary>How long <see cref="Dispose"/> waits for an attached client to take the output
    /// still undelivered (a client that does not read is not waited for longer).</summary>
    public const int DrainMilliseconds = 2000;

    private const int SendChunkBytes = 64 * 1024;
    private const int ReceiveChunkBytes = 4096;
    // How often an input thread waiting for the guest to read checks that its client is still there.
    private const int ClientCheckMilliseconds = 200;

    /// <summary>What a client that connects while another is attached receives before being closed.</summary>
    public static ReadOnlySpan<byte> BusyMessage => "console busy: another client is attached\r\n"u8;

    private readonly object _gate = new();
    private readonly ISerialPort _port;
    private readonly ILogger _logger;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _firstClient = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _acceptLoop;

    // Guarded by _gate.
    private readonly byte[] _ring;
    private long _head; // sequence number of the oldest undelivered byte
    private long _tail; // sequence number one past the newest byte
    private long _dropped;
    private int _writersWaiting; // an old session's writer may still be leaving while a new one waits
    private bool _receiverReady;
    private Session? _session;
    private bool _disposed;
    private bool _draining; // Dispose waits for the writer to empty the ring

    private ConsoleSocket(string path, Socket listener, ISerialPort port, ILogger logger, int historyBytes)
    {
        Path = path;
        _listener = listener;
        _port = port;
        _logger = logger;
        _ring = new byte[historyBytes];
        _port.Attach(this);
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The socket's path, as given.</summary>
    public string Path { get; }

    /// <summary>Whether a client is attached now.</summary>
    public bool ClientAttached
    {
        get { lock (_gate) return _session is not null; }
    }

    /// <summary>Output bytes dropped because the ring was full before a client took them.</summary>
    public long DroppedBytes
    {
        get { lock (_gate) return _dropped; }
    }

    /// <summary>Creates the socket at <paramref name="path"/> and attaches it to
    /// <paramref name="port"/> as its host end.</summary>
    /// <exception cref="IOException">The path is taken (by a live socket or a non-socket file),
    /// too long for a socket address, or the socket cannot be created; the message says which.</exception>
    public static ConsoleSocket Create(string path, ISerialPort port, ILogger? logger = null, int historyBytes = DefaultHistoryBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(port);
        ArgumentOutOfRangeException.ThrowIfLessThan(historyBytes, 1);
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("The console socket needs Linux (statx, Unix socket file modes).");
        logger ??= NullLogger.Instance;

        UnixDomainSocketEndPoint endPoint;
        try
        {
            endPoint = new UnixDomainSocketEndPoint(path);
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new IOException($"Console socket path '{path}' is too long for a Unix socket address (at most 107 bytes); choose a shorter path.");
        }

        RemoveStaleSocket(path, endPoint, logger);

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        bool bound = false;
        try
        {
            listener.Bind(endPoint);
            bound = true;
            // Until listen() nobody can connect, so the mode is set before anyone could.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(backlog: 4);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            listener.Dispose();
            if (bound)
                File.Delete(path);
            throw new IOException($"Cannot create console socket '{path}': {e.Message}", e);
        }
        LogListening(logger, path);
        return new ConsoleSocket(path, listener, port, logger, historyBytes);
    }

    /// <summary>Completes when the first client connects (propolis-standalone starts the guest
    /// then, so that no early output is missed).</summary>
    public Task WaitForFirstClientAsync(CancellationToken cancellationToken = default) =>
        _firstClient.Task.WaitAsync(cancellationToken);

    // ---- ISerialSink (called by the port) ---------------------------------------------------

    /// <summary>Takes everything: appended to the ring, oldest undelivered bytes dropped when it is full.</summary>
    public int TryWrite(ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            if (_disposed)
                return data.Length;
            Append(data);
            if (_writersWaiting > 0)
                Monitor.PulseAll(_gate);
        }
        return data.Length;
    }

    public void ReceiverReady()
    {
        lock (_gate)
        {
            _receiverReady = true;
            Monitor.PulseAll(_gate);
        }
    }

    // ---- the ring (guarded by _gate) ---------------------------------------------------------

    private void Append(ReadOnlySpan<byte> data)
    {
        int capacity = _ring.Length;
        long newTail = _tail + data.Length;
        if (data.Length > capacity)
            data = data[^capacity..]; // only the newest bytes can survive
        int start = (int)((newTail - data.Length) % capacity);
        int first = Math.Min(capacity - start, data.Length);
        data[..first].CopyTo(_ring.AsSpan(start));
        data[first..].CopyTo(_ring);
        _tail = newTail;
        if (_tail - _head > capacity)
        {
            long newHead = _tail - capacity;
            _dropped += newHead - _head;
            _head = newHead;
        }
    }

    private int CopyUndelivered(Span<byte> destination)
    {
        int capacity = _ring.Length;
        int length = (int)Math.Min(_tail - _head, destination.Length);
        int start = (int)(_head % capacity);
        int first = Math.Min(capacity - start, length);
        _ring.AsSpan(start, first).CopyTo(destination);
        _ring.AsSpan(0, length - first).CopyTo(destination[first..]);
        return length;
    }

    // ---- clients ------------------------------------------------------------------------------

    private sealed class Session(Socket socket)
    {
        public Socket Socket { get; } = socket;
        public Thread? Writer;
        public Thread? Reader;
    }

    private async Task AcceptLoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                if (token.IsCancellationRequested)
                    return;
                LogAcceptFailed(_logger, Path, e.SocketErrorCode);
                continue;
            }

            Session? session = null;
            lock (_gate)
            {
                if (_session is null && !_disposed)
                {
                    session = new Session(client);
                    _session = session;
                    _receiverReady = false;
                }
            }
            if (session is null)
            {
                RefuseBusy(client);
                continue;
            }

            LogClientAttached(_logger, Path);
            session.Writer = new Thread(() => WriterLoop(session)) { IsBackground = true, Name = "console-output" };
            session.Reader = new Thread(() => ReaderLoop(session)) { IsBackground = true, Name = "console-input" };
            session.Writer.Start();
            session.Reader.Start();
            _firstClient.TrySetResult();
        }
    }

    private void RefuseBusy(Socket client)
    {
        LogClientRefused(_logger, Path);
        try
        {
            client.Send(BusyMessage, SocketFlags.None, out _);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // The refused client is already gone.
        }
        client.Dispose();
    }

    /// <summary>Sends undelivered output to the client until it leaves.</summary>
    private void WriterLoop(Session session)
    {
        byte[] chunk = ArrayPool<byte>.Shared.Rent(SendChunkBytes);
        try
        {
            while (true)
            {
                long from;
                int length;
                lock (_gate)
                {
                    while (_session == session && _tail == _head)
                    {
                        _writersWaiting++;
                        Monitor.Wait(_gate);
                        _writersWaiting--;
                    }
                    if (_session != session)
                        return;
                    from = _head;
                    length = CopyUndelivered(chunk);
                }

                int sent = 0;
                SocketError error = SocketError.Success;
                while (sent < length && error == SocketError.Success)
                {
                    int n = session.Socket.Send(chunk.AsSpan(sent, length - sent), SocketFlags.None, out error);
                    if (n <= 0 && error == SocketError.Success)
                        error = SocketError.ConnectionReset;
                    sent += Math.Max(n, 0);
                }
                lock (_gate)
                {
                    // Bytes overwritten meanwhile moved _head already; never move it back.
                    if (sent > 0 && from + sent > _head)
                        _head = from + sent;
                    if (_draining)
                        Monitor.PulseAll(_gate);
                }
                if (error != SocketError.Success)
                {
                    Detach(session);
                    return;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    /// <summary>Offers the client's bytes to the port, waiting for the guest when its receiver is full.</summary>
    private void ReaderLoop(Session session)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ReceiveChunkBytes);
        try
        {
            while (true)
            {
                int received = session.Socket.Receive(buffer, SocketFlags.None, out SocketError error);
                if (received <= 0 || error != SocketError.Success)
                    break;
                if (!Deliver(session, buffer.AsSpan(0, received)))
                    break;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Detach(session);
        }
    }

    private bool Deliver(Session session, ReadOnlySpan<byte> pending)
    {
        while (true)
        {
            lock (_gate)
                _receiverReady = false;
            pending = pending[_port.TryReceive(pending)..];
            if (pending.IsEmpty)
                return true;
            lock (_gate)
            {
                while (!_receiverReady && _session == session)
                {
                    if (!Monitor.Wait(_gate, ClientCheckMilliseconds) && ClientHungUp(session.Socket))
                        return false;
                }
                if (_session != session)
                    return false;
            }
        }
    }

    // Readable with nothing to read: the peer closed its end.
    private static bool ClientHungUp(Socket socket)
    {
        try
        {
            return socket.Poll(0, SelectMode.SelectRead) && socket.Available == 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    private void Detach(Session session)
    {
        lock (_gate)
        {
            if (_session != session)
                return;
            _session = null;
            Monitor.PulseAll(_gate);
        }
        try
        {
            session.Socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed by the peer.
        }
        session.Socket.Dispose();
        LogClientDetached(_logger, Path);
    }

    public void Dispose()
    {
        Session? session;
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            session = _session;
            Monitor.PulseAll(_gate);
        }
        _port.Attach(null); // the guest's last byte is in the ring now
        Drain();
        _stopping.Cancel();
        _listener.Dispose();
        try
        {
            _acceptLoop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loop ends by cancellation.
        }
        // The accept loop may have attached a client just before it stopped.
        lock (_gate)
            session = _session ?? session;
        if (session is not null)
        {
            Detach(session);
            session.Writer?.Join(TimeSpan.FromSeconds(5));
            session.Reader?.Join(TimeSpan.FromSeconds(5));
        }
        _firstClient.TrySetCanceled();
        _stopping.Dispose();
        if (IsSocketFile(Path))
            File.Delete(Path);
    }

    // Waits until the attached client has everything, it leaves, or DrainMilliseconds pass.
    private void Drain()
    {
        long deadline = Environment.TickCount64 + DrainMilliseconds;
        lock (_gate)
        {
            _draining = true;
            while (_session is not null && _head < _tail)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    LogDrainTimedOut(_logger, Path, _tail - _head);
                    break;
                }
                Monitor.Wait(_gate, (int)left);
            }
            _draining = false;
        }
    }

    // ---- the socket file ------------------------------------------------------------------------

    private static void RemoveStaleSocket(string path, UnixDomainSocketEndPoint endPoint, ILogger logger)
    {
        ushort? type;
        try
        {
            type = FileStat.FileType(path);
        }
        catch (IOException e)
        {
            throw new IOException($"Cannot inspect console socket path '{path}': {e.Message}.", e);
        }
        if (type is null)
            return;
        if (type != FileStat.S_IFSOCK)
            throw new IOException($"Console socket path '{path}' exists and is not a socket; refusing to replace it. Remove it or choose another path.");

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(endPoint);
                throw new IOException($"Console socket '{path}' is being served by another process; stop it or choose another path.");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // Nobody listens: left behind by a process that is gone.
            }
        }
        LogReplacingStale(logger, path);
        File.Delete(path);
    }

    private static bool IsSocketFile(string path)
    {
        try
        {
            return FileStat.FileType(path) == FileStat.S_IFSOCK;
        }
        catch (IOException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Serial console listening on {Path}")]
    private static partial void LogListening(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Replacing stale console socket {Path}")]
    private static partial void LogReplacingStale(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Console client attached on {Path}")]
    private static partial void LogClientAttached(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Console client detached from {Path}")]
    private static partial void LogClientDetached(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Console client refused on {Path}: another client is attached")]
    private static partial void LogClientRefused(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Accepting a console client on {Path} failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, string path, SocketError error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Console client on {Path} did not take the last {Bytes} byte(s) of output before teardown")]
    private static partial void LogDrainTimedOut(ILogger logger, string path, long bytes);
}

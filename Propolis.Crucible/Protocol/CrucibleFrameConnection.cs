using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// Sends and receives Crucible frames over a connected socket or a stream (e.g. TLS), for
/// both the upstairs and the downstairs.
/// </summary>
/// <remarks>
/// <para>Receiving: one caller at a time. Bytes are read into a pooled buffer and decoded in
/// place; bulk data is handed out as a slice of that buffer inside a
/// <see cref="ReceivedMessage"/>. Only the declared length of the frame being read (at most
/// <see cref="CrucibleProtocol.MaxFrameLength"/>) is ever reserved. A protocol error is
/// raised as <see cref="CrucibleProtocolException"/> and every later receive raises it again:
/// the byte stream is out of frame and the connection must be closed.</para>
/// <para>Sending: any number of callers; frames are serialized by a send lock. The frame
/// head is encoded into a pooled buffer and the bulk data is sent from the caller's memory,
/// on a socket in one gather write, on a stream as a second write. Disposing the
/// connection aborts a send in progress.</para>
/// <para>Receives and sends that have to wait reuse pooled state machines
/// (<see cref="PoolingAsyncValueTaskMethodBuilder"/>), so a message in steady state allocates
/// no task: await each returned <see cref="ValueTask"/> once.</para>
/// </remarks>
public sealed class CrucibleFrameConnection : IAsyncDisposable, IDisposable
{
    /// <summary>Receive buffer size when no larger frame requires more.</summary>
    public const int DefaultReceiveBufferSize = 256 * 1024;

    private readonly Socket? _socket;
    private readonly Stream? _stream;
    private readonly bool _ownsTransport;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly PooledBufferWriter _head = new(4096);
    private readonly ArraySegment<byte>[] _gather = new ArraySegment<byte>[2];
    private GatherSend? _gatherSend;

    private ReceiveBuffer _receive = new(DefaultReceiveBufferSize);
    private int _start;
    private int _end;
    private CrucibleProtocolException? _broken;
    private int _disposed;

    /// <summary>Frames over a connected stream socket.</summary>
    public CrucibleFrameConnection(Socket socket, bool ownsSocket = true)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        _ownsTransport = ownsSocket;
    }

    /// <summary>Frames over a stream (NetworkStream, SslStream, a pipe).</summary>
    public CrucibleFrameConnection(Stream stream, bool ownsStream = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _ownsTransport = ownsStream;
    }

    /// <summary>
    /// Receives the next message. Returns null when the peer closed the connection between
    /// frames; throws <see cref="CrucibleProtocolException"/> on a malformed frame or a close
    /// in the middle of one.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReceivedMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        while (true)
        {
            if (_broken is not null)
            {
                throw _broken;
            }

            ReadOnlyMemory<byte> pending = _receive.Array.AsMemory(_start, _end - _start);
            ReadStatus status = MessageReader.TryRead(pending, out Message? message, out int consumed,
                out CrucibleProtocolException? error);
            if (status == ReadStatus.Complete)
            {
                _start += consumed;
                ReceiveBuffer? owner = null;
                if (!message!.BulkData.IsEmpty)
                {
                    _receive.AddReference();
                    owner = _receive;
                }
                if (_start == _end && !_receive.IsShared)
                {
                    _start = _end = 0;
                }
                return new ReceivedMessage(message, owner);
            }
            if (status == ReadStatus.ProtocolError)
            {
                _broken = error;
                throw error!;
            }

            int needed = MessageReader.TryPeekFrameLength(pending.Span, out uint length)
                ? (int)length
                : CrucibleProtocol.FrameLengthSize;
            MakeRoom(needed);
            int n = await ReceiveSomeAsync(_receive.Array.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (_start == _end)
                {
                    return null;
                }
                _broken = new CrucibleProtocolException(ProtocolErrorKind.ConnectionClosedMidFrame, _end - _start,
                    $"the peer closed the connection after {_end - _start} bytes of a frame");
                throw _broken;
            }
            _end += n;
        }
    }

    /// <summary>Ensures the buffer can hold <paramref name="needed"/> bytes from the read position.</summary>
    private void MakeRoom(int needed)
    {
        byte[] array = _receive.Array;
        if (array.Length - _start >= needed)
        {
            return;
        }
        int pending = _end - _start;
        if (!_receive.IsShared && array.Length >= needed)
        {
            array.AsSpan(_start, pending).CopyTo(array);
        }
        else
        {
            var bigger = new ReceiveBuffer(Math.Max(needed, DefaultReceiveBufferSize));
            array.AsSpan(_start, pending).CopyTo(bigger.Array);
            _receive.Release();
            _receive = bigger;
        }
        _start = 0;
        _end = pending;
    }

    private ValueTask<int> ReceiveSomeAsync(Memory<byte> destination, CancellationToken cancellationToken) =>
        _socket is not null
            ? _socket.ReceiveAsync(destination, SocketFlags.None, cancellationToken)
            : _stream!.ReadAsync(destination, cancellationToken);

    /// <summary>Sends one message as one frame.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendAsync(Message message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _head.Reset();
            ReadOnlyMemory<byte> bulk = MessageWriter.WriteHead(_head, message);
            if (_socket is not null)
            {
                await SendOnSocketAsync(_socket, bulk, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _stream!.WriteAsync(_head.WrittenMemory, cancellationToken).ConfigureAwait(false);
                if (!bulk.IsEmpty)
                {
                    await _stream.WriteAsync(bulk, cancellationToken).ConfigureAwait(false);
                }
                await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendOnSocketAsync(Socket socket, ReadOnlyMemory<byte> bulk, CancellationToken cancellationToken)
    {
        ArraySegment<byte> head = _head.WrittenSegment;
        if (bulk.IsEmpty || !MemoryMarshal.TryGetArray(bulk, out ArraySegment<byte> data))
        {
            // No bulk data, or bulk data in native memory: two sends, still no copy.
            await SendAllAsync(socket, head, cancellationToken).ConfigureAwait(false);
            if (!bulk.IsEmpty)
            {
                await SendAllAsync(socket, bulk, cancellationToken).ConfigureAwait(false);
            }
            return;
        }

        cancellationToken.ThrowIfCancellationRequested();
        _gather[0] = head;
        _gather[1] = data;
        // Through a reusable SocketAsyncEventArgs: Socket.SendAsync(IList) would allocate a Task per frame.
        _gatherSend ??= new GatherSend(_gather);
        int sent = await _gatherSend.SendAsync(socket).ConfigureAwait(false);
        // A stream socket sends all of it; finish by hand if a partial send ever shows up.
        if (sent < head.Count)
        {
            await SendAllAsync(socket, head.AsMemory(sent), cancellationToken).ConfigureAwait(false);
            sent = head.Count;
        }
        int dataSent = sent - head.Count;
        if (dataSent < data.Count)
        {
            await SendAllAsync(socket, data.AsMemory(dataSent), cancellationToken).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        while (!bytes.IsEmpty)
        {
            int n = await socket.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            bytes = bytes[n..];
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        if (_ownsTransport)
        {
            _socket?.Dispose();
            _stream?.Dispose();
        }
        _receive.Release();
        _gatherSend?.Dispose(); // deferred by the runtime until a send in progress completes
        // The head buffer may be in use by a send that the close above is aborting; let the
        // GC take it rather than return it to the pool under that send.
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>One gather send at a time (the send lock), awaitable without a task per send.</summary>
    private sealed class GatherSend : SocketAsyncEventArgs, System.Threading.Tasks.Sources.IValueTaskSource<int>
    {
        private System.Threading.Tasks.Sources.ManualResetValueTaskSourceCore<int> _core;

        public GatherSend(ArraySegment<byte>[] buffers) : base(unsafeSuppressExecutionContextFlow: true)
        {
            _core.RunContinuationsAsynchronously = false; // inline on the completion thread, as the socket's own awaitables
            _buffers = buffers;
        }

        private readonly ArraySegment<byte>[] _buffers;

        public ValueTask<int> SendAsync(Socket socket)
        {
            _core.Reset();
            BufferList = _buffers; // copies the two segments into its own reused list
            if (!socket.SendAsync(this))
            {
                return SocketError == SocketError.Success
                    ? new ValueTask<int>(BytesTransferred)
                    : ValueTask.FromException<int>(new SocketException((int)SocketError));
            }
            return new ValueTask<int>(this, _core.Version);
        }

        protected override void OnCompleted(SocketAsyncEventArgs e)
        {
            if (SocketError == SocketError.Success)
            {
                _core.SetResult(BytesTransferred);
            }
            else
            {
                _core.SetException(new SocketException((int)SocketError));
            }
        }

        public int GetResult(short token) => _core.GetResult(token);

        public System.Threading.Tasks.Sources.ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token,
            System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}

using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>A read-only stream over bytes that returns at most <c>maxRead</c> bytes per read.</summary>
internal sealed class ChunkedStream(byte[] data, int maxRead) : Stream
{
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => data.Length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = Math.Min(Math.Min(buffer.Length, maxRead), data.Length - _position);
        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

public class CrucibleFrameConnectionTests
{
    private static async Task<(Socket Client, Socket Server)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task connect = client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await listener.AcceptAsync();
        await connect;
        return (client, server);
    }

    [Fact]
    public async Task MessagesCrossALoopbackSocketInBothDirections()
    {
        (Socket c, Socket s) = await ConnectedPairAsync();
        await using var upstairs = new CrucibleFrameConnection(c);
        await using var downstairs = new CrucibleFrameConnection(s);
        var gen = new MessageGenerator(31);
        var sent = Enumerable.Range(0, 200).Select(_ => gen.Next()).ToList();

        Task sender = Task.Run(async () =>
        {
            foreach (Message m in sent)
            {
                await upstairs.SendAsync(m);
            }
        });
        var received = new List<Message>();
        var held = new List<ReceivedMessage>();
        for (int i = 0; i < sent.Count; i++)
        {
            ReceivedMessage? r = await downstairs.ReceiveAsync();
            Assert.NotNull(r);
            received.Add(r!.Message);
            held.Add(r); // keep every lease: the connection must not overwrite their bulk data
        }
        await sender;
        Assert.Equal(sent, received);
        held.ForEach(h => h.Dispose());

        await downstairs.SendAsync(Message.Imok.Instance);
        using ReceivedMessage? pong = await upstairs.ReceiveAsync();
        Assert.Equal(Message.Imok.Instance, pong!.Message);
    }

    [Fact]
    public async Task ReceivedBulkDataIsASliceOfTheReceiveBufferAndSurvivesLaterReceives()
    {
        (Socket c, Socket s) = await ConnectedPairAsync();
        await using var upstairs = new CrucibleFrameConnection(c);
        await using var downstairs = new CrucibleFrameConnection(s);
        var header = new WriteHeader(Guid.NewGuid(), Guid.NewGuid(), new JobId(1), ValueArray<JobId>.Empty,
            new BlockIndex(0), new[] { new BlockContext(1, null), new BlockContext(2, null) });
        byte[] first = Enumerable.Range(0, 1024).Select(i => (byte)i).ToArray();
        byte[] second = Enumerable.Range(0, 1024).Select(i => (byte)~i).ToArray();

        await upstairs.SendAsync(new Message.Write(header, first));
        await upstairs.SendAsync(new Message.Write(header with { JobId = new JobId(2) }, second));
        // A frame larger than the default receive buffer forces a new buffer while the first is shared.
        byte[] big = new byte[CrucibleFrameConnection.DefaultReceiveBufferSize * 2];
        new Random(3).NextBytes(big);
        await upstairs.SendAsync(new Message.Write(header with { JobId = new JobId(3) }, big));

        using ReceivedMessage? r1 = await downstairs.ReceiveAsync();
        using ReceivedMessage? r2 = await downstairs.ReceiveAsync();
        using ReceivedMessage? r3 = await downstairs.ReceiveAsync();
        var w1 = (Message.Write)r1!.Message;
        Assert.True(MemoryMarshal.TryGetArray(w1.Data, out ArraySegment<byte> segment));
        Assert.True(segment.Array!.Length > first.Length, "the data is a window on the receive buffer, not a copy");
        Assert.Equal(first, w1.Data.ToArray());
        Assert.Equal(second, ((Message.Write)r2!.Message).Data.ToArray());
        Assert.Equal(big, ((Message.Write)r3!.Message).Data.ToArray());
    }

    [Fact]
    public async Task OneByteReadsFromAStreamGiveTheSameMessages()
    {
        var gen = new MessageGenerator(32);
        var sent = Enumerable.Range(0, 60).Select(_ => gen.Next()).ToList();
        var buffer = new ArrayBufferWriter<byte>();
        sent.ForEach(m => MessageWriter.Write(buffer, m));
        foreach (int maxRead in new[] { 1, 3, 17, 4096 })
        {
            await using var connection = new CrucibleFrameConnection(new ChunkedStream(buffer.WrittenSpan.ToArray(), maxRead));
            var received = new List<Message>();
            while (await connection.ReceiveAsync() is { } r)
            {
                received.Add(r.Message);
            }
            Assert.Equal(sent, received);
        }
    }

    [Fact]
    public async Task CloseInTheMiddleOfAFrameIsAProtocolError()
    {
        byte[] frame = MessageWriter.ToArray(new Message.VersionMismatch(13));
        await using var connection = new CrucibleFrameConnection(new ChunkedStream(frame[..^1], 5));
        var e = await Assert.ThrowsAsync<CrucibleProtocolException>(async () => await connection.ReceiveAsync());
        Assert.Equal(ProtocolErrorKind.ConnectionClosedMidFrame, e.Kind);
    }

    [Fact]
    public async Task AnOversizedLengthPrefixIsRefusedBeforeTheBodyArrives()
    {
        byte[] prefix = BitConverter.GetBytes((uint)CrucibleProtocol.MaxFrameLength + 1);
        await using var connection = new CrucibleFrameConnection(new ChunkedStream(prefix, 4));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = await Assert.ThrowsAsync<CrucibleProtocolException>(async () => await connection.ReceiveAsync());
        Assert.Equal(ProtocolErrorKind.FrameTooLarge, e.Kind);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1024 * 1024);
        // The connection stays broken.
        await Assert.ThrowsAsync<CrucibleProtocolException>(async () => await connection.ReceiveAsync());
    }

    [Fact]
    public async Task StreamTransportSendsHeadThenBulkData()
    {
        var sink = new MemoryStream();
        var header = new WriteHeader(Guid.NewGuid(), Guid.NewGuid(), new JobId(1), ValueArray<JobId>.Empty,
            new BlockIndex(0), new[] { new BlockContext(1, null) });
        var m = new Message.Write(header, new byte[512]);
        await using (var connection = new CrucibleFrameConnection(sink, ownsStream: false))
        {
            await connection.SendAsync(m);
            await connection.SendAsync(Message.Ruok.Instance);
        }
        byte[] expected = [.. MessageWriter.ToArray(m), .. MessageWriter.ToArray(Message.Ruok.Instance)];
        Assert.Equal(expected, sink.ToArray());
    }
}

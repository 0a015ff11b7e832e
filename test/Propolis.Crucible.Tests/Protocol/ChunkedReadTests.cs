using System.Buffers;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>Reading a stream of frames in pieces gives what reading it at once gives.</summary>
public class ChunkedReadTests
{
    private static (List<Message> Messages, byte[] Stream) RandomStream(int seed, int count)
    {
        var gen = new MessageGenerator(seed);
        var messages = new List<Message>();
        var buffer = new ArrayBufferWriter<byte>();
        for (int i = 0; i < count; i++)
        {
            Message m = gen.Next();
            messages.Add(m);
            MessageWriter.Write(buffer, m);
        }
        return (messages, buffer.WrittenSpan.ToArray());
    }

    private static List<Message> ReadAll(ReadOnlySequence<byte> sequence)
    {
        var result = new List<Message>();
        while (true)
        {
            ReadStatus status = MessageReader.TryRead(sequence, out Message? m, out long consumed, out var error);
            Assert.Null(error);
            if (status == ReadStatus.NeedMoreData)
            {
                Assert.Equal(0, consumed);
                return result;
            }
            Assert.Equal(ReadStatus.Complete, status);
            result.Add(m!);
            sequence = sequence.Slice(consumed);
        }
    }

    [Fact]
    public void SplittingTheStreamAtEveryPositionGivesTheSameMessages()
    {
        (List<Message> messages, byte[] stream) = RandomStream(seed: 11, count: 24);
        Assert.Equal(messages, ReadAll(new ReadOnlySequence<byte>(stream)));
        for (int cut = 0; cut <= stream.Length; cut++)
        {
            Assert.Equal(messages, ReadAll(Sequences.Split(stream, cut)));
        }
    }

    [Fact]
    public void OneByteSegmentsGiveTheSameMessages()
    {
        (List<Message> messages, byte[] stream) = RandomStream(seed: 12, count: 16);
        int[] everyByte = Enumerable.Range(1, stream.Length - 1).ToArray();
        Assert.Equal(messages, ReadAll(Sequences.Split(stream, everyByte)));
    }

    [Fact]
    public void EveryProperPrefixOfAFrameNeedsMoreData()
    {
        var gen = new MessageGenerator(seed: 13);
        foreach (MessageTag tag in Enum.GetValues<MessageTag>())
        {
            byte[] frame = MessageWriter.ToArray(gen.Make(tag));
            for (int n = 0; n < frame.Length; n++)
            {
                Assert.Equal(ReadStatus.NeedMoreData, MessageReader.TryRead(frame.AsSpan(0, n), out Message? m, out int consumed, out _));
                Assert.Null(m);
                Assert.Equal(0, consumed);
            }
        }
    }

    [Fact]
    public void IncrementalReceiverWithRandomChunksEqualsOneShot()
    {
        (List<Message> messages, byte[] stream) = RandomStream(seed: 14, count: 64);
        var random = new Random(15);
        for (int round = 0; round < 50; round++)
        {
            var received = new List<Message>();
            var pending = new List<byte>();
            int offset = 0;
            while (offset < stream.Length)
            {
                int chunk = Math.Min(stream.Length - offset, 1 + random.Next(random.Next(2) == 0 ? 8 : 700));
                pending.AddRange(stream.AsSpan(offset, chunk).ToArray());
                offset += chunk;
                while (true)
                {
                    byte[] view = pending.ToArray();
                    ReadStatus status = MessageReader.TryRead(view.AsSpan(), out Message? m, out int consumed, out _);
                    if (status != ReadStatus.Complete)
                    {
                        Assert.Equal(ReadStatus.NeedMoreData, status);
                        break;
                    }
                    received.Add(m!);
                    pending.RemoveRange(0, consumed);
                }
            }
            Assert.Empty(pending);
            Assert.Equal(messages, received);
        }
    }

    [Fact]
    public void BulkDataFromMemoryIsASliceOfTheInput()
    {
        var gen = new MessageGenerator(seed: 16);
        var write = (Message.Write)gen.Make(MessageTag.Write);
        while (write.Data.IsEmpty)
        {
            write = (Message.Write)gen.Make(MessageTag.Write);
        }
        byte[] frame = MessageWriter.ToArray(write);
        MessageReader.TryRead(frame.AsMemory(), out Message? decoded, out _, out _);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(((Message.Write)decoded!).Data, out ArraySegment<byte> segment));
        Assert.Same(frame, segment.Array);
        Assert.Equal(frame.Length - write.Data.Length, segment.Offset);
    }
}

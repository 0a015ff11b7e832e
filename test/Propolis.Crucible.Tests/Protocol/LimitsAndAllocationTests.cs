using System.Buffers;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

public class LimitsAndAllocationTests
{
    private static Message.Write EncryptedWrite(int blocks, ReadOnlyMemory<byte> data)
    {
        var ctx = new EncryptionContext(new byte[12], new byte[16]);
        var header = new WriteHeader(Guid.NewGuid(), Guid.NewGuid(), new JobId(1), new[] { new JobId(1) },
            new BlockIndex(0), Enumerable.Repeat(new BlockContext(0, ctx), blocks).ToArray());
        return new Message.Write(header, data);
    }

    [Theory]
    [InlineData(512, 190997)]
    [InlineData(4096, 25370)]
    [InlineData(8192, 12742)]
    [InlineData(32768, 3196)]
    public void MaxIoBlocksIsTheLargestWriteThatFitsInAFrame(int blockSize, int expected)
    {
        int n = CrucibleProtocol.MaxIoBlocks(blockSize);
        Assert.Equal(expected, n);
        using var data = new NativeBuffer((n + 1) * blockSize);
        Assert.True(MessageWriter.GetFrameLength(EncryptedWrite(n, data.Memory[..(n * blockSize)])) <= CrucibleProtocol.MaxFrameLength);
        var e = Assert.Throws<CrucibleProtocolException>(() => MessageWriter.GetFrameLength(EncryptedWrite(n + 1, data.Memory)));
        Assert.Equal(ProtocolErrorKind.MessageTooLarge, e.Kind);
    }

    [Fact]
    public void EncodingAWriteHeadAllocatesNothing()
    {
        var gen = new MessageGenerator(41);
        var messages = Enum.GetValues<MessageTag>().Select(gen.Make).ToArray();
        var output = new PooledBufferWriter(64 * 1024);
        foreach (Message m in messages)
        {
            output.Reset();
            MessageWriter.WriteHead(output, m); // warm up
        }
        foreach (Message m in messages)
        {
            output.Reset();
            long before = GC.GetAllocatedBytesForCurrentThread();
            MessageWriter.WriteHead(output, m);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated == 0, $"{m.Tag}: encoding allocated {allocated} bytes");
        }
    }

    [Fact]
    public void DecodingAWriteAllocatesOnlyTheMessageNotTheData()
    {
        byte[] data = new byte[64 * 4096];
        var write = EncryptedWrite(64, data);
        byte[] frame = MessageWriter.ToArray(write);
        MessageReader.TryRead(frame.AsMemory(), out _, out _, out _); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(ReadStatus.Complete, MessageReader.TryRead(frame.AsMemory(), out Message? m, out _, out _));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(write, m);
        // Two records, one JobId[1], one BlockContext[64]: a few KiB, against 256 KiB of data.
        Assert.True(allocated < 8 * 1024, $"decoding allocated {allocated} bytes");
    }
}

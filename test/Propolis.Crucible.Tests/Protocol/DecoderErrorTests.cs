using System.Buffers.Binary;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>Each invalid input gets its own protocol error kind.</summary>
public class DecoderErrorTests
{
    private static ProtocolErrorKind ErrorOf(string hex)
    {
        byte[] frame = Hex.Parse(hex);
        Assert.Equal(ReadStatus.ProtocolError, MessageReader.TryRead(frame.AsMemory(), out Message? m, out int consumed, out var e));
        Assert.Null(m);
        Assert.Equal(0, consumed);
        return e!.Kind;
    }

    private static Message Decode(string hex) => MessageReader.ReadFrame(Hex.Parse(hex).AsSpan());

    [Fact]
    public void LengthPrefixLimits()
    {
        Assert.Equal(ProtocolErrorKind.FrameLengthTooSmall, ErrorOf("03000000"));
        Assert.Equal(ProtocolErrorKind.FrameTooLarge, ErrorOf("01004006"));          // 100 MiB + 1
        Assert.Equal(ProtocolErrorKind.FrameTooLarge, ErrorOf("ffffffff"));
        // Exactly 100 MiB is allowed: the decoder waits for it.
        Assert.Equal(ReadStatus.NeedMoreData, MessageReader.TryRead(Hex.Parse("00004006 1e000000"), out _, out _, out _));
        Assert.Equal(ProtocolErrorKind.Truncated, ErrorOf("04000000"));               // no tag
    }

    [Fact]
    public void BadValues()
    {
        Assert.Equal(ProtocolErrorKind.InvalidMessageTag, ErrorOf("08000000 2a000000"));     // tag 42
        Assert.Equal(ProtocolErrorKind.InvalidBool, ErrorOf("09000000 03000000 02"));        // ReadOnlyMismatch { expected: 2 }
        Assert.Equal(ProtocolErrorKind.InvalidOptionTag, ErrorOf("09000000 1d000000 02"));   // LastFlush Option tag 2
        Assert.Equal(ProtocolErrorKind.InvalidUuidLength,
            ErrorOf("1f000000 08000000 0f00000000000000 000102030405060708090a0b0c0d0e"));   // UuidMismatch, 15 bytes
        Assert.Equal(ProtocolErrorKind.InvalidEnumTag, ErrorOf("11000000 01000000 0d000000 02000000 00"));  // SocketAddr tag 2
        Assert.Equal(ProtocolErrorKind.InvalidClientId,
            ErrorOf("25000000 0d000000 0000000000000000 00000000 03 0000000000000000 0000000000000000")); // ExtentFlush client 3
        Assert.Equal(ProtocolErrorKind.Truncated, ErrorOf("0a000000 02000000 5634"));        // VersionMismatch cut short
    }

    [Fact]
    public void InvalidUtf8InAString()
    {
        // ExtentError { repair_id 0, extent_id 0, error: GenericError("\xff") }
        Assert.Equal(ProtocolErrorKind.InvalidUtf8,
            ErrorOf("21000000 10000000 0000000000000000 00000000 00000000 0100000000000000 ff"));
    }

    [Fact]
    public void SequenceLengthsAreCheckedBeforeAllocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        // ExtentVersions { gen_numbers: len 2^60 }
        Assert.Equal(ProtocolErrorKind.LengthOutOfRange, ErrorOf("10000000 1c000000 0000000000000010"));
        // HereIAm alternate_versions claiming u64::MAX entries
        Assert.Equal(ProtocolErrorKind.LengthOutOfRange, ErrorOf($"""
            4e000000 00000000 0d000000
            1000000000000000 00000000000000000000000000000000
            1000000000000000 00000000000000000000000000000000
            0100000000000000 00 00
            ffffffffffffffff
            """));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 256 * 1024);
    }

    [Fact]
    public void BulkDataLengthMayNotReachIntoTheHeader()
    {
        byte[] frame = MessageWriter.ToArray(new Message.Write(
            new WriteHeader(Guid.Empty, Guid.Empty, new JobId(1), ValueArray<JobId>.Empty, new BlockIndex(0),
                new[] { new BlockContext(0, null) }), new byte[8]));
        int lengthAt = frame.Length - 8 - 8;
        Assert.Equal(8ul, BinaryPrimitives.ReadUInt64LittleEndian(frame.AsSpan(lengthAt)));
        BinaryPrimitives.WriteUInt64LittleEndian(frame.AsSpan(lengthAt), 9);
        Assert.Equal(ReadStatus.ProtocolError, MessageReader.TryRead(frame.AsMemory(), out _, out _, out var e));
        Assert.Equal(ProtocolErrorKind.BulkDataOutOfRange, e!.Kind);
    }

    [Fact]
    public void TrailingBytesInAFrameAreIgnoredLikeTheRealDecoder()
    {
        // Ruok followed by 3 stray bytes inside its frame; then a second frame.
        byte[] bytes = Hex.Parse("0b000000 09000000 aabbcc  08000000 0a000000");
        Assert.Equal(ReadStatus.Complete, MessageReader.TryRead(bytes.AsSpan(), out Message? m, out int consumed, out _));
        Assert.Equal(Message.Ruok.Instance, m);
        Assert.Equal(11, consumed);
        Assert.Equal(Message.Imok.Instance, Decode("08000000 0a000000"));

        // Bulk data is the tail of the frame, whatever lies between the header and it.
        var header = new WriteHeader(Guid.Empty, Guid.Empty, new JobId(1), ValueArray<JobId>.Empty, new BlockIndex(0),
            new[] { new BlockContext(0, null) });
        byte[] frame = MessageWriter.ToArray(new Message.Write(header, new byte[] { 1, 2 }));
        int lengthAt = frame.Length - 2 - 8;
        byte[] padded = [.. frame[..(lengthAt + 8)], 0xee, 0xee, .. frame[^2..]];
        BinaryPrimitives.WriteUInt32LittleEndian(padded, (uint)padded.Length);
        var w = (Message.Write)MessageReader.ReadFrame(padded.AsMemory());
        Assert.Equal(new byte[] { 1, 2 }, w.Data.ToArray());
    }

    [Fact]
    public void ReadFrameRequiresExactlyOneFrame()
    {
        var e = Assert.Throws<CrucibleProtocolException>(() => MessageReader.ReadFrame(Hex.Parse("08000000 09000000 00").AsSpan()));
        Assert.Equal(ProtocolErrorKind.Truncated, e.Kind);
    }
}

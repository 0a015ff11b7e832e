using System.Buffers;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>encode → decode is the identity, for every variant, through every decoder entry point.</summary>
public class RoundTripPropertyTests
{
    public static TheoryData<MessageTag> AllTags() => new(Enum.GetValues<MessageTag>());

    [Theory]
    [MemberData(nameof(AllTags))]
    public void EveryVariantRoundTripsWithRandomFields(MessageTag tag)
    {
        var gen = new MessageGenerator(seed: 1000 + (int)tag);
        for (int i = 0; i < 200; i++)
        {
            Message original = gen.Make(tag);
            Assert.Equal(tag, original.Tag);
            byte[] frame = MessageWriter.ToArray(original);
            Assert.Equal(frame.Length, (int)BitConverter.ToUInt32(frame, 0));
            Assert.Equal((uint)tag, BitConverter.ToUInt32(frame, 4));

            Assert.Equal(ReadStatus.Complete, MessageReader.TryRead(frame.AsMemory(), out Message? fromMemory, out int c1, out _));
            Assert.Equal(ReadStatus.Complete, MessageReader.TryRead(frame.AsSpan(), out Message? fromSpan, out int c2, out _));
            ReadOnlySequence<byte> seq = Sequences.Split(frame, gen.Random.Next(frame.Length), gen.Random.Next(frame.Length));
            Assert.Equal(ReadStatus.Complete, MessageReader.TryRead(seq, out Message? fromSequence, out long c3, out _));

            Assert.Equal(original, fromMemory);
            Assert.Equal(original, fromSpan);
            Assert.Equal(original, fromSequence);
            Assert.Equal(frame.Length, c1);
            Assert.Equal(frame.Length, c2);
            Assert.Equal(frame.Length, c3);
            // Canonical: re-encoding the decoded message gives the same bytes.
            Assert.Equal(frame, MessageWriter.ToArray(fromMemory!));
        }
    }

    [Fact]
    public void EveryCrucibleErrorAndNegotiationErrorVariantRoundTrips()
    {
        var gen = new MessageGenerator(seed: 7);
        var errors = new List<CrucibleError>();
        foreach (CrucibleErrorKind kind in Enum.GetValues<CrucibleErrorKind>())
        {
            errors.Add(CrucibleError.PayloadOf(kind) switch
            {
                ErrorPayload.String => CrucibleError.WithDetail(kind, $"detail of {kind}"),
                ErrorPayload.ContextSlot => CrucibleError.MissingContextSlot(ulong.MaxValue, 0xabc),
                ErrorPayload.Negotiation => CrucibleError.NegotiationError(gen.Negotiation()),
                _ => CrucibleError.Of(kind),
            });
        }
        for (int i = 0; i < 64; i++)
        {
            errors.Add(CrucibleError.NegotiationError(gen.Negotiation()));
        }
        Assert.Equal(42, Enum.GetValues<CrucibleErrorKind>().Length);

        foreach (CrucibleError error in errors)
        {
            var m = new Message.ErrorReport(Guid.NewGuid(), Guid.NewGuid(), new JobId(1), error);
            byte[] frame = MessageWriter.ToArray(m);
            Assert.Equal((uint)error.Kind, BitConverter.ToUInt32(frame, 4 + 4 + 24 + 24 + 8));
            Message back = MessageReader.ReadFrame(frame.AsSpan());
            Assert.Equal(m, back);
            Assert.Equal(error, back.Err);
        }
    }

    [Fact]
    public void DisplayTextFollowsTheRealErrorStrings()
    {
        Assert.Equal("IO Error: boom", CrucibleError.IoError("boom").ToString());
        Assert.Equal("Integrity hash mismatch!", CrucibleError.Of(CrucibleErrorKind.HashMismatch).ToString());
        Assert.Equal("missing context slot for block 513 in extent 42 (02A)", CrucibleError.MissingContextSlot(513, 42).ToString());
        Assert.Equal("Negotiation error: Generation number is too low: requested 3, found 5",
            CrucibleError.NegotiationError(NegotiationError.GenerationNumberTooLow(3, 5)).ToString());
        Assert.Equal("Incompatible read-only settings: wanted true, got false",
            NegotiationError.ReadOnlyMismatch(true, false).ToString());
        Assert.Throws<ArgumentException>(() => CrucibleError.Of(CrucibleErrorKind.IoError));
        Assert.Throws<ArgumentException>(() => CrucibleError.WithDetail(CrucibleErrorKind.HashMismatch, "x"));
    }

    [Fact]
    public void UuidIsSentInRfcByteOrder()
    {
        var id = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        byte[] frame = MessageWriter.ToArray(new Message.UuidMismatch(id));
        Assert.Equal("2000000008000000" + "1000000000000000" + "00112233445566778899aabbccddeeff", Hex.Format(frame));
    }

    [Fact]
    public void EncoderRefusesFramesOverTheLimit_LikeEncodingMaxFrameLengthBails()
    {
        // The real test writes MAX_FRM_LEN bytes of data in a Write: with its header the frame
        // is over the limit. The data lives in untouched native memory; the encoder must refuse
        // before reading it.
        using var data = new NativeBuffer(CrucibleProtocol.MaxFrameLength);
        var header = new WriteHeader(Guid.NewGuid(), Guid.NewGuid(), new JobId(1), ValueArray<JobId>.Empty,
            new BlockIndex(0), new[] { new BlockContext(0, null) });
        var m = new Message.Write(header, data.Memory);
        var e = Assert.Throws<CrucibleProtocolException>(() => MessageWriter.GetFrameLength(m));
        Assert.Equal(ProtocolErrorKind.MessageTooLarge, e.Kind);
        var sink = new ArrayBufferWriter<byte>();
        Assert.Throws<CrucibleProtocolException>(() => MessageWriter.Write(sink, m));
        Assert.Equal(0, sink.WrittenCount);
    }
}

/// <summary>Native memory exposed as <see cref="Memory{T}"/>; pages are not touched until read.</summary>
internal sealed unsafe class NativeBuffer : MemoryManager<byte>
{
    private readonly byte* _pointer;
    private readonly int _length;

    public NativeBuffer(int length)
    {
        _length = length;
        _pointer = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)length);
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing) => System.Runtime.InteropServices.NativeMemory.Free(_pointer);
}

using System.Buffers;
using System.Buffers.Binary;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>
/// Fuzz target for the frame decoder, run as a unit test over generated corpora. For any
/// input: no decoder entry point throws; all entry points agree on the outcome; a decoded
/// frame re-encodes to a frame that decodes to the same message; and the bytes allocated
/// while decoding stay within a small multiple of the frame (never the size a length field
/// merely claims).
/// </summary>
internal static class MessageReaderFuzzer
{
    /// <summary>Generous bound: in-memory elements may be ~12x their wire size (ReadBlockContext::Empty).</summary>
    private static long AllocationBudget(long frameBytes) => 16 * frameBytes + 256 * 1024;

    /// <summary>Returns how many frames decoded and how the input ended.</summary>
    public static (int Frames, ReadStatus End) Fuzz(byte[] input, int cut1, int cut2)
    {
        ReadOnlyMemory<byte> remaining = input;
        ReadOnlySequence<byte> sequence = Sequences.Split(input, cut1, cut2);
        int frames = 0;
        while (frames < 10_000)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            ReadStatus s1 = MessageReader.TryRead(remaining, out Message? m1, out int c1, out CrucibleProtocolException? e1);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            ReadStatus s2 = MessageReader.TryRead(remaining.Span, out Message? m2, out int c2, out CrucibleProtocolException? e2);
            ReadStatus s3 = MessageReader.TryRead(sequence, out Message? m3, out long c3, out CrucibleProtocolException? e3);

            Assert.Equal(s1, s2);
            Assert.Equal(s1, s3);
            Assert.Equal(c1, c2);
            Assert.Equal(c1, c3);
            Assert.True(allocated <= AllocationBudget(c1 > 0 ? c1 : Math.Min(remaining.Length, CrucibleProtocol.MaxFrameLength)),
                $"decoding allocated {allocated} bytes for {remaining.Length} input bytes");

            switch (s1)
            {
                case ReadStatus.NeedMoreData:
                    Assert.Equal(0, c1);
                    Assert.Null(m1);
                    Assert.Null(e1);
                    return (frames, s1);
                case ReadStatus.ProtocolError:
                    Assert.NotNull(e1);
                    Assert.Equal(e1!.Kind, e2!.Kind);
                    Assert.Equal(e1.Kind, e3!.Kind);
                    Assert.Null(m1);
                    return (frames, s1);
                default:
                    Assert.Equal(m1, m2);
                    Assert.Equal(m1, m3);
                    byte[] again = MessageWriter.ToArray(m1!);
                    Assert.True(again.Length <= c1, "a decoded frame re-encodes to at most its own size (trailing bytes are ignored)");
                    Assert.Equal(m1, MessageReader.ReadFrame(again.AsSpan()));
                    remaining = remaining[c1..];
                    sequence = sequence.Slice(c1);
                    frames++;
                    break;
            }
        }
        Assert.Fail("the decoder did not make progress");
        return default;
    }
}

public class MessageReaderFuzzTests
{
    private static byte[] ValidStream(MessageGenerator gen, int count)
    {
        var buffer = new ArrayBufferWriter<byte>();
        for (int i = 0; i < count; i++)
        {
            MessageWriter.Write(buffer, gen.Next());
        }
        return buffer.WrittenSpan.ToArray();
    }

    private readonly Dictionary<ReadStatus, int> _ends = new();
    private int _frames;

    private void Run(byte[] input, Random random)
    {
        (int frames, ReadStatus end) = MessageReaderFuzzer.Fuzz(input, random.Next(input.Length + 1), random.Next(input.Length + 1));
        _frames += frames;
        _ends[end] = _ends.GetValueOrDefault(end) + 1;
    }

    /// <summary>The corpus reached every outcome often enough for the properties to mean something.</summary>
    private void AssertCoverage(int minFrames, int minErrors, int minIncomplete)
    {
        Assert.True(_frames >= minFrames, $"only {_frames} frames decoded");
        Assert.True(_ends.GetValueOrDefault(ReadStatus.ProtocolError) >= minErrors, $"only {_ends.GetValueOrDefault(ReadStatus.ProtocolError)} protocol errors");
        Assert.True(_ends.GetValueOrDefault(ReadStatus.NeedMoreData) >= minIncomplete, $"only {_ends.GetValueOrDefault(ReadStatus.NeedMoreData)} incomplete inputs");
    }

    [Fact]
    public void RandomBytes()
    {
        var random = new Random(21);
        for (int i = 0; i < 3000; i++)
        {
            var input = new byte[random.Next(0, 400)];
            random.NextBytes(input);
            if (input.Length >= 4 && random.Next(2) == 0)
            {
                // A plausible length prefix, so that the body parser is reached.
                BinaryPrimitives.WriteUInt32LittleEndian(input, (uint)random.Next(4, input.Length + 1));
            }
            if (input.Length >= 8 && random.Next(2) == 0)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(input.AsSpan(4), (uint)random.Next(45));
            }
            Run(input, random);
        }
        AssertCoverage(minFrames: 50, minErrors: 1000, minIncomplete: 50);
    }

    [Fact]
    public void MutatedValidFrames()
    {
        var gen = new MessageGenerator(22);
        Random random = gen.Random;
        for (int i = 0; i < 3000; i++)
        {
            byte[] input = ValidStream(gen, 1 + random.Next(3));
            switch (random.Next(6))
            {
                case 0: // flip bytes
                    for (int k = random.Next(1, 4); k > 0; k--)
                    {
                        input[random.Next(input.Length)] ^= (byte)random.Next(1, 256);
                    }
                    break;
                case 1: // truncate
                    input = input[..random.Next(input.Length)];
                    break;
                case 2: // a huge sequence length somewhere (Vec, String, bulk data length)
                {
                    int at = random.Next(8, Math.Max(9, input.Length - 8));
                    if (at + 8 <= input.Length)
                    {
                        ulong[] bombs = [ulong.MaxValue, 1UL << 60, 1UL << 32, (ulong)CrucibleProtocol.MaxFrameLength, (ulong)input.Length];
                        BinaryPrimitives.WriteUInt64LittleEndian(input.AsSpan(at), bombs[random.Next(bombs.Length)]);
                    }
                    break;
                }
                case 3: // a different length prefix
                {
                    uint[] lengths = [0, 1, 3, 4, 5, 8, (uint)input.Length - 1, (uint)input.Length + 1,
                        CrucibleProtocol.MaxFrameLength, CrucibleProtocol.MaxFrameLength + 1u, uint.MaxValue];
                    BinaryPrimitives.WriteUInt32LittleEndian(input, lengths[random.Next(lengths.Length)]);
                    break;
                }
                case 4: // a different tag
                    BinaryPrimitives.WriteUInt32LittleEndian(input.AsSpan(4), (uint)random.Next(-3, 50));
                    break;
                default: // garbage appended
                {
                    var tail = new byte[random.Next(1, 64)];
                    random.NextBytes(tail);
                    input = [.. input, .. tail];
                    break;
                }
            }
            Run(input, random);
        }
        AssertCoverage(minFrames: 2000, minErrors: 500, minIncomplete: 500);
    }

    [Fact]
    public async Task GarbageThroughTheConnectionOnlyRaisesProtocolErrors()
    {
        var gen = new MessageGenerator(23);
        Random random = gen.Random;
        for (int i = 0; i < 300; i++)
        {
            byte[] input = ValidStream(gen, 1 + random.Next(4));
            for (int k = random.Next(0, 3); k > 0; k--)
            {
                input[random.Next(input.Length)] = (byte)random.Next(256);
            }
            if (random.Next(3) == 0)
            {
                input = input[..random.Next(input.Length)];
            }
            await using var connection = new CrucibleFrameConnection(new ChunkedStream(input, random.Next(1, 300)));
            try
            {
                while (true)
                {
                    using ReceivedMessage? received = await connection.ReceiveAsync();
                    if (received is null)
                    {
                        break;
                    }
                }
            }
            catch (CrucibleProtocolException)
            {
                // The only failure allowed.
            }
        }
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// Encodes messages into frames as <c>CrucibleEncoder</c> and <c>MessageWriter::send_raw</c> do:
/// <c>u32</c> little-endian length (counting itself), <c>u32</c> variant index, the fields; for
/// Write, WriteUnwritten and ReadResponse the header and a <c>u64</c> data length, then the
/// data. A frame above <see cref="CrucibleProtocol.MaxFrameLength"/> is refused with
/// <see cref="ProtocolErrorKind.MessageTooLarge"/> before anything is written.
/// </summary>
public static class MessageWriter
{
    /// <summary>Size of the whole frame for <paramref name="message"/>, length prefix included.</summary>
    public static int GetFrameLength(Message message) => MeasureHead(message, out int bulk) + bulk;

    /// <summary>Writes the whole frame, copying any bulk data into <paramref name="output"/>.</summary>
    public static void Write(IBufferWriter<byte> output, Message message)
    {
        ReadOnlyMemory<byte> bulk = WriteHead(output, message);
        if (!bulk.IsEmpty)
        {
            bulk.Span.CopyTo(output.GetSpan(bulk.Length));
            output.Advance(bulk.Length);
        }
    }

    /// <summary>
    /// Writes the frame up to (not including) its bulk data and returns that data, which the
    /// caller sends next from its own memory (a gather write): the frame is the written head
    /// followed by the returned bytes. For messages without bulk data the head is the frame.
    /// </summary>
    public static ReadOnlyMemory<byte> WriteHead(IBufferWriter<byte> output, Message message)
    {
        int head = MeasureHead(message, out int bulkLength);
        Span<byte> span = output.GetSpan(head)[..head];
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)(head + bulkLength));
        var w = new BincodeWriter(span[CrucibleProtocol.FrameLengthSize..]);
        w.WriteVariant((uint)message.Tag);
        message.WriteFields(ref w);
        Debug.Assert(w.Position == head - CrucibleProtocol.FrameLengthSize);
        output.Advance(head);
        return message.BulkData;
    }

    /// <summary>The whole frame as a new array (tests, tools; not for the I/O path).</summary>
    public static byte[] ToArray(Message message)
    {
        var buffer = new ArrayBufferWriter<byte>(GetFrameLength(message));
        Write(buffer, message);
        return buffer.WrittenSpan.ToArray();
    }

    private static int MeasureHead(Message message, out int bulkLength)
    {
        var m = BincodeWriter.Measure();
        m.WriteVariant((uint)message.Tag);
        message.WriteFields(ref m);
        bulkLength = message.BulkData.Length;
        long total = CrucibleProtocol.FrameLengthSize + m.Position + bulkLength;
        if (total > CrucibleProtocol.MaxFrameLength)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.MessageTooLarge, 0,
                $"{message.Tag} frame is {total} bytes, more than maximum {CrucibleProtocol.MaxFrameLength}");
        }
        return (int)(total - bulkLength);
    }
}

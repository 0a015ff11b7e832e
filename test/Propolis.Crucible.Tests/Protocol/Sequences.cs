using System.Buffers;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>Builds multi-segment <see cref="ReadOnlySequence{T}"/>s from chunks.</summary>
internal static class Sequences
{
    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    /// <summary>A sequence whose segments are <paramref name="bytes"/> cut at <paramref name="cuts"/>.</summary>
    public static ReadOnlySequence<byte> Split(byte[] bytes, params int[] cuts)
    {
        var bounds = new List<int> { 0 };
        bounds.AddRange(cuts.Where(c => c > 0 && c < bytes.Length).Order());
        bounds.Add(bytes.Length);
        // Each segment gets its own array so a frame spanning segments cannot be read as one.
        var first = new Segment(bytes.AsSpan(bounds[0], bounds[1] - bounds[0]).ToArray(), 0);
        Segment last = first;
        for (int i = 1; i + 1 < bounds.Count; i++)
        {
            last = last.Append(bytes.AsSpan(bounds[i], bounds[i + 1] - bounds[i]).ToArray());
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}

using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Propolis.Crucible.Hashing;

/// <summary>
/// XXH64, the 64-bit xxHash (Yann Collet, xxHash specification v0.1.1, "XXH64 algorithm description").
/// Crucible's integrity hash is XXH64 with seed 0 (<c>twox_hash::XxHash64::default()</c> in
/// <c>crucible_common::integrity_hash</c>), fed the nonce, tag and block for an encrypted block, or the
/// block alone. One-shot use is <see cref="Hash(ReadOnlySpan{byte}, ulong)"/>; streaming use is a value of
/// this type: <see cref="Append"/> any number of times, then <see cref="GetCurrentHash"/>. Neither
/// allocates.
/// </summary>
public struct XxHash64
{
    // Spec §"Constants"
    private const ulong Prime1 = 0x9E3779B185EBCA87UL;
    private const ulong Prime2 = 0xC2B2AE3D27D4EB4FUL;
    private const ulong Prime3 = 0x165667B19E3779F9UL;
    private const ulong Prime4 = 0x85EBCA77C2B2AE63UL;
    private const ulong Prime5 = 0x27D4EB2F165667C5UL;

    /// <summary>Size of one stripe: four 8-byte lanes.</summary>
    private const int StripeSize = 32;

    private ulong _acc1, _acc2, _acc3, _acc4;
    private readonly ulong _seed;
    private ulong _totalLength;
    private StripeBuffer _buffer;
    private int _buffered;

    [InlineArray(StripeSize)]
    private struct StripeBuffer
    {
        private byte _element0;
    }

    /// <summary>A streaming hasher with seed 0, the seed Crucible uses.</summary>
    /// <remarks><c>default(XxHash64)</c> is not a valid hasher; construct one.</remarks>
    public XxHash64() : this(0)
    {
    }

    /// <summary>A streaming hasher with the given seed.</summary>
    public XxHash64(ulong seed)
    {
        _seed = seed;
        Reset();
    }

    /// <summary>Starts over with the seed given at construction.</summary>
    public void Reset()
    {
        // Spec §"Step 1. Initialize internal accumulators"
        _acc1 = _seed + Prime1 + Prime2;
        _acc2 = _seed + Prime2;
        _acc3 = _seed;
        _acc4 = _seed - Prime1;
        _totalLength = 0;
        _buffered = 0;
    }

    /// <summary>Feeds more input.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        _totalLength += (ulong)data.Length;
        Span<byte> buffer = _buffer;

        if (_buffered > 0)
        {
            int take = Math.Min(StripeSize - _buffered, data.Length);
            data[..take].CopyTo(buffer[_buffered..]);
            _buffered += take;
            data = data[take..];
            if (_buffered < StripeSize)
            {
                return;
            }
            ConsumeStripe(ref _acc1, ref _acc2, ref _acc3, ref _acc4, buffer);
            _buffered = 0;
        }

        if (data.Length >= StripeSize)
        {
            int consumed = ConsumeStripes(ref _acc1, ref _acc2, ref _acc3, ref _acc4, data);
            data = data[consumed..];
        }

        data.CopyTo(buffer);
        _buffered = data.Length;
    }

    /// <summary>The hash of everything appended so far; the state is unchanged.</summary>
    public readonly ulong GetCurrentHash()
    {
        ulong acc = _totalLength >= StripeSize
            ? Converge(_acc1, _acc2, _acc3, _acc4)
            : _seed + Prime5;
        acc += _totalLength;
        ReadOnlySpan<byte> remaining = ((ReadOnlySpan<byte>)_buffer)[.._buffered];
        return Finish(acc, remaining);
    }

    /// <summary>XXH64 of <paramref name="data"/> in one call.</summary>
    public static ulong Hash(ReadOnlySpan<byte> data, ulong seed = 0)
    {
        ulong acc;
        int length = data.Length;
        if (length >= StripeSize)
        {
            ulong acc1 = seed + Prime1 + Prime2;
            ulong acc2 = seed + Prime2;
            ulong acc3 = seed;
            ulong acc4 = seed - Prime1;
            int consumed = ConsumeStripes(ref acc1, ref acc2, ref acc3, ref acc4, data);
            data = data[consumed..];
            acc = Converge(acc1, acc2, acc3, acc4);
        }
        else
        {
            // Spec §"Step 1": the special case for inputs shorter than one stripe
            acc = seed + Prime5;
        }
        acc += (ulong)length;
        return Finish(acc, data);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Round(ulong acc, ulong lane)
    {
        // Spec §"Step 2. Process stripes"
        acc += lane * Prime2;
        acc = BitOperations.RotateLeft(acc, 31);
        return acc * Prime1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MergeAccumulator(ulong acc, ulong accN)
    {
        // Spec §"Step 3. Accumulator convergence"
        acc ^= Round(0, accN);
        acc *= Prime1;
        return acc + Prime4;
    }

    private static ulong Converge(ulong acc1, ulong acc2, ulong acc3, ulong acc4)
    {
        ulong acc = BitOperations.RotateLeft(acc1, 1) + BitOperations.RotateLeft(acc2, 7)
            + BitOperations.RotateLeft(acc3, 12) + BitOperations.RotateLeft(acc4, 18);
        acc = MergeAccumulator(acc, acc1);
        acc = MergeAccumulator(acc, acc2);
        acc = MergeAccumulator(acc, acc3);
        return MergeAccumulator(acc, acc4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ConsumeStripe(ref ulong acc1, ref ulong acc2, ref ulong acc3, ref ulong acc4,
        ReadOnlySpan<byte> stripe)
    {
        ref byte p = ref MemoryMarshal.GetReference(stripe);
        acc1 = Round(acc1, ReadLane(ref p, 0));
        acc2 = Round(acc2, ReadLane(ref p, 8));
        acc3 = Round(acc3, ReadLane(ref p, 16));
        acc4 = Round(acc4, ReadLane(ref p, 24));
    }

    /// <summary>Consumes every whole stripe of <paramref name="data"/>; returns the bytes consumed.</summary>
    private static int ConsumeStripes(ref ulong acc1, ref ulong acc2, ref ulong acc3, ref ulong acc4,
        ReadOnlySpan<byte> data)
    {
        int stripes = data.Length / StripeSize;
        ulong a1 = acc1, a2 = acc2, a3 = acc3, a4 = acc4;
        ref byte p = ref MemoryMarshal.GetReference(data);
        for (int i = 0; i < stripes; i++)
        {
            int o = i * StripeSize;
            a1 = Round(a1, ReadLane(ref p, o));
            a2 = Round(a2, ReadLane(ref p, o + 8));
            a3 = Round(a3, ReadLane(ref p, o + 16));
            a4 = Round(a4, ReadLane(ref p, o + 24));
        }
        acc1 = a1; acc2 = a2; acc3 = a3; acc4 = a4;
        return stripes * StripeSize;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ReadLane(ref byte p, int offset)
    {
        ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, offset));
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    /// <summary>Spec §"Step 5. Consume remaining input" and §"Step 6. Final mix (avalanche)".</summary>
    private static ulong Finish(ulong acc, ReadOnlySpan<byte> remaining)
    {
        while (remaining.Length >= 8)
        {
            ulong lane = BinaryPrimitives.ReadUInt64LittleEndian(remaining);
            acc ^= Round(0, lane);
            acc = BitOperations.RotateLeft(acc, 27) * Prime1;
            acc += Prime4;
            remaining = remaining[8..];
        }
        if (remaining.Length >= 4)
        {
            ulong lane = BinaryPrimitives.ReadUInt32LittleEndian(remaining);
            acc ^= lane * Prime1;
            acc = BitOperations.RotateLeft(acc, 23) * Prime2;
            acc += Prime3;
            remaining = remaining[4..];
        }
        foreach (byte b in remaining)
        {
            acc ^= b * Prime5;
            acc = BitOperations.RotateLeft(acc, 11) * Prime1;
        }

        acc ^= acc >> 33;
        acc *= Prime2;
        acc ^= acc >> 29;
        acc *= Prime3;
        acc ^= acc >> 32;
        return acc;
    }
}

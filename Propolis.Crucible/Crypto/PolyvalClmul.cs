using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Propolis.Crucible.Crypto;

/// <summary>Eight field elements (the powers of H, or their Karatsuba half-sums).</summary>
[InlineArray(8)]
internal struct PolyvalPowers
{
    private Vector128<ulong> _element0;
}

/// <summary>
/// POLYVAL (RFC 8452 §3) with PCLMULQDQ. Field elements are 128-bit little-endian values (bit i is
/// the coefficient of x^i), so loads need no byte or bit reflection.
/// </summary>
/// <remarks>
/// <para>
/// dot(a, b) = a · b · x^-128 mod x^128 + x^127 + x^126 + x^121 + 1. Products are formed with
/// Karatsuba (three carry-less multiplies) and reduced with two Montgomery folds by the constant
/// 0xc2000000_00000000 (RFC 8452 Appendix A).
/// </para>
/// <para>
/// Eight blocks are aggregated per reduction: with P_1 = H and P_k = dot(P_(k-1), H),
/// S' = dot(S ⊕ X_1, P_8) ⊕ dot(X_2, P_7) ⊕ … ⊕ dot(X_8, P_1), and since dot is linear in its
/// unreduced product, the eight products are summed before a single reduction.
/// </para>
/// </remarks>
internal struct PolyvalClmul
{
    public static bool IsSupported => Pclmulqdq.IsSupported && Sse2.IsSupported;

    // x^127 + x^126 + x^121 in the high lane, 1 in the low lane; only the high lane is used.
    private static Vector128<ulong> Poly => Vector128.Create(1UL, 0xc200000000000000UL);

    private PolyvalPowers _powers;   // _powers[i] = P_(i+1)
    private PolyvalPowers _halfSums; // lane 0 = lo ⊕ hi of _powers[i], for Karatsuba's middle product
    private Vector128<ulong> _acc;

    public PolyvalClmul(Vector128<byte> h)
    {
        // P_(a+b) = dot(P_a, P_b), so the powers form a tree three multiplies deep rather than a
        // chain of seven; independent multiplies overlap in the pipeline.
        Vector128<ulong> p1 = h.AsUInt64();
        Vector128<ulong> p2 = Dot(p1, p1);
        Vector128<ulong> p3 = Dot(p2, p1);
        Vector128<ulong> p4 = Dot(p2, p2);
        _powers[0] = p1;
        _powers[1] = p2;
        _powers[2] = p3;
        _powers[3] = p4;
        _powers[4] = Dot(p4, p1);
        _powers[5] = Dot(p4, p2);
        _powers[6] = Dot(p4, p3);
        _powers[7] = Dot(p4, p4);
        for (int i = 0; i < 8; i++)
        {
            _halfSums[i] = HalfSum(_powers[i]);
        }

        _acc = Vector128<ulong>.Zero;
    }

    public readonly Vector128<byte> Result => _acc.AsByte();

    /// <summary>The running value S (for the fused decrypt loop in <see cref="AesNiClmul"/>).</summary>
    internal Vector128<ulong> Accumulator
    {
        readonly get => _acc;
        set => _acc = value;
    }

    /// <summary>P_1 … P_8.</summary>
    internal readonly PolyvalPowers Powers => _powers;

    /// <summary>The Karatsuba half-sums of P_1 … P_8.</summary>
    internal readonly PolyvalPowers HalfSums => _halfSums;

    /// <summary>Absorbs <paramref name="data"/> zero-padded to a multiple of 16 bytes.</summary>
    public void UpdatePadded(ReadOnlySpan<byte> data)
    {
        int whole = data.Length & ~15;
        UpdateBlocks(data[..whole]);
        if (whole != data.Length)
        {
            Span<byte> last = stackalloc byte[16];
            last.Clear();
            data[whole..].CopyTo(last);
            UpdateBlock(Vector128.Create((ReadOnlySpan<byte>)last).AsUInt64());
        }
    }

    /// <summary>Absorbs the RFC 8452 §4 length block: LE64(bit length of AAD) ‖ LE64(bit length of plaintext).</summary>
    public void UpdateLengths(int aadLength, int plaintextLength) =>
        UpdateBlock(Vector128.Create((ulong)aadLength * 8, (ulong)plaintextLength * 8));

    /// <summary>Absorbs whole blocks; <paramref name="blocks"/> length is a multiple of 16.</summary>
    public void UpdateBlocks(ReadOnlySpan<byte> blocks)
    {
        ref byte p = ref MemoryMarshal.GetReference(blocks);
        nuint length = (nuint)blocks.Length;
        nuint offset = 0;
        Vector128<ulong> acc = _acc;

        if (length >= 128)
        {
            Vector128<ulong> p1 = _powers[0], p2 = _powers[1], p3 = _powers[2], p4 = _powers[3];
            Vector128<ulong> p5 = _powers[4], p6 = _powers[5], p7 = _powers[6], p8 = _powers[7];
            Vector128<ulong> k1 = _halfSums[0], k2 = _halfSums[1], k3 = _halfSums[2], k4 = _halfSums[3];
            Vector128<ulong> k5 = _halfSums[4], k6 = _halfSums[5], k7 = _halfSums[6], k8 = _halfSums[7];
            do
            {
                Vector128<ulong> x = Vector128.LoadUnsafe(ref p, offset).AsUInt64() ^ acc;
                Vector128<ulong> lo = Pclmulqdq.CarrylessMultiply(x, p8, 0x00);
                Vector128<ulong> hi = Pclmulqdq.CarrylessMultiply(x, p8, 0x11);
                Vector128<ulong> mid = Pclmulqdq.CarrylessMultiply(HalfSum(x), k8, 0x00);
                MulAccumulate(Vector128.LoadUnsafe(ref p, offset + 16).AsUInt64(), p7, k7, ref lo, ref hi, ref mid);
                MulAccumulate(Vector128.LoadUnsafe(ref p, offset + 32).AsUInt64(), p6, k6, ref lo, ref hi, ref mid);
                MulAccumulate(Vector128.LoadUnsafe(ref p, offset + 48).AsUInt64(), p5, k5, ref lo, ref hi, ref mid);
                MulAccumulate(Vector128.LoadUnsafe(ref p, offset + 64).AsUInt64(), p4, k4, ref lo, ref hi, ref mid);
                MulAccumulate(Vector128.LoadUnsafe(ref p, offset + 80).AsUInt64(), p3, k3, ref lo, ref hi, ref mid);
                MulAccumulate(Vector128.LoadUnsafe(ref p, offset + 96).AsUInt64(), p2, k2, ref lo, ref hi, ref mid);
                MulAccumulate(Vector128.LoadUnsafe(ref p, offset + 112).AsUInt64(), p1, k1, ref lo, ref hi, ref mid);
                acc = Reduce(lo, hi, mid);
                offset += 128;
            }
            while (length - offset >= 128);
        }

        _acc = acc;
        while (length - offset >= 16)
        {
            UpdateBlock(Vector128.LoadUnsafe(ref p, offset).AsUInt64());
            offset += 16;
        }
    }

    /// <summary>S = dot(S ⊕ X, H).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void UpdateBlock(Vector128<ulong> x) => _acc = Dot(_acc ^ x, _powers[0]);

    /// <summary>Zeroes the key powers and the accumulator.</summary>
    public void Clear()
    {
        _powers = default;
        _halfSums = default;
        _acc = default;
    }

    /// <summary>dot(a, b) = a · b · x^-128 in POLYVAL's field.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<ulong> Dot(Vector128<ulong> a, Vector128<ulong> b)
    {
        Vector128<ulong> lo = Pclmulqdq.CarrylessMultiply(a, b, 0x00);
        Vector128<ulong> hi = Pclmulqdq.CarrylessMultiply(a, b, 0x11);
        Vector128<ulong> mid = Pclmulqdq.CarrylessMultiply(HalfSum(a), HalfSum(b), 0x00);
        return Reduce(lo, hi, mid);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void MulAccumulate(
        Vector128<ulong> x, Vector128<ulong> power, Vector128<ulong> halfSum,
        ref Vector128<ulong> lo, ref Vector128<ulong> hi, ref Vector128<ulong> mid)
    {
        lo ^= Pclmulqdq.CarrylessMultiply(x, power, 0x00);
        hi ^= Pclmulqdq.CarrylessMultiply(x, power, 0x11);
        mid ^= Pclmulqdq.CarrylessMultiply(HalfSum(x), halfSum, 0x00);
    }

    /// <summary>Lane 0 = lane 0 ⊕ lane 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<ulong> HalfSum(Vector128<ulong> v) => v ^ SwapHalves(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> SwapHalves(Vector128<ulong> v) => Sse2.Shuffle(v.AsUInt32(), 0x4e).AsUInt64();

    /// <summary>
    /// Completes Karatsuba (lo, hi and the half-sum product <paramref name="mid"/>) into a 256-bit
    /// product and multiplies it by x^-128 modulo the POLYVAL polynomial.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<ulong> Reduce(Vector128<ulong> lo, Vector128<ulong> hi, Vector128<ulong> mid)
    {
        mid ^= lo ^ hi;
        lo ^= Sse2.ShiftLeftLogical128BitLane(mid, 8);
        hi ^= Sse2.ShiftRightLogical128BitLane(mid, 8);

        // Montgomery fold, twice: adding L·p for the low 64 bits L of the low half clears them;
        // dividing by x^64 is the lane swap. L·(x^127 + x^126 + x^121) is one CLMUL by 0xc2….
        Vector128<ulong> poly = Poly;
        lo = SwapHalves(lo) ^ Pclmulqdq.CarrylessMultiply(lo, poly, 0x10);
        lo = SwapHalves(lo) ^ Pclmulqdq.CarrylessMultiply(lo, poly, 0x10);
        return hi ^ lo;
    }
}

using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Propolis.Crucible.Crypto;

/// <summary>
/// POLYVAL (RFC 8452 §3) without carry-less multiply instructions: the same Karatsuba product and
/// Montgomery reduction as <see cref="PolyvalClmul"/>, with a 64×64-bit carry-less multiply done
/// in software by integer multiplies of bit-masked operands, so that no table is indexed and no
/// branch depends on secret data.
/// </summary>
internal struct PolyvalPortable
{
    private ulong _hLo, _hHi;
    private ulong _accLo, _accHi;

    public PolyvalPortable(ReadOnlySpan<byte> h)
    {
        _hLo = BinaryPrimitives.ReadUInt64LittleEndian(h);
        _hHi = BinaryPrimitives.ReadUInt64LittleEndian(h[8..]);
        _accLo = 0;
        _accHi = 0;
    }

    public readonly void WriteResult(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, _accLo);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], _accHi);
    }

    /// <summary>Absorbs <paramref name="data"/> zero-padded to a multiple of 16 bytes.</summary>
    public void UpdatePadded(ReadOnlySpan<byte> data)
    {
        int offset = 0;
        for (; data.Length - offset >= 16; offset += 16)
        {
            UpdateBlock(
                BinaryPrimitives.ReadUInt64LittleEndian(data[offset..]),
                BinaryPrimitives.ReadUInt64LittleEndian(data[(offset + 8)..]));
        }

        if (offset != data.Length)
        {
            Span<byte> last = stackalloc byte[16];
            last.Clear();
            data[offset..].CopyTo(last);
            UpdateBlock(BinaryPrimitives.ReadUInt64LittleEndian(last), BinaryPrimitives.ReadUInt64LittleEndian(last[8..]));
        }
    }

    /// <summary>Absorbs the RFC 8452 §4 length block.</summary>
    public void UpdateLengths(int aadLength, int plaintextLength) =>
        UpdateBlock((ulong)aadLength * 8, (ulong)plaintextLength * 8);

    /// <summary>S = dot(S ⊕ X, H).</summary>
    public void UpdateBlock(ulong xLo, ulong xHi) =>
        Dot(_accLo ^ xLo, _accHi ^ xHi, _hLo, _hHi, out _accLo, out _accHi);

    public void Clear()
    {
        _accLo = 0;
        _accHi = 0;
        _hLo = 0;
        _hHi = 0;
    }

    /// <summary>dot(a, b) = a · b · x^-128 mod x^128 + x^127 + x^126 + x^121 + 1.</summary>
    public static void Dot(ulong aLo, ulong aHi, ulong bLo, ulong bHi, out ulong rLo, out ulong rHi)
    {
        // Karatsuba: three 64×64 products.
        ulong z0Lo = Clmul64Low(aLo, bLo), z0Hi = Clmul64High(aLo, bLo);
        ulong z2Lo = Clmul64Low(aHi, bHi), z2Hi = Clmul64High(aHi, bHi);
        ulong z1Lo = Clmul64Low(aLo ^ aHi, bLo ^ bHi) ^ z0Lo ^ z2Lo;
        ulong z1Hi = Clmul64High(aLo ^ aHi, bLo ^ bHi) ^ z0Hi ^ z2Hi;
        ulong r0 = z0Lo, r1 = z0Hi ^ z1Lo, r2 = z2Lo ^ z1Hi, r3 = z2Hi;

        // Two Montgomery folds (see PolyvalClmul.Reduce). L · 0xc2000000_00000000 as a 128-bit
        // carry-less product is L·x^63 ⊕ L·x^62 ⊕ L·x^57, i.e. shifts.
        ulong tLo = (r0 << 63) ^ (r0 << 62) ^ (r0 << 57);
        ulong tHi = (r0 >> 1) ^ (r0 >> 2) ^ (r0 >> 7);
        ulong l = r1 ^ tLo, h = r0 ^ tHi;
        tLo = (l << 63) ^ (l << 62) ^ (l << 57);
        tHi = (l >> 1) ^ (l >> 2) ^ (l >> 7);
        rLo = r2 ^ h ^ tLo;
        rHi = r3 ^ l ^ tHi;
    }

    /// <summary>Low 64 bits of the 127-bit carry-less product of x and y.</summary>
    /// <remarks>
    /// Each operand is split into four parts holding every fourth bit. An integer product of two
    /// parts puts all its partial products on one residue class of bit positions mod 4, and at most
    /// 16 of them meet at any kept position, so the carries they produce land only on positions of
    /// other classes (masked off) or beyond bit 63: the bit that stays is the XOR of the partial
    /// products.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Clmul64Low(ulong x, ulong y)
    {
        const ulong M0 = 0x1111111111111111, M1 = 0x2222222222222222, M2 = 0x4444444444444444, M3 = 0x8888888888888888;
        ulong x0 = x & M0, x1 = x & M1, x2 = x & M2, x3 = x & M3;
        ulong y0 = y & M0, y1 = y & M1, y2 = y & M2, y3 = y & M3;
        ulong z0 = (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1);
        ulong z1 = (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2);
        ulong z2 = (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3);
        ulong z3 = (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0);
        return (z0 & M0) | (z1 & M1) | (z2 & M2) | (z3 & M3);
    }

    /// <summary>
    /// High 64 bits (bits 64..126) of the carry-less product: reversing both operands reverses the
    /// product, so the low half of the reversed product, reversed again, is bits 63..126.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Clmul64High(ulong x, ulong y) => Reverse(Clmul64Low(Reverse(x), Reverse(y))) >> 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Reverse(ulong x)
    {
        x = ((x >> 1) & 0x5555555555555555) | ((x & 0x5555555555555555) << 1);
        x = ((x >> 2) & 0x3333333333333333) | ((x & 0x3333333333333333) << 2);
        x = ((x >> 4) & 0x0f0f0f0f0f0f0f0f) | ((x & 0x0f0f0f0f0f0f0f0f) << 4);
        return BinaryPrimitives.ReverseEndianness(x);
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Propolis.Crucible.Crypto;

/// <summary>An expanded AES key for the AES-NI path: up to 15 round keys (AES-256).</summary>
[InlineArray(15)]
internal struct AesNiRoundKeys
{
    private Vector128<byte> _key0;
}

/// <summary>
/// The AES forward cipher with x86 AES-NI (<c>AESENC</c>/<c>AESENCLAST</c>/<c>AESKEYGENASSIST</c>).
/// Callers check <see cref="IsSupported"/> once; nothing here has a fallback of its own.
/// </summary>
internal static class AesNi
{
    public static bool IsSupported => X86Aes.IsSupported && Sse2.IsSupported;

    /// <summary>Expands a 128-bit key (given as one vector). Returns the number of rounds (10).</summary>
    public static int ExpandKey128(Vector128<byte> key, ref AesNiRoundKeys rk)
    {
        // The KEYGENASSIST immediate must be a constant, hence the unrolled sequence.
        rk[0] = key;
        rk[1] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x01));
        rk[2] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x02));
        rk[3] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x04));
        rk[4] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x08));
        rk[5] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x10));
        rk[6] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x20));
        rk[7] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x40));
        rk[8] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x80));
        rk[9] = key = Expand128Step(key, X86Aes.KeygenAssist(key, 0x1b));
        rk[10] = Expand128Step(key, X86Aes.KeygenAssist(key, 0x36));
        return 10;
    }

    /// <summary>Expands a 256-bit key (low and high halves). Returns the number of rounds (14).</summary>
    public static int ExpandKey256(Vector128<byte> lo, Vector128<byte> hi, ref AesNiRoundKeys rk)
    {
        rk[0] = lo;
        rk[1] = hi;
        rk[2] = lo = Expand128Step(lo, X86Aes.KeygenAssist(hi, 0x01));
        rk[3] = hi = Expand256OddStep(hi, lo);
        rk[4] = lo = Expand128Step(lo, X86Aes.KeygenAssist(hi, 0x02));
        rk[5] = hi = Expand256OddStep(hi, lo);
        rk[6] = lo = Expand128Step(lo, X86Aes.KeygenAssist(hi, 0x04));
        rk[7] = hi = Expand256OddStep(hi, lo);
        rk[8] = lo = Expand128Step(lo, X86Aes.KeygenAssist(hi, 0x08));
        rk[9] = hi = Expand256OddStep(hi, lo);
        rk[10] = lo = Expand128Step(lo, X86Aes.KeygenAssist(hi, 0x10));
        rk[11] = hi = Expand256OddStep(hi, lo);
        rk[12] = lo = Expand128Step(lo, X86Aes.KeygenAssist(hi, 0x20));
        rk[13] = hi = Expand256OddStep(hi, lo);
        rk[14] = Expand128Step(lo, X86Aes.KeygenAssist(hi, 0x40));
        return 14;
    }

    /// <summary>Expands a 16- or 32-byte key. Returns the number of rounds.</summary>
    public static int ExpandKey(ReadOnlySpan<byte> key, ref AesNiRoundKeys rk) =>
        key.Length == 32
            ? ExpandKey256(Vector128.Create(key[..16]), Vector128.Create(key[16..]), ref rk)
            : ExpandKey128(Vector128.Create(key), ref rk);

    // w[i] = w[i-Nk] ^ SubWord(RotWord(w[i-1])) ^ Rcon, folded over the four words of a round key:
    // prefix-XOR of the previous round key, then the broadcast of KEYGENASSIST's dword 3.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Expand128Step(Vector128<byte> prev, Vector128<byte> assist)
    {
        assist = Sse2.Shuffle(assist.AsInt32(), 0xff).AsByte();
        return PrefixXor(prev) ^ assist;
    }

    // AES-256 odd round keys: SubWord (no RotWord, no Rcon) of the last word of the even key,
    // which is KEYGENASSIST's dword 2.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Expand256OddStep(Vector128<byte> prevOdd, Vector128<byte> even)
    {
        Vector128<byte> assist = Sse2.Shuffle(X86Aes.KeygenAssist(even, 0x00).AsInt32(), 0xaa).AsByte();
        return PrefixXor(prevOdd) ^ assist;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> PrefixXor(Vector128<byte> v)
    {
        v ^= Sse2.ShiftLeftLogical128BitLane(v, 4);
        v ^= Sse2.ShiftLeftLogical128BitLane(v, 8);
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> EncryptBlock(ref readonly AesNiRoundKeys rk, int rounds, Vector128<byte> block)
    {
        block ^= rk[0];
        for (int r = 1; r < rounds; r++)
        {
            block = X86Aes.Encrypt(block, rk[r]);
        }

        return X86Aes.EncryptLast(block, rk[rounds]);
    }

    /// <summary>
    /// RFC 8452 §4 key derivation: AES(K, LE32(i) ‖ nonce) for i = 0..5 (0..3 for AES-128), the
    /// first 8 bytes of each forming the message-authentication key (i = 0, 1) and the
    /// message-encryption key (i = 2..5). The six blocks run through the pipeline together.
    /// </summary>
    public static void DeriveKeys(
        ref readonly AesNiRoundKeys kgk, int rounds, Vector128<byte> nonceBlock,
        out Vector128<byte> authKey, out Vector128<byte> encKeyLo, out Vector128<byte> encKeyHi)
    {
        Vector128<byte> k = kgk[0];
        Vector128<byte> b0 = nonceBlock ^ k;
        Vector128<byte> b1 = (nonceBlock | Vector128.Create(1u, 0, 0, 0).AsByte()) ^ k;
        Vector128<byte> b2 = (nonceBlock | Vector128.Create(2u, 0, 0, 0).AsByte()) ^ k;
        Vector128<byte> b3 = (nonceBlock | Vector128.Create(3u, 0, 0, 0).AsByte()) ^ k;
        Vector128<byte> b4 = (nonceBlock | Vector128.Create(4u, 0, 0, 0).AsByte()) ^ k;
        Vector128<byte> b5 = (nonceBlock | Vector128.Create(5u, 0, 0, 0).AsByte()) ^ k;
        for (int r = 1; r < rounds; r++)
        {
            k = kgk[r];
            b0 = X86Aes.Encrypt(b0, k);
            b1 = X86Aes.Encrypt(b1, k);
            b2 = X86Aes.Encrypt(b2, k);
            b3 = X86Aes.Encrypt(b3, k);
            b4 = X86Aes.Encrypt(b4, k);
            b5 = X86Aes.Encrypt(b5, k);
        }

        k = kgk[rounds];
        b0 = X86Aes.EncryptLast(b0, k);
        b1 = X86Aes.EncryptLast(b1, k);
        b2 = X86Aes.EncryptLast(b2, k);
        b3 = X86Aes.EncryptLast(b3, k);
        b4 = X86Aes.EncryptLast(b4, k);
        b5 = X86Aes.EncryptLast(b5, k);
        authKey = Sse2.UnpackLow(b0.AsUInt64(), b1.AsUInt64()).AsByte();
        encKeyLo = Sse2.UnpackLow(b2.AsUInt64(), b3.AsUInt64()).AsByte();
        encKeyHi = Sse2.UnpackLow(b4.AsUInt64(), b5.AsUInt64()).AsByte();
    }

    /// <summary>
    /// RFC 8452 §4 CTR over <paramref name="data"/> in place: the first 32 bits of the counter
    /// block are a little-endian counter that wraps modulo 2^32 (a 32-bit lane add), the other 96
    /// bits stay fixed. Eight blocks are in flight at a time to hide the AESENC latency.
    /// </summary>
    public static void Ctr32(ref readonly AesNiRoundKeys rk, int rounds, Vector128<byte> initialCounter, Span<byte> data)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint length = (nuint)data.Length;
        nuint offset = 0;
        Vector128<uint> ctr = initialCounter.AsUInt32();

        while (length - offset >= 128)
        {
            Vector128<byte> k = rk[0];
            Vector128<byte> s0 = ctr.AsByte() ^ k;
            Vector128<byte> s1 = Sse2.Add(ctr, Vector128.Create(1u, 0, 0, 0)).AsByte() ^ k;
            Vector128<byte> s2 = Sse2.Add(ctr, Vector128.Create(2u, 0, 0, 0)).AsByte() ^ k;
            Vector128<byte> s3 = Sse2.Add(ctr, Vector128.Create(3u, 0, 0, 0)).AsByte() ^ k;
            Vector128<byte> s4 = Sse2.Add(ctr, Vector128.Create(4u, 0, 0, 0)).AsByte() ^ k;
            Vector128<byte> s5 = Sse2.Add(ctr, Vector128.Create(5u, 0, 0, 0)).AsByte() ^ k;
            Vector128<byte> s6 = Sse2.Add(ctr, Vector128.Create(6u, 0, 0, 0)).AsByte() ^ k;
            Vector128<byte> s7 = Sse2.Add(ctr, Vector128.Create(7u, 0, 0, 0)).AsByte() ^ k;
            ctr = Sse2.Add(ctr, Vector128.Create(8u, 0, 0, 0));
            for (int r = 1; r < rounds; r++)
            {
                k = rk[r];
                s0 = X86Aes.Encrypt(s0, k);
                s1 = X86Aes.Encrypt(s1, k);
                s2 = X86Aes.Encrypt(s2, k);
                s3 = X86Aes.Encrypt(s3, k);
                s4 = X86Aes.Encrypt(s4, k);
                s5 = X86Aes.Encrypt(s5, k);
                s6 = X86Aes.Encrypt(s6, k);
                s7 = X86Aes.Encrypt(s7, k);
            }

            k = rk[rounds];
            (X86Aes.EncryptLast(s0, k) ^ Vector128.LoadUnsafe(ref p, offset)).StoreUnsafe(ref p, offset);
            (X86Aes.EncryptLast(s1, k) ^ Vector128.LoadUnsafe(ref p, offset + 16)).StoreUnsafe(ref p, offset + 16);
            (X86Aes.EncryptLast(s2, k) ^ Vector128.LoadUnsafe(ref p, offset + 32)).StoreUnsafe(ref p, offset + 32);
            (X86Aes.EncryptLast(s3, k) ^ Vector128.LoadUnsafe(ref p, offset + 48)).StoreUnsafe(ref p, offset + 48);
            (X86Aes.EncryptLast(s4, k) ^ Vector128.LoadUnsafe(ref p, offset + 64)).StoreUnsafe(ref p, offset + 64);
            (X86Aes.EncryptLast(s5, k) ^ Vector128.LoadUnsafe(ref p, offset + 80)).StoreUnsafe(ref p, offset + 80);
            (X86Aes.EncryptLast(s6, k) ^ Vector128.LoadUnsafe(ref p, offset + 96)).StoreUnsafe(ref p, offset + 96);
            (X86Aes.EncryptLast(s7, k) ^ Vector128.LoadUnsafe(ref p, offset + 112)).StoreUnsafe(ref p, offset + 112);
            offset += 128;
        }

        while (length - offset >= 16)
        {
            Vector128<byte> ks = EncryptBlock(in rk, rounds, ctr.AsByte());
            ctr = Sse2.Add(ctr, Vector128.Create(1u, 0, 0, 0));
            (ks ^ Vector128.LoadUnsafe(ref p, offset)).StoreUnsafe(ref p, offset);
            offset += 16;
        }

        if (offset < length)
        {
            Span<byte> keystream = stackalloc byte[16];
            EncryptBlock(in rk, rounds, ctr.AsByte()).CopyTo(keystream);
            Span<byte> tail = data[(int)offset..];
            for (int i = 0; i < tail.Length; i++)
            {
                tail[i] ^= keystream[i];
            }

            keystream.Clear();
        }
    }
}

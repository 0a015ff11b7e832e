using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Propolis.Crucible.Crypto;

/// <summary>
/// Decryption with CTR and POLYVAL in one pass. AES-GCM-SIV decrypts before it authenticates
/// (RFC 8452 §5: the tag is the initial counter, the POLYVAL input is the plaintext), so while the
/// AES units produce the keystream for one 128-byte batch, the carry-less multiplier can hash the
/// plaintext of the batch before it. Encryption cannot be fused this way: its counter is the tag,
/// which needs POLYVAL over all of the plaintext first.
/// </summary>
internal static class AesNiClmul
{
    /// <summary>
    /// Decrypts <paramref name="data"/> in place with the RFC 8452 §4 CTR from
    /// <paramref name="counter"/>, absorbing the resulting plaintext (zero-padded) into
    /// <paramref name="polyval"/>. Equivalent to <see cref="AesNi.Ctr32"/> followed by
    /// <see cref="PolyvalClmul.UpdatePadded"/>.
    /// </summary>
    public static void DecryptAndHash(
        ref readonly AesNiRoundKeys rk, int rounds, Vector128<byte> counter, Span<byte> data, ref PolyvalClmul polyval)
    {
        int batches = data.Length / 128;
        if (batches < 2)
        {
            AesNi.Ctr32(in rk, rounds, counter, data);
            polyval.UpdatePadded(data);
            return;
        }

        ref byte p = ref MemoryMarshal.GetReference(data);
        Vector128<uint> ctr = counter.AsUInt32();

        // Batch 0: keystream only; there is no plaintext to hash yet.
        AesNi.Ctr32(in rk, rounds, ctr.AsByte(), data[..128]);
        ctr = Sse2.Add(ctr, Vector128.Create(8u, 0, 0, 0));

        PolyvalPowers powers = polyval.Powers;
        PolyvalPowers halfSums = polyval.HalfSums;
        Vector128<ulong> acc = polyval.Accumulator;
        nuint end = (nuint)batches * 128;
        for (nuint offset = 128; offset < end; offset += 128)
        {
            nuint prev = offset - 128;
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

            // Rounds 1..8 each carry one block of the previous batch through POLYVAL
            // (block i times P_(8-i)); both AES-128 (9 middle rounds) and AES-256 (13) have room.
            Vector128<ulong> x = Vector128.LoadUnsafe(ref p, prev).AsUInt64() ^ acc;
            Vector128<ulong> lo = Pclmulqdq.CarrylessMultiply(x, powers[7], 0x00);
            Vector128<ulong> hi = Pclmulqdq.CarrylessMultiply(x, powers[7], 0x11);
            Vector128<ulong> mid = Pclmulqdq.CarrylessMultiply(PolyvalClmul.HalfSum(x), halfSums[7], 0x00);
            Round(ref s0, ref s1, ref s2, ref s3, ref s4, ref s5, ref s6, ref s7, rk[1]);
            for (int i = 1; i < 8; i++)
            {
                PolyvalClmul.MulAccumulate(
                    Vector128.LoadUnsafe(ref p, prev + (nuint)(16 * i)).AsUInt64(), powers[7 - i], halfSums[7 - i],
                    ref lo, ref hi, ref mid);
                Round(ref s0, ref s1, ref s2, ref s3, ref s4, ref s5, ref s6, ref s7, rk[i + 1]);
            }

            for (int r = 9; r < rounds; r++)
            {
                Round(ref s0, ref s1, ref s2, ref s3, ref s4, ref s5, ref s6, ref s7, rk[r]);
            }

            acc = PolyvalClmul.Reduce(lo, hi, mid);

            k = rk[rounds];
            (X86Aes.EncryptLast(s0, k) ^ Vector128.LoadUnsafe(ref p, offset)).StoreUnsafe(ref p, offset);
            (X86Aes.EncryptLast(s1, k) ^ Vector128.LoadUnsafe(ref p, offset + 16)).StoreUnsafe(ref p, offset + 16);
            (X86Aes.EncryptLast(s2, k) ^ Vector128.LoadUnsafe(ref p, offset + 32)).StoreUnsafe(ref p, offset + 32);
            (X86Aes.EncryptLast(s3, k) ^ Vector128.LoadUnsafe(ref p, offset + 48)).StoreUnsafe(ref p, offset + 48);
            (X86Aes.EncryptLast(s4, k) ^ Vector128.LoadUnsafe(ref p, offset + 64)).StoreUnsafe(ref p, offset + 64);
            (X86Aes.EncryptLast(s5, k) ^ Vector128.LoadUnsafe(ref p, offset + 80)).StoreUnsafe(ref p, offset + 80);
            (X86Aes.EncryptLast(s6, k) ^ Vector128.LoadUnsafe(ref p, offset + 96)).StoreUnsafe(ref p, offset + 96);
            (X86Aes.EncryptLast(s7, k) ^ Vector128.LoadUnsafe(ref p, offset + 112)).StoreUnsafe(ref p, offset + 112);
        }

        // The last whole batch's plaintext, then whatever is left over.
        polyval.Accumulator = acc;
        int done = batches * 128;
        polyval.UpdateBlocks(data.Slice(done - 128, 128));
        Span<byte> rest = data[done..];
        AesNi.Ctr32(in rk, rounds, ctr.AsByte(), rest);
        polyval.UpdatePadded(rest);
        powers = default;
        halfSums = default;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Round(
        ref Vector128<byte> s0, ref Vector128<byte> s1, ref Vector128<byte> s2, ref Vector128<byte> s3,
        ref Vector128<byte> s4, ref Vector128<byte> s5, ref Vector128<byte> s6, ref Vector128<byte> s7, Vector128<byte> k)
    {
        s0 = X86Aes.Encrypt(s0, k);
        s1 = X86Aes.Encrypt(s1, k);
        s2 = X86Aes.Encrypt(s2, k);
        s3 = X86Aes.Encrypt(s3, k);
        s4 = X86Aes.Encrypt(s4, k);
        s5 = X86Aes.Encrypt(s5, k);
        s6 = X86Aes.Encrypt(s6, k);
        s7 = X86Aes.Encrypt(s7, k);
    }
}

using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Propolis.Crucible.Crypto;

/// <summary>
/// The AES forward cipher (FIPS-197) in portable C#, used when the CPU has no AES instructions.
/// AES-GCM-SIV only ever runs AES forwards (key derivation, tag, CTR), so there is no inverse
/// cipher here.
/// </summary>
/// <remarks>
/// The state is four little-endian 32-bit columns (row r of a column in bits 8r..8r+7). Rounds use
/// one 1 KiB "T-table" (SubBytes and MixColumns of one byte) rotated for the other three rows, and
/// the last round uses the 256-byte S-box. Table lookups indexed by secret bytes are not
/// constant-time with respect to the data cache; this path exists for CPUs without AES-NI and is
/// never chosen when the hardware path is available (see <see cref="AesGcmSiv"/>).
/// </remarks>
internal static class AesPortable
{
    /// <summary>Round-key words for AES-256: 4 × (14 + 1).</summary>
    public const int MaxRoundKeyWords = 60;

    private static readonly byte[] SBox = BuildSBox();
    private static readonly uint[] Te0 = BuildTe0(SBox);

    /// <summary>FIPS-197 §5.2 KeyExpansion for a 16- or 32-byte key. Returns the number of rounds.</summary>
    public static int ExpandKey(ReadOnlySpan<byte> key, Span<uint> w)
    {
        int nk = key.Length / 4;
        int rounds = nk + 6;
        int total = 4 * (rounds + 1);
        for (int i = 0; i < nk; i++)
        {
            w[i] = BinaryPrimitives.ReadUInt32LittleEndian(key.Slice(4 * i, 4));
        }

        uint rcon = 1;
        for (int i = nk; i < total; i++)
        {
            uint t = w[i - 1];
            if (i % nk == 0)
            {
                // RotWord moves byte 1 to byte 0: a right rotation of the little-endian word.
                t = SubWord(BitOperations.RotateRight(t, 8)) ^ rcon;
                rcon = (rcon << 1) ^ ((rcon >> 7) * 0x11b);
            }
            else if (nk > 6 && i % nk == 4)
            {
                t = SubWord(t);
            }

            w[i] = w[i - nk] ^ t;
        }

        return rounds;
    }

    /// <summary>Encrypts one block given as four little-endian columns, in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void EncryptBlock(ReadOnlySpan<uint> rk, int rounds, ref uint c0, ref uint c1, ref uint c2, ref uint c3)
    {
        uint[] te = Te0;
        uint s0 = c0 ^ rk[0], s1 = c1 ^ rk[1], s2 = c2 ^ rk[2], s3 = c3 ^ rk[3];
        int k = 4;
        for (int r = 1; r < rounds; r++, k += 4)
        {
            // SubBytes + ShiftRows (row r comes from column c + r) + MixColumns + AddRoundKey.
            uint t0 = te[(byte)s0] ^ BitOperations.RotateLeft(te[(byte)(s1 >> 8)], 8)
                ^ BitOperations.RotateLeft(te[(byte)(s2 >> 16)], 16) ^ BitOperations.RotateLeft(te[s3 >> 24], 24) ^ rk[k];
            uint t1 = te[(byte)s1] ^ BitOperations.RotateLeft(te[(byte)(s2 >> 8)], 8)
                ^ BitOperations.RotateLeft(te[(byte)(s3 >> 16)], 16) ^ BitOperations.RotateLeft(te[s0 >> 24], 24) ^ rk[k + 1];
            uint t2 = te[(byte)s2] ^ BitOperations.RotateLeft(te[(byte)(s3 >> 8)], 8)
                ^ BitOperations.RotateLeft(te[(byte)(s0 >> 16)], 16) ^ BitOperations.RotateLeft(te[s1 >> 24], 24) ^ rk[k + 2];
            uint t3 = te[(byte)s3] ^ BitOperations.RotateLeft(te[(byte)(s0 >> 8)], 8)
                ^ BitOperations.RotateLeft(te[(byte)(s1 >> 16)], 16) ^ BitOperations.RotateLeft(te[s2 >> 24], 24) ^ rk[k + 3];
            s0 = t0; s1 = t1; s2 = t2; s3 = t3;
        }

        // Final round: no MixColumns.
        byte[] sb = SBox;
        c0 = ((uint)sb[(byte)s0] | (uint)sb[(byte)(s1 >> 8)] << 8 | (uint)sb[(byte)(s2 >> 16)] << 16 | (uint)sb[s3 >> 24] << 24) ^ rk[k];
        c1 = ((uint)sb[(byte)s1] | (uint)sb[(byte)(s2 >> 8)] << 8 | (uint)sb[(byte)(s3 >> 16)] << 16 | (uint)sb[s0 >> 24] << 24) ^ rk[k + 1];
        c2 = ((uint)sb[(byte)s2] | (uint)sb[(byte)(s3 >> 8)] << 8 | (uint)sb[(byte)(s0 >> 16)] << 16 | (uint)sb[s1 >> 24] << 24) ^ rk[k + 2];
        c3 = ((uint)sb[(byte)s3] | (uint)sb[(byte)(s0 >> 8)] << 8 | (uint)sb[(byte)(s1 >> 16)] << 16 | (uint)sb[s2 >> 24] << 24) ^ rk[k + 3];
    }

    /// <summary>Encrypts one 16-byte block (input and output may be the same span).</summary>
    public static void EncryptBlock(ReadOnlySpan<uint> rk, int rounds, ReadOnlySpan<byte> input, Span<byte> output)
    {
        uint c0 = BinaryPrimitives.ReadUInt32LittleEndian(input);
        uint c1 = BinaryPrimitives.ReadUInt32LittleEndian(input[4..]);
        uint c2 = BinaryPrimitives.ReadUInt32LittleEndian(input[8..]);
        uint c3 = BinaryPrimitives.ReadUInt32LittleEndian(input[12..]);
        EncryptBlock(rk, rounds, ref c0, ref c1, ref c2, ref c3);
        BinaryPrimitives.WriteUInt32LittleEndian(output, c0);
        BinaryPrimitives.WriteUInt32LittleEndian(output[4..], c1);
        BinaryPrimitives.WriteUInt32LittleEndian(output[8..], c2);
        BinaryPrimitives.WriteUInt32LittleEndian(output[12..], c3);
    }

    /// <summary>
    /// RFC 8452 §4 CTR: XORs <paramref name="data"/> with AES(counter_i), where the first 32 bits of
    /// the counter block are a little-endian counter that wraps modulo 2^32 and the other 96 bits
    /// stay fixed.
    /// </summary>
    public static void Ctr32(ReadOnlySpan<uint> rk, int rounds, ReadOnlySpan<byte> initialCounter, Span<byte> data)
    {
        uint ctr = BinaryPrimitives.ReadUInt32LittleEndian(initialCounter);
        uint n1 = BinaryPrimitives.ReadUInt32LittleEndian(initialCounter[4..]);
        uint n2 = BinaryPrimitives.ReadUInt32LittleEndian(initialCounter[8..]);
        uint n3 = BinaryPrimitives.ReadUInt32LittleEndian(initialCounter[12..]);
        int offset = 0;
        while (data.Length - offset >= 16)
        {
            uint k0 = ctr, k1 = n1, k2 = n2, k3 = n3;
            EncryptBlock(rk, rounds, ref k0, ref k1, ref k2, ref k3);
            Span<byte> block = data.Slice(offset, 16);
            Xor32(block, k0);
            Xor32(block[4..], k1);
            Xor32(block[8..], k2);
            Xor32(block[12..], k3);
            ctr = unchecked(ctr + 1);
            offset += 16;
        }

        if (offset < data.Length)
        {
            Span<byte> keystream = stackalloc byte[16];
            uint k0 = ctr, k1 = n1, k2 = n2, k3 = n3;
            EncryptBlock(rk, rounds, ref k0, ref k1, ref k2, ref k3);
            BinaryPrimitives.WriteUInt32LittleEndian(keystream, k0);
            BinaryPrimitives.WriteUInt32LittleEndian(keystream[4..], k1);
            BinaryPrimitives.WriteUInt32LittleEndian(keystream[8..], k2);
            BinaryPrimitives.WriteUInt32LittleEndian(keystream[12..], k3);
            Span<byte> tail = data[offset..];
            for (int i = 0; i < tail.Length; i++)
            {
                tail[i] ^= keystream[i];
            }

            keystream.Clear();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Xor32(Span<byte> dst, uint k) =>
        BinaryPrimitives.WriteUInt32LittleEndian(dst, BinaryPrimitives.ReadUInt32LittleEndian(dst) ^ k);

    private static uint SubWord(uint w)
    {
        byte[] sb = SBox;
        return sb[(byte)w] | (uint)sb[(byte)(w >> 8)] << 8 | (uint)sb[(byte)(w >> 16)] << 16 | (uint)sb[w >> 24] << 24;
    }

    /// <summary>FIPS-197 §5.1.1: multiplicative inverse in GF(2^8) followed by the affine transform.</summary>
    private static byte[] BuildSBox()
    {
        var sbox = new byte[256];
        for (int x = 0; x < 256; x++)
        {
            // x^254 = x^-1 in GF(2^8) (and 0 maps to 0).
            byte inv = 1, b = (byte)x;
            for (int e = 254; e != 0; e >>= 1)
            {
                if ((e & 1) != 0)
                {
                    inv = GfMul(inv, b);
                }

                b = GfMul(b, b);
            }

            if (x == 0)
            {
                inv = 0;
            }

            int s = inv ^ Rotl8(inv, 1) ^ Rotl8(inv, 2) ^ Rotl8(inv, 3) ^ Rotl8(inv, 4) ^ 0x63;
            sbox[x] = (byte)s;
        }

        return sbox;
    }

    private static uint[] BuildTe0(byte[] sbox)
    {
        var te = new uint[256];
        for (int x = 0; x < 256; x++)
        {
            uint s = sbox[x];
            uint s2 = GfMul((byte)s, 2);
            uint s3 = s2 ^ s;
            // MixColumns column (2s, s, s, 3s) for the byte in row 0.
            te[x] = s2 | s << 8 | s << 16 | s3 << 24;
        }

        return te;
    }

    private static int Rotl8(int v, int n) => ((v << n) | (v >> (8 - n))) & 0xff;

    private static byte GfMul(byte a, byte b)
    {
        int r = 0, x = a;
        for (int y = b; y != 0; y >>= 1)
        {
            if ((y & 1) != 0)
            {
                r ^= x;
            }

            x = (x << 1) ^ ((x >> 7) * 0x11b);
        }

        return (byte)r;
    }
}

using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using Propolis.Crucible.Crypto;
using static Propolis.Crucible.Tests.Crypto.CryptoTestData;

namespace Propolis.Crucible.Tests.Crypto;

/// <summary>Both AES implementations against FIPS-197 and against the platform's AES.</summary>
public class AesBlockTests
{
    public static TheoryData<bool> Backends() => new(HardwareChoices());

    private static byte[] EncryptBlock(bool hardware, byte[] key, byte[] block)
    {
        byte[] output = new byte[16];
        if (hardware)
        {
            AesNiRoundKeys rk = default;
            int rounds = AesNi.ExpandKey(key, ref rk);
            AesNi.EncryptBlock(in rk, rounds, Vector128.Create(block)).CopyTo(output);
        }
        else
        {
            uint[] rk = new uint[AesPortable.MaxRoundKeyWords];
            int rounds = AesPortable.ExpandKey(key, rk);
            AesPortable.EncryptBlock(rk, rounds, block, output);
        }

        return output;
    }

    private static void Ctr32(bool hardware, byte[] key, byte[] counter, byte[] data)
    {
        if (hardware)
        {
            AesNiRoundKeys rk = default;
            int rounds = AesNi.ExpandKey(key, ref rk);
            AesNi.Ctr32(in rk, rounds, Vector128.Create(counter), data);
        }
        else
        {
            uint[] rk = new uint[AesPortable.MaxRoundKeyWords];
            int rounds = AesPortable.ExpandKey(key, rk);
            AesPortable.Ctr32(rk, rounds, counter, data);
        }
    }

    private static byte[] PlatformEcb(byte[] key, byte[] data)
    {
        using var aes = System.Security.Cryptography.Aes.Create();
        aes.Key = key;
        return aes.EncryptEcb(data, PaddingMode.None);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Fips197_appendix_C1_AES128(bool hardware)
    {
        byte[] ct = EncryptBlock(hardware, Hex("000102030405060708090a0b0c0d0e0f"), Hex("00112233445566778899aabbccddeeff"));
        Assert.Equal("69c4e0d86a7b0430d8cdb78070b4c55a", Hex(ct));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Fips197_appendix_C3_AES256(bool hardware)
    {
        byte[] ct = EncryptBlock(
            hardware,
            Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
            Hex("00112233445566778899aabbccddeeff"));
        Assert.Equal("8ea2b7ca516745bfeafc49904b496089", Hex(ct));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Random_blocks_match_the_platform_AES(bool hardware)
    {
        var rng = new Random(197);
        foreach (int keySize in new[] { 16, 32 })
        {
            for (int i = 0; i < 200; i++)
            {
                byte[] key = new byte[keySize];
                byte[] block = new byte[16];
                rng.NextBytes(key);
                rng.NextBytes(block);
                Assert.Equal(Hex(PlatformEcb(key, block)), Hex(EncryptBlock(hardware, key, block)));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Ctr32_wraps_the_low_32_bits_only_and_matches_explicit_counter_blocks(bool hardware)
    {
        var rng = new Random(32);
        byte[] key = new byte[32];
        rng.NextBytes(key);

        // Start the counter 0..9 short of 2^32 so that the wrap falls on every lane of the first
        // 8-block batch, on the second batch and on the single-block loop. 20 whole blocks and
        // 5 bytes: two 8-block batches, four single blocks and a partial tail.
        const int length = 20 * 16 + 5;
        for (uint shortOfWrap = 0; shortOfWrap < 10; shortOfWrap++)
        {
            byte[] counter = new byte[16];
            rng.NextBytes(counter);
            uint start = uint.MaxValue - shortOfWrap;
            BinaryPrimitives.WriteUInt32LittleEndian(counter, start);

            byte[] counterBlocks = new byte[21 * 16];
            for (int i = 0; i < 21; i++)
            {
                counter.CopyTo(counterBlocks, 16 * i);
                BinaryPrimitives.WriteUInt32LittleEndian(counterBlocks.AsSpan(16 * i), unchecked(start + (uint)i));
            }

            byte[] keystream = PlatformEcb(key, counterBlocks);
            byte[] data = new byte[length];
            rng.NextBytes(data);
            byte[] expected = data.Select((b, i) => (byte)(b ^ keystream[i])).ToArray();

            Ctr32(hardware, key, counter, data);

            Assert.Equal(Hex(expected), Hex(data));
        }
    }
}

using System.Security.Cryptography;
using Propolis.Crucible.Crypto;
using static Propolis.Crucible.Tests.Crypto.CryptoTestData;

namespace Propolis.Crucible.Tests.Crypto;

/// <summary>Behaviour Crucible relies on: block round trips, rejection of any change, no allocation.</summary>
public class AesGcmSivTests
{
    public static TheoryData<bool> Backends() => new(HardwareChoices());

    public static TheoryData<bool, int> BackendsAndBlockSizes()
    {
        var data = new TheoryData<bool, int>();
        foreach (bool hardware in HardwareChoices())
        {
            data.Add(hardware, 512);
            data.Add(hardware, 4096);
        }

        return data;
    }

    private static byte[] RandomBytes(Random rng, int length)
    {
        byte[] b = new byte[length];
        rng.NextBytes(b);
        return b;
    }

    [Theory]
    [MemberData(nameof(BackendsAndBlockSizes))]
    public void Random_disk_blocks_round_trip_the_way_the_upstairs_uses_them(bool hardware, int blockSize)
    {
        var rng = new Random(blockSize);
        using AesGcmSiv aead = Create(RandomBytes(rng, 32), hardware);
        for (int i = 0; i < 50; i++)
        {
            byte[] plaintext = RandomBytes(rng, blockSize);
            byte[] buffer = (byte[])plaintext.Clone();
            byte[] nonce = RandomNumberGenerator.GetBytes(AesGcmSiv.NonceSize);
            byte[] tag = new byte[AesGcmSiv.TagSize];

            aead.Encrypt(nonce, buffer, tag, ReadOnlySpan<byte>.Empty);
            Assert.NotEqual(plaintext, buffer);
            Assert.True(aead.TryDecrypt(nonce, buffer, tag, ReadOnlySpan<byte>.Empty));
            Assert.Equal(plaintext, buffer);
        }
    }

    [Fact]
    public void Hardware_and_portable_backends_produce_identical_output()
    {
        if (!AesNi.IsSupported || !PolyvalClmul.IsSupported)
        {
            return; // only one backend on this CPU; the RFC vectors cover it
        }

        var rng = new Random(4);
        foreach (int keySize in new[] { 16, 32 })
        {
            byte[] key = RandomBytes(rng, keySize);
            using var hw = new AesGcmSiv(key, AesGcmSivBackend.Hardware);
            using var sw = new AesGcmSiv(key, AesGcmSivBackend.Portable);
            foreach (int length in Enumerable.Range(0, 300).Concat(new[] { 512, 1000, 4096, 4097, 8192 }))
            {
                byte[] nonce = RandomBytes(rng, 12);
                byte[] aad = RandomBytes(rng, rng.Next(0, 70));
                byte[] a = RandomBytes(rng, length);
                byte[] b = (byte[])a.Clone();
                byte[] tagA = new byte[16], tagB = new byte[16];

                hw.Encrypt(nonce, a, tagA, aad);
                sw.Encrypt(nonce, b, tagB, aad);

                Assert.Equal(Hex(b), Hex(a));
                Assert.Equal(Hex(tagB), Hex(tagA));
                Assert.True(sw.TryDecrypt(nonce, a, tagA, aad));
                Assert.True(hw.TryDecrypt(nonce, b, tagB, aad));
                Assert.Equal(Hex(a), Hex(b));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Any_flipped_bit_is_rejected_and_the_ciphertext_is_left_in_place(bool hardware)
    {
        var rng = new Random(1);
        using AesGcmSiv aead = Create(RandomBytes(rng, 32), hardware);
        byte[] nonce = RandomBytes(rng, 12);
        byte[] aad = RandomBytes(rng, 20);
        byte[] ciphertext = RandomBytes(rng, 4096);
        byte[] tag = new byte[16];
        aead.Encrypt(nonce, ciphertext, tag, aad);

        void AssertRejected(byte[] n, byte[] c, byte[] t, byte[] a)
        {
            byte[] buffer = (byte[])c.Clone();
            Assert.False(aead.TryDecrypt(n, buffer, t, a));
            Assert.Equal(c, buffer); // no plaintext, not even of the tampered ciphertext
        }

        foreach (int bit in new[] { 0, 7, 8 * 100 + 3, 8 * 4095 + 7, rng.Next(8 * 4096) })
        {
            byte[] c = (byte[])ciphertext.Clone();
            c[bit / 8] ^= (byte)(1 << (bit % 8));
            AssertRejected(nonce, c, tag, aad);
        }

        for (int bit = 0; bit < 128; bit++)
        {
            byte[] t = (byte[])tag.Clone();
            t[bit / 8] ^= (byte)(1 << (bit % 8));
            AssertRejected(nonce, ciphertext, t, aad);
        }

        for (int bit = 0; bit < 96; bit++)
        {
            byte[] n = (byte[])nonce.Clone();
            n[bit / 8] ^= (byte)(1 << (bit % 8));
            AssertRejected(n, ciphertext, tag, aad);
        }

        byte[] changedAad = (byte[])aad.Clone();
        changedAad[5] ^= 0x10;
        AssertRejected(nonce, ciphertext, tag, changedAad);
        AssertRejected(nonce, ciphertext, tag, aad[..^1]);
        AssertRejected(nonce, ciphertext[..^1], tag, aad);

        // A different key is a different cipher.
        using AesGcmSiv other = Create(RandomBytes(rng, 32), hardware);
        byte[] copy = (byte[])ciphertext.Clone();
        Assert.False(other.TryDecrypt(nonce, copy, tag, aad));
        Assert.Equal(ciphertext, copy);

        // And the untouched message still opens.
        byte[] intact = (byte[])ciphertext.Clone();
        Assert.True(aead.TryDecrypt(nonce, intact, tag, aad));
    }

    [Theory]
    [MemberData(nameof(BackendsAndBlockSizes))]
    public void Encrypt_and_decrypt_allocate_nothing(bool hardware, int blockSize)
    {
        using AesGcmSiv aead = Create(RandomNumberGenerator.GetBytes(32), hardware);
        byte[] nonce = RandomNumberGenerator.GetBytes(12);
        byte[] buffer = RandomNumberGenerator.GetBytes(blockSize);
        byte[] tag = new byte[16];
        byte[] badTag = new byte[16];

        // Warm up (JIT, static tables), then measure.
        aead.Encrypt(nonce, buffer, tag, default);
        aead.TryDecrypt(nonce, buffer, tag, default);
        aead.TryDecrypt(nonce, buffer, badTag, default);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            aead.Encrypt(nonce, buffer, tag, default);
            Assert.True(aead.TryDecrypt(nonce, buffer, tag, default));
            Assert.False(aead.TryDecrypt(nonce, buffer, badTag, default));
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Wrong_sizes_are_refused_with_what_was_expected(bool hardware)
    {
        var e = Assert.Throws<ArgumentException>(() => Create(new byte[24], hardware));
        Assert.Contains("24 bytes", e.Message);

        using AesGcmSiv aead = Create(new byte[32], hardware);
        byte[] data = new byte[16];
        e = Assert.Throws<ArgumentException>(() => aead.Encrypt(new byte[11], data, new byte[16], default));
        Assert.Contains("nonce is 12 bytes", e.Message);
        e = Assert.Throws<ArgumentException>(() => aead.Encrypt(new byte[12], data, new byte[15], default));
        Assert.Contains("tag is 16 bytes", e.Message);
        e = Assert.Throws<ArgumentException>(() => aead.TryDecrypt(new byte[13], data, new byte[16], default));
        Assert.Contains("nonce", e.Message);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void A_disposed_instance_refuses_work(bool hardware)
    {
        AesGcmSiv aead = Create(new byte[32], hardware);
        aead.Dispose();
        Assert.Throws<ObjectDisposedException>(() => aead.Encrypt(new byte[12], new byte[16], new byte[16], default));
    }

    [Fact]
    public void The_default_backend_is_hardware_exactly_when_the_CPU_has_AES_NI_and_PCLMULQDQ()
    {
        using var aead = new AesGcmSiv(new byte[32]);
        Assert.Equal(AesNi.IsSupported && PolyvalClmul.IsSupported, aead.IsHardwareAccelerated);
        Assert.Equal(32, aead.KeySize);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void One_instance_serves_many_threads(bool hardware)
    {
        using AesGcmSiv aead = Create(RandomNumberGenerator.GetBytes(32), hardware);
        Parallel.For(0, 64, i =>
        {
            var rng = new Random(i);
            byte[] plaintext = RandomBytes(rng, 4096);
            byte[] buffer = (byte[])plaintext.Clone();
            byte[] nonce = RandomBytes(rng, 12);
            byte[] tag = new byte[16];
            aead.Encrypt(nonce, buffer, tag, default);
            Assert.True(aead.TryDecrypt(nonce, buffer, tag, default));
            Assert.Equal(plaintext, buffer);
        });
    }
}

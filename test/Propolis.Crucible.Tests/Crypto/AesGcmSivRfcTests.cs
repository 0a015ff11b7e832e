using System.Runtime.Intrinsics;
using Propolis.Crucible.Crypto;
using static Propolis.Crucible.Tests.Crypto.CryptoTestData;

namespace Propolis.Crucible.Tests.Crypto;

/// <summary>RFC 8452 Appendix C, every vector, on every backend this CPU runs.</summary>
public class AesGcmSivRfcTests
{
    public static TheoryData<string, bool> Cases()
    {
        var data = new TheoryData<string, bool>();
        foreach (Rfc8452Vector v in Rfc8452Vectors.All)
        {
            foreach (bool hardware in HardwareChoices())
            {
                data.Add(v.Name, hardware);
            }
        }

        return data;
    }

    [Fact]
    public void The_vector_tables_hold_every_appendix_C_example()
    {
        Assert.Equal(24, Rfc8452Vectors.Aes128.Length);
        Assert.Equal(24, Rfc8452Vectors.Aes256.Length);
        Assert.Equal(2, Rfc8452Vectors.CounterWrap.Length);
        foreach (Rfc8452Vector v in Rfc8452Vectors.All)
        {
            // The RFC prints the result as ciphertext ‖ tag; check the transcription agrees.
            Assert.Equal(Hex(v.Plaintext).Length + 16, Hex(v.Result).Length);
            Assert.EndsWith(v.Tag, v.Result, StringComparison.Ordinal);
            Assert.Equal(Hex(v.Key).Length, Hex(v.EncKey).Length);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encrypt_produces_the_RFC_ciphertext_and_tag(string name, bool hardware)
    {
        Rfc8452Vector v = Rfc8452Vectors.ByName(name);
        using AesGcmSiv aead = Create(Hex(v.Key), hardware);
        byte[] buffer = Hex(v.Plaintext);
        byte[] tag = new byte[16];

        aead.Encrypt(Hex(v.Nonce), buffer, tag, Hex(v.Aad));

        Assert.Equal(v.Result, Hex(buffer) + Hex(tag));
        Assert.Equal(v.Tag, Hex(tag));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TryDecrypt_recovers_the_RFC_plaintext(string name, bool hardware)
    {
        Rfc8452Vector v = Rfc8452Vectors.ByName(name);
        using AesGcmSiv aead = Create(Hex(v.Key), hardware);
        byte[] result = Hex(v.Result);
        byte[] buffer = result[..^16];
        byte[] tag = result[^16..];

        Assert.True(aead.TryDecrypt(Hex(v.Nonce), buffer, tag, Hex(v.Aad)));
        Assert.Equal(v.Plaintext, Hex(buffer));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Derived_keys_match_the_RFC_record_keys(string name, bool hardware)
    {
        Rfc8452Vector v = Rfc8452Vectors.ByName(name);
        using AesGcmSiv aead = Create(Hex(v.Key), hardware);
        byte[] authKey = new byte[16];
        byte[] encKey = new byte[aead.KeySize];

        aead.DeriveKeys(Hex(v.Nonce), authKey, encKey);

        Assert.Equal(v.AuthKey, Hex(authKey));
        Assert.Equal(v.EncKey, Hex(encKey));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Polyval_of_the_padded_input_matches_the_RFC_result(string name, bool hardware)
    {
        Rfc8452Vector v = Rfc8452Vectors.ByName(name);
        byte[] authKey = Hex(v.AuthKey);
        byte[] aad = Hex(v.Aad);
        byte[] plaintext = Hex(v.Plaintext);
        byte[] result = new byte[16];

        if (hardware)
        {
            var polyval = new PolyvalClmul(Vector128.Create(authKey));
            polyval.UpdatePadded(aad);
            polyval.UpdatePadded(plaintext);
            polyval.UpdateLengths(aad.Length, plaintext.Length);
            polyval.Result.CopyTo(result);
        }
        else
        {
            var polyval = new PolyvalPortable(authKey);
            polyval.UpdatePadded(aad);
            polyval.UpdatePadded(plaintext);
            polyval.UpdateLengths(aad.Length, plaintext.Length);
            polyval.WriteResult(result);
        }

        Assert.Equal(v.PolyvalResult, Hex(result));
    }
}

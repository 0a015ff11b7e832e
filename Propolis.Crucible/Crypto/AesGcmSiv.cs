using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Propolis.Crucible.Crypto;

/// <summary>Which implementation of AES and POLYVAL an <see cref="AesGcmSiv"/> instance runs.</summary>
internal enum AesGcmSivBackend
{
    /// <summary>Table-based AES and software carry-less multiply; runs anywhere.</summary>
    Portable,

    /// <summary>x86 AES-NI and PCLMULQDQ.</summary>
    Hardware,
}

/// <summary>
/// AEAD_AES_256_GCM_SIV (and AEAD_AES_128_GCM_SIV) from RFC 8452, as Crucible's upstairs uses it
/// to encrypt each disk block: a 12-byte nonce, a detached 16-byte tag and in-place encryption
/// (Rust's <c>aes_gcm_siv::Aes256GcmSiv::encrypt_in_place_detached</c> with empty associated data).
/// </summary>
/// <remarks>
/// <para>
/// One instance holds the expanded key-generating key and may be used from any number of threads
/// at once: every call derives its per-nonce keys on the stack and allocates nothing.
/// </para>
/// <para>
/// The implementation is chosen once per process: AES-NI with PCLMULQDQ when the CPU has both,
/// otherwise a portable one. The portable AES uses lookup tables and is not constant-time with
/// respect to the data cache; <see cref="IsHardwareAccelerated"/> reports which one is in use.
/// </para>
/// <para>
/// RFC 8452 §6 limits plaintext and associated data to 2^36 bytes; a span holds at most
/// 2^31 − 1, so no length needs refusing. The 32-bit block counter therefore never repeats within
/// a message (§4 lets it wrap from 2^32 − 1 to 0; the Appendix C.3 vectors test that).
/// </para>
/// </remarks>
public sealed class AesGcmSiv : IDisposable
{
    /// <summary>Bytes in a nonce (RFC 8452 §4: N_MIN = N_MAX = 12).</summary>
    public const int NonceSize = 12;

    /// <summary>Bytes in a tag.</summary>
    public const int TagSize = 16;

    internal static readonly AesGcmSivBackend DefaultBackend =
        AesNi.IsSupported && PolyvalClmul.IsSupported ? AesGcmSivBackend.Hardware : AesGcmSivBackend.Portable;

    private readonly AesGcmSivBackend _backend;
    private readonly int _keySize;
    private readonly int _kgkRounds;
    private AesNiRoundKeys _kgkHardware;
    private readonly uint[]? _kgkPortable;
    private bool _disposed;

    /// <summary>Creates an AEAD over a 32-byte (AES-256) or 16-byte (AES-128) key-generating key.</summary>
    /// <exception cref="ArgumentException">The key is neither 32 nor 16 bytes long.</exception>
    public AesGcmSiv(ReadOnlySpan<byte> key32)
        : this(key32, DefaultBackend)
    {
    }

    /// <summary>Creates an instance on a given backend (tests and the benchmark force each one).</summary>
    /// <exception cref="PlatformNotSupportedException">The hardware backend was asked for on a CPU without it.</exception>
    internal AesGcmSiv(ReadOnlySpan<byte> key, AesGcmSivBackend backend)
    {
        if (key.Length != 32 && key.Length != 16)
        {
            throw new ArgumentException(
                $"An AES-GCM-SIV key is 32 bytes (AES-256) or 16 bytes (AES-128); this one is {key.Length} bytes.",
                nameof(key));
        }

        _keySize = key.Length;
        _backend = backend;
        if (backend == AesGcmSivBackend.Hardware)
        {
            if (!AesNi.IsSupported || !PolyvalClmul.IsSupported)
            {
                throw new PlatformNotSupportedException("This CPU lacks AES-NI or PCLMULQDQ.");
            }

            _kgkRounds = AesNi.ExpandKey(key, ref _kgkHardware);
        }
        else
        {
            _kgkPortable = new uint[AesPortable.MaxRoundKeyWords];
            _kgkRounds = AesPortable.ExpandKey(key, _kgkPortable);
        }
    }

    /// <summary>True when this instance runs on AES-NI and PCLMULQDQ.</summary>
    public bool IsHardwareAccelerated => _backend == AesGcmSivBackend.Hardware;

    /// <summary>The key-generating key's length in bytes: 32 or 16.</summary>
    public int KeySize => _keySize;

    /// <summary>
    /// Encrypts <paramref name="plaintextInPlace"/> in place and writes its tag (RFC 8452 §4).
    /// </summary>
    /// <param name="nonce12">The 12-byte nonce. Crucible draws a fresh random one per block.</param>
    /// <param name="plaintextInPlace">The plaintext, replaced by the ciphertext of the same length.</param>
    /// <param name="tag16">Receives the 16-byte tag.</param>
    /// <param name="aad">Associated data, authenticated but not encrypted (Crucible passes none).</param>
    public void Encrypt(ReadOnlySpan<byte> nonce12, Span<byte> plaintextInPlace, Span<byte> tag16, ReadOnlySpan<byte> aad)
    {
        CheckArguments(nonce12, tag16.Length);
        if (_backend == AesGcmSivBackend.Hardware)
        {
            EncryptHardware(nonce12, plaintextInPlace, tag16, aad);
        }
        else
        {
            EncryptPortable(nonce12, plaintextInPlace, tag16, aad);
        }
    }

    /// <summary>
    /// Decrypts <paramref name="ciphertextInPlace"/> in place and checks its tag (RFC 8452 §5).
    /// </summary>
    /// <returns>
    /// True if the tag is authentic; the buffer then holds the plaintext. False otherwise; the
    /// buffer then holds the ciphertext it held on entry (the keystream is applied a second time),
    /// so unauthenticated plaintext is never left behind.
    /// </returns>
    /// <remarks>
    /// Authentication needs the plaintext, so it is in the buffer while the call runs even when the
    /// tag turns out to be forged. Decrypt into memory only this thread can see (not straight into
    /// guest memory) and copy out after a true result.
    /// </remarks>
    public bool TryDecrypt(ReadOnlySpan<byte> nonce12, Span<byte> ciphertextInPlace, ReadOnlySpan<byte> tag16, ReadOnlySpan<byte> aad)
    {
        CheckArguments(nonce12, tag16.Length);
        return _backend == AesGcmSivBackend.Hardware
            ? TryDecryptHardware(nonce12, ciphertextInPlace, tag16, aad)
            : TryDecryptPortable(nonce12, ciphertextInPlace, tag16, aad);
    }

    /// <summary>Zeroes the expanded key. Later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        _disposed = true;
        Zero(ref _kgkHardware);
        if (_kgkPortable is not null)
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(_kgkPortable.AsSpan()));
        }
    }

    /// <summary>
    /// RFC 8452 §4 per-nonce keys, exposed so tests can compare them with the RFC's intermediate
    /// values: the 16-byte message-authentication key and the message-encryption key (as long as
    /// the key-generating key).
    /// </summary>
    internal void DeriveKeys(ReadOnlySpan<byte> nonce, Span<byte> authKey, Span<byte> encKey)
    {
        CheckArguments(nonce, TagSize);
        if (_backend == AesGcmSivBackend.Hardware)
        {
            AesNi.DeriveKeys(in _kgkHardware, _kgkRounds, NonceBlock(nonce), out Vector128<byte> auth, out Vector128<byte> lo, out Vector128<byte> hi);
            auth.CopyTo(authKey);
            lo.CopyTo(encKey);
            if (_keySize == 32)
            {
                hi.CopyTo(encKey[16..]);
            }

            return;
        }

        DerivePortableRaw(nonce, authKey, encKey);
    }

    private void CheckArguments(ReadOnlySpan<byte> nonce, int tagLength)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (nonce.Length != NonceSize)
        {
            ThrowBadLength(nameof(nonce), "nonce", NonceSize, nonce.Length);
        }

        if (tagLength != TagSize)
        {
            ThrowBadLength("tag", "tag", TagSize, tagLength);
        }
    }

    [DoesNotReturn]
    private static void ThrowBadLength(string parameter, string what, int expected, int actual) =>
        throw new ArgumentException($"An AES-GCM-SIV {what} is {expected} bytes; this one is {actual} bytes.", parameter);

    // ---- Hardware: AES-NI + PCLMULQDQ ----

    private static Vector128<byte> NonceBlock(ReadOnlySpan<byte> nonce)
    {
        // LE32(0) ‖ nonce: the key-derivation input for counter 0.
        Span<byte> block = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(block, 0);
        nonce.CopyTo(block[4..]);
        return Vector128.Create((ReadOnlySpan<byte>)block);
    }

    private static Vector128<byte> NoncePadded(ReadOnlySpan<byte> nonce)
    {
        // nonce ‖ 0^32: what the POLYVAL result is XORed with.
        Span<byte> block = stackalloc byte[16];
        nonce.CopyTo(block);
        BinaryPrimitives.WriteUInt32LittleEndian(block[12..], 0);
        return Vector128.Create((ReadOnlySpan<byte>)block);
    }

    // Clears the most significant bit of the last byte (RFC 8452 §4, before the tag's AES).
    private static Vector128<byte> ClearTopBit => Vector128.Create(ulong.MaxValue, 0x7fffffffffffffffUL).AsByte();

    // Sets it (the initial counter block is the tag with this bit set).
    private static Vector128<byte> SetTopBit => Vector128.Create(0UL, 0x8000000000000000UL).AsByte();

    private void DeriveHardware(
        ReadOnlySpan<byte> nonce, ref AesNiRoundKeys encKey, out int encRounds, out Vector128<byte> authKey)
    {
        AesNi.DeriveKeys(in _kgkHardware, _kgkRounds, NonceBlock(nonce), out authKey, out Vector128<byte> encLo, out Vector128<byte> encHi);
        encRounds = _keySize == 32 ? AesNi.ExpandKey256(encLo, encHi, ref encKey) : AesNi.ExpandKey128(encLo, ref encKey);
    }

    // A plain "= default" on a dead local may be optimised away; ZeroMemory is not.
    private static void Zero(ref AesNiRoundKeys keys) =>
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref keys[0], 15)));

    private Vector128<byte> TagHardware(
        ref readonly AesNiRoundKeys encKey, int encRounds, Vector128<byte> authKey,
        ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> aad)
    {
        var polyval = new PolyvalClmul(authKey);
        polyval.UpdatePadded(aad);
        polyval.UpdatePadded(plaintext);
        polyval.UpdateLengths(aad.Length, plaintext.Length);
        Vector128<byte> s = (polyval.Result ^ NoncePadded(nonce)) & ClearTopBit;
        polyval.Clear();
        return AesNi.EncryptBlock(in encKey, encRounds, s);
    }

    private void EncryptHardware(ReadOnlySpan<byte> nonce, Span<byte> data, Span<byte> tag, ReadOnlySpan<byte> aad)
    {
        AesNiRoundKeys encKey = default;
        DeriveHardware(nonce, ref encKey, out int encRounds, out Vector128<byte> authKey);
        Vector128<byte> t = TagHardware(in encKey, encRounds, authKey, nonce, data, aad);
        AesNi.Ctr32(in encKey, encRounds, t | SetTopBit, data);
        t.CopyTo(tag);
        Zero(ref encKey);
    }

    private bool TryDecryptHardware(ReadOnlySpan<byte> nonce, Span<byte> data, ReadOnlySpan<byte> tag, ReadOnlySpan<byte> aad)
    {
        AesNiRoundKeys encKey = default;
        DeriveHardware(nonce, ref encKey, out int encRounds, out Vector128<byte> authKey);
        Vector128<byte> counter = Vector128.Create(tag) | SetTopBit;

        // Decrypt and hash the plaintext in one pass (RFC 8452 §5 order: AAD, plaintext, lengths).
        var polyval = new PolyvalClmul(authKey);
        polyval.UpdatePadded(aad);
        AesNiClmul.DecryptAndHash(in encKey, encRounds, counter, data, ref polyval);
        polyval.UpdateLengths(aad.Length, data.Length);
        Vector128<byte> s = (polyval.Result ^ NoncePadded(nonce)) & ClearTopBit;
        polyval.Clear();
        Vector128<byte> expected = AesNi.EncryptBlock(in encKey, encRounds, s);

        Span<byte> expectedBytes = stackalloc byte[TagSize];
        expected.CopyTo(expectedBytes);
        bool authentic = CryptographicOperations.FixedTimeEquals(expectedBytes, tag);
        if (!authentic)
        {
            // Put the ciphertext back rather than leave unauthenticated plaintext in the buffer.
            AesNi.Ctr32(in encKey, encRounds, counter, data);
        }

        Zero(ref encKey);
        return authentic;
    }

    // ---- Portable ----

    private int DerivePortable(ReadOnlySpan<byte> nonce, Span<uint> encKeySchedule, Span<byte> authKey)
    {
        // RFC 8452 §4: AES(K, LE32(i) ‖ nonce)[0..8] for i = 0, 1 (authentication key) and
        // i = 2..3 or 2..5 (encryption key).
        Span<byte> encKey = stackalloc byte[32];
        DerivePortableRaw(nonce, authKey, encKey);
        int rounds = AesPortable.ExpandKey(encKey[.._keySize], encKeySchedule);
        CryptographicOperations.ZeroMemory(encKey);
        return rounds;
    }

    private void DerivePortableRaw(ReadOnlySpan<byte> nonce, Span<byte> authKey, Span<byte> encKey)
    {
        Span<byte> block = stackalloc byte[16];
        ReadOnlySpan<uint> kgk = _kgkPortable!;
        int blocks = _keySize == 32 ? 6 : 4;
        for (int i = 0; i < blocks; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(block, (uint)i);
            nonce.CopyTo(block[4..]);
            AesPortable.EncryptBlock(kgk, _kgkRounds, block, block);
            block[..8].CopyTo(i < 2 ? authKey[(8 * i)..] : encKey[(8 * (i - 2))..]);
        }

        CryptographicOperations.ZeroMemory(block);
    }

    private static void TagPortable(
        ReadOnlySpan<uint> encKey, int encRounds, ReadOnlySpan<byte> authKey,
        ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> aad, Span<byte> tag)
    {
        var polyval = new PolyvalPortable(authKey);
        polyval.UpdatePadded(aad);
        polyval.UpdatePadded(plaintext);
        polyval.UpdateLengths(aad.Length, plaintext.Length);
        polyval.WriteResult(tag);
        polyval.Clear();
        for (int i = 0; i < NonceSize; i++)
        {
            tag[i] ^= nonce[i];
        }

        tag[15] &= 0x7f;
        AesPortable.EncryptBlock(encKey, encRounds, tag, tag);
    }

    private void EncryptPortable(ReadOnlySpan<byte> nonce, Span<byte> data, Span<byte> tag, ReadOnlySpan<byte> aad)
    {
        Span<uint> encKey = stackalloc uint[AesPortable.MaxRoundKeyWords];
        Span<byte> authKey = stackalloc byte[16];
        Span<byte> counter = stackalloc byte[16];
        int encRounds = DerivePortable(nonce, encKey, authKey);
        TagPortable(encKey, encRounds, authKey, nonce, data, aad, counter);
        counter.CopyTo(tag);
        counter[15] |= 0x80;
        AesPortable.Ctr32(encKey, encRounds, counter, data);
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(encKey));
        CryptographicOperations.ZeroMemory(authKey);
    }

    private bool TryDecryptPortable(ReadOnlySpan<byte> nonce, Span<byte> data, ReadOnlySpan<byte> tag, ReadOnlySpan<byte> aad)
    {
        Span<uint> encKey = stackalloc uint[AesPortable.MaxRoundKeyWords];
        Span<byte> authKey = stackalloc byte[16];
        Span<byte> counter = stackalloc byte[16];
        Span<byte> expected = stackalloc byte[16];
        int encRounds = DerivePortable(nonce, encKey, authKey);
        tag.CopyTo(counter);
        counter[15] |= 0x80;
        AesPortable.Ctr32(encKey, encRounds, counter, data);
        TagPortable(encKey, encRounds, authKey, nonce, data, aad, expected);
        bool authentic = CryptographicOperations.FixedTimeEquals(expected, tag);
        if (!authentic)
        {
            AesPortable.Ctr32(encKey, encRounds, counter, data);
        }

        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(encKey));
        CryptographicOperations.ZeroMemory(authKey);
        return authentic;
    }
}

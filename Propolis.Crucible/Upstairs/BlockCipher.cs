using System.Security.Cryptography;
using Propolis.Crucible.Crypto;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Upstairs;

/// <summary>
/// The upstairs' per-block data transform (crucible <c>upstairs/src/lib.rs</c>
/// <c>EncryptionContext::encrypt_in_place</c>, <c>deferred.rs</c>, <c>client.rs</c>
/// <c>validate_*_read_response</c>): with a key, each block is encrypted with AES-256-GCM-SIV
/// under a fresh random 12-byte nonce and empty AAD, and its integrity hash is XXH64 of
/// nonce ‖ tag ‖ ciphertext (taken after encryption, so a downstairs can check it without the key);
/// without a key the hash is XXH64 of the data.
/// </summary>
public sealed class BlockCipher : IDisposable
{
    private readonly AesGcmSiv? _aead;

    public BlockCipher(byte[]? key)
    {
        _aead = key is null ? null : new AesGcmSiv(key);
    }

    public bool Encrypted => _aead is not null;

    /// <summary>Encrypts (when keyed) <paramref name="block"/> in place; returns its context.</summary>
    public BlockContext Seal(Span<byte> block)
    {
        if (_aead is null)
        {
            return BlockContext.ForPlainBlock(block);
        }
        Span<byte> nonce = stackalloc byte[EncryptionContext.NonceSize];
        Span<byte> tag = stackalloc byte[EncryptionContext.TagSize];
        RandomNumberGenerator.Fill(nonce);
        _aead.Encrypt(nonce, block, tag, default);
        var ec = new EncryptionContext(nonce, tag);
        return new BlockContext(IntegrityHash.Compute(ec, block), ec);
    }

    /// <summary>
    /// Checks (and, when keyed, decrypts in place) one block of a ReadResponse. Null when the
    /// block is good; otherwise the error the real upstairs reports: HashMismatch, DecryptionError,
    /// or MissingBlockContext (no context for a block that is not all zeroes, or a context of the
    /// wrong kind).
    /// </summary>
    public CrucibleErrorKind? Open(ReadBlockContext context, Span<byte> block)
    {
        switch (context.Kind)
        {
            case ReadBlockContextKind.Empty:
                return block.ContainsAnyExcept((byte)0) ? CrucibleErrorKind.MissingBlockContext : null;
            case ReadBlockContextKind.Unencrypted:
                if (_aead is not null)
                {
                    return CrucibleErrorKind.MissingBlockContext;
                }
                return IntegrityHash.Compute(block) == context.Hash ? null : CrucibleErrorKind.HashMismatch;
            default:
                if (_aead is null)
                {
                    return CrucibleErrorKind.MissingBlockContext;
                }
                EncryptionContext ec = context.Ctx;
                EncryptionNonce nonce = ec.Nonce;
                EncryptionTag tag = ec.Tag;
                return _aead.TryDecrypt(nonce, block, tag, default) ? null : CrucibleErrorKind.DecryptionError;
        }
    }

    public void Dispose() => _aead?.Dispose();
}

using System.Buffers.Binary;
using Propolis.Crucible.Hashing;

namespace Propolis.Crucible.Regions;

/// <summary>
/// <c>crucible_protocol::EncryptionContext</c>: the AES-GCM-SIV nonce (12 bytes) and tag (16 bytes) of
/// an encrypted block. Held as integers so that a context is a plain value and copying one allocates
/// nothing; the bytes are read back with <see cref="CopyNonceTo"/> and <see cref="CopyTagTo"/>.
/// </summary>
public readonly struct EncryptionContext : IEquatable<EncryptionContext>
{
    public const int NonceSize = 12;
    public const int TagSize = 16;

    private readonly ulong _nonceLo;
    private readonly uint _nonceHi;
    private readonly ulong _tagLo;
    private readonly ulong _tagHi;

    public EncryptionContext(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> tag)
    {
        if (nonce.Length != NonceSize)
        {
            throw new ArgumentException($"a nonce is {NonceSize} bytes, not {nonce.Length}", nameof(nonce));
        }
        if (tag.Length != TagSize)
        {
            throw new ArgumentException($"a tag is {TagSize} bytes, not {tag.Length}", nameof(tag));
        }
        _nonceLo = BinaryPrimitives.ReadUInt64LittleEndian(nonce);
        _nonceHi = BinaryPrimitives.ReadUInt32LittleEndian(nonce[8..]);
        _tagLo = BinaryPrimitives.ReadUInt64LittleEndian(tag);
        _tagHi = BinaryPrimitives.ReadUInt64LittleEndian(tag[8..]);
    }

    public void CopyNonceTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, _nonceLo);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..NonceSize], _nonceHi);
    }

    public void CopyTagTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, _tagLo);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..TagSize], _tagHi);
    }

    public byte[] Nonce()
    {
        var b = new byte[NonceSize];
        CopyNonceTo(b);
        return b;
    }

    public byte[] Tag()
    {
        var b = new byte[TagSize];
        CopyTagTo(b);
        return b;
    }

    public bool Equals(EncryptionContext other) =>
        _nonceLo == other._nonceLo && _nonceHi == other._nonceHi && _tagLo == other._tagLo && _tagHi == other._tagHi;

    public override bool Equals(object? obj) => obj is EncryptionContext other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_nonceLo, _nonceHi, _tagLo, _tagHi);

    public static bool operator ==(EncryptionContext a, EncryptionContext b) => a.Equals(b);

    public static bool operator !=(EncryptionContext a, EncryptionContext b) => !a.Equals(b);

    public override string ToString() => $"nonce {Convert.ToHexStringLower(Nonce())} tag {Convert.ToHexStringLower(Tag())}";
}

/// <summary>
/// <c>crucible_protocol::BlockContext</c>: what the upstairs says about a block it writes. <see cref="Hash"/>
/// is the integrity hash (<see cref="IntegrityHash"/>) of the block as sent, taken after encryption.
/// </summary>
public readonly record struct BlockContext(ulong Hash, EncryptionContext? EncryptionContext)
{
    /// <summary>The context of an unencrypted block holding <paramref name="data"/>.</summary>
    public static BlockContext ForPlainBlock(ReadOnlySpan<byte> data) => new(IntegrityHash.Compute(data), null);

    /// <summary>Whether <see cref="Hash"/> is the integrity hash of <paramref name="data"/>.</summary>
    public bool Matches(ReadOnlySpan<byte> data) =>
        Hash == (EncryptionContext is { } ec ? IntegrityHash.Compute(ec, data) : IntegrityHash.Compute(data));
}

/// <summary>
/// <c>crucible_raw_extent::OnDiskDownstairsBlockContext</c>: a block context as kept in a context slot,
/// with the hash of the bytes on disk (<see cref="OnDiskHash"/>, what recovery compares against) and the
/// low 16 bits of the extent's last flush number when it was written (<see cref="FlushId"/>, kept for
/// debugging only).
/// </summary>
public readonly record struct OnDiskBlockContext(BlockContext BlockContext, ulong OnDiskHash, ushort FlushId);

/// <summary><c>crucible_common::integrity_hash</c>: XXH64 with seed 0 over its arguments in order.</summary>
public static class IntegrityHash
{
    /// <summary>The hash of an unencrypted block.</summary>
    public static ulong Compute(ReadOnlySpan<byte> data) => XxHash64.Hash(data);

    /// <summary>The hash of an encrypted block: nonce, then tag, then the ciphertext.</summary>
    public static ulong Compute(EncryptionContext context, ReadOnlySpan<byte> data)
    {
        Span<byte> prefix = stackalloc byte[EncryptionContext.NonceSize + EncryptionContext.TagSize];
        context.CopyNonceTo(prefix);
        context.CopyTagTo(prefix[EncryptionContext.NonceSize..]);
        var hasher = new XxHash64();
        hasher.Append(prefix);
        hasher.Append(data);
        return hasher.GetCurrentHash();
    }
}

using System.Runtime.CompilerServices;
using Propolis.Crucible.Hashing;
using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>The 12-byte AES-GCM-SIV nonce of an encrypted block (<c>[u8; 12]</c>).</summary>
[InlineArray(Length)]
public struct EncryptionNonce
{
    public const int Length = 12;
    private byte _element0;
}

/// <summary>The 16-byte authentication tag of an encrypted block (<c>[u8; 16]</c>).</summary>
[InlineArray(Length)]
public struct EncryptionTag
{
    public const int Length = 16;
    private byte _element0;
}

/// <summary>
/// <c>EncryptionContext { nonce: [u8; 12], tag: [u8; 16] }</c>; on the wire the 28 bytes
/// follow each other with no length (fixed arrays are tuples in serde).
/// </summary>
/// <remarks>
/// The one definition used by the wire, the region's context slots and the upstairs: a plain value
/// (28 bytes inline), so copying one allocates nothing.
/// </remarks>
public readonly struct EncryptionContext : IEquatable<EncryptionContext>
{
    public const int NonceSize = EncryptionNonce.Length;
    public const int TagSize = EncryptionTag.Length;
    public const int WireSize = NonceSize + TagSize;

    /// <summary>Copy to a local to view it as a span: <c>ReadOnlySpan&lt;byte&gt; n = ctx.Nonce;</c>.</summary>
    public readonly EncryptionNonce Nonce;

    /// <summary>Copy to a local to view it as a span.</summary>
    public readonly EncryptionTag Tag;

    public EncryptionContext(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> tag)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(nonce.Length, EncryptionNonce.Length, nameof(nonce));
        ArgumentOutOfRangeException.ThrowIfNotEqual(tag.Length, EncryptionTag.Length, nameof(tag));
        nonce.CopyTo(Nonce);
        tag.CopyTo(Tag);
    }

    public void CopyNonceTo(Span<byte> destination) => ((ReadOnlySpan<byte>)Nonce).CopyTo(destination);

    public void CopyTagTo(Span<byte> destination) => ((ReadOnlySpan<byte>)Tag).CopyTo(destination);

    /// <summary>The nonce as a new array (for printing; not for hot paths).</summary>
    public byte[] NonceBytes() => ((ReadOnlySpan<byte>)Nonce).ToArray();

    /// <summary>The tag as a new array (for printing; not for hot paths).</summary>
    public byte[] TagBytes() => ((ReadOnlySpan<byte>)Tag).ToArray();

    public bool Equals(EncryptionContext other) =>
        ((ReadOnlySpan<byte>)Nonce).SequenceEqual(other.Nonce) && ((ReadOnlySpan<byte>)Tag).SequenceEqual(other.Tag);

    public override bool Equals(object? obj) => obj is EncryptionContext other && Equals(other);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(Nonce);
        h.AddBytes(Tag);
        return h.ToHashCode();
    }

    public static bool operator ==(EncryptionContext left, EncryptionContext right) => left.Equals(right);

    public static bool operator !=(EncryptionContext left, EncryptionContext right) => !left.Equals(right);

    public override string ToString() =>
        $"EncryptionContext {{ nonce: {Convert.ToHexString(Nonce)}, tag: {Convert.ToHexString(Tag)} }}";

    internal static EncryptionContext Read(ref BincodeReader r) =>
        new(r.ReadFixed(EncryptionNonce.Length), r.ReadFixed(EncryptionTag.Length));

    internal void Write(ref BincodeWriter w)
    {
        w.WriteFixed(Nonce);
        w.WriteFixed(Tag);
    }
}

/// <summary>
/// <c>BlockContext { hash: u64, encryption_context: Option&lt;EncryptionContext&gt; }</c>: the
/// integrity hash (<see cref="IntegrityHash"/>: XXH64 of nonce, tag and ciphertext when encrypted,
/// of the data otherwise) that accompanies each written block, taken over the block as sent.
/// </summary>
public readonly record struct BlockContext(ulong Hash, EncryptionContext? EncryptionContext)
{
    /// <summary>The context of an unencrypted block holding <paramref name="data"/>.</summary>
    public static BlockContext ForPlainBlock(ReadOnlySpan<byte> data) => new(IntegrityHash.Compute(data), null);

    /// <summary>Whether <see cref="Hash"/> is the integrity hash of <paramref name="data"/>.</summary>
    public bool Matches(ReadOnlySpan<byte> data) =>
        Hash == (EncryptionContext is { } ec ? IntegrityHash.Compute(ec, data) : IntegrityHash.Compute(data));

    /// <summary>Smallest encoding: hash and a None tag.</summary>
    internal const int MinWireSize = 9;

    internal static BlockContext Read(ref BincodeReader r)
    {
        ulong hash = r.ReadU64();
        EncryptionContext? ctx = r.ReadOptionTag() ? Protocol.EncryptionContext.Read(ref r) : null;
        return new BlockContext(hash, ctx);
    }

    internal void Write(ref BincodeWriter w)
    {
        w.WriteU64(Hash);
        w.WriteOptionTag(EncryptionContext.HasValue);
        EncryptionContext?.Write(ref w);
    }
}

/// <summary>The variants of <see cref="ReadBlockContext"/>, with their bincode indices.</summary>
public enum ReadBlockContextKind : uint
{
    Empty = 0,
    Encrypted = 1,
    Unencrypted = 2,
}

/// <summary>
/// <c>enum ReadBlockContext { Empty, Encrypted { ctx: EncryptionContext }, Unencrypted { hash: u64 } }</c>:
/// what a downstairs knows about a block it returns in a ReadResponse.
/// </summary>
public readonly record struct ReadBlockContext
{
    private ReadBlockContext(ReadBlockContextKind kind, EncryptionContext ctx, ulong hash)
    {
        Kind = kind;
        Ctx = ctx;
        Hash = hash;
    }

    public ReadBlockContextKind Kind { get; }

    /// <summary>Set for <see cref="ReadBlockContextKind.Encrypted"/>.</summary>
    public EncryptionContext Ctx { get; }

    /// <summary>Set for <see cref="ReadBlockContextKind.Unencrypted"/>.</summary>
    public ulong Hash { get; }

    public static ReadBlockContext Empty => default;

    public static ReadBlockContext Encrypted(EncryptionContext ctx) => new(ReadBlockContextKind.Encrypted, ctx, 0);

    public static ReadBlockContext Unencrypted(ulong hash) => new(ReadBlockContextKind.Unencrypted, default, hash);

    /// <summary>Smallest encoding: the variant index of Empty.</summary>
    internal const int MinWireSize = 4;

    public override string ToString() => Kind switch
    {
        ReadBlockContextKind.Encrypted => $"Encrypted {{ ctx: {Ctx} }}",
        ReadBlockContextKind.Unencrypted => $"Unencrypted {{ hash: {Hash:x16} }}",
        _ => "Empty",
    };

    internal static ReadBlockContext Read(ref BincodeReader r) =>
        (ReadBlockContextKind)r.ReadVariant(3, nameof(ReadBlockContext)) switch
        {
            ReadBlockContextKind.Encrypted => Encrypted(EncryptionContext.Read(ref r)),
            ReadBlockContextKind.Unencrypted => Unencrypted(r.ReadU64()),
            _ => Empty,
        };

    internal void Write(ref BincodeWriter w)
    {
        w.WriteVariant((uint)Kind);
        switch (Kind)
        {
            case ReadBlockContextKind.Encrypted:
                Ctx.Write(ref w);
                break;
            case ReadBlockContextKind.Unencrypted:
                w.WriteU64(Hash);
                break;
        }
    }
}

/// <summary>
/// <c>crucible_common::integrity_hash</c>: XXH64 with seed 0 over its arguments in order
/// (<c>upstairs/src/deferred.rs</c> hashes <c>&amp;[&amp;nonce, &amp;tag, data]</c> for an encrypted
/// block, <c>&amp;[data]</c> for a plain one).
/// </summary>
public static class IntegrityHash
{
    /// <summary>The hash of an unencrypted block.</summary>
    public static ulong Compute(ReadOnlySpan<byte> data) => XxHash64.Hash(data);

    /// <summary>The hash of an encrypted block: nonce, then tag, then the ciphertext.</summary>
    public static ulong Compute(EncryptionContext context, ReadOnlySpan<byte> data)
    {
        var hasher = new XxHash64();
        EncryptionNonce nonce = context.Nonce;
        EncryptionTag tag = context.Tag;
        hasher.Append(nonce);
        hasher.Append(tag);
        hasher.Append(data);
        return hasher.GetCurrentHash();
    }
}

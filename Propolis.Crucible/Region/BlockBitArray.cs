using System.Buffers.Binary;

namespace Propolis.Crucible.Regions;

/// <summary>
/// One bit per block (<c>BlockBitArray</c>), packed into 32-bit words with block <c>i</c> at bit
/// <c>i % 32</c> of word <c>i / 32</c>. Written little-endian, the words are exactly the on-disk
/// active-slot bitmap: bit <c>i % 8</c> of byte <c>i / 8</c>.
/// </summary>
internal sealed class BlockBitArray
{
    private readonly uint[] _words;

    public BlockBitArray(ulong blockCount)
    {
        BlockCount = blockCount;
        _words = new uint[(blockCount + 31) / 32];
    }

    public ulong BlockCount { get; }

    public bool this[ulong block]
    {
        get
        {
            Check(block);
            return (_words[block / 32] & (1u << (int)(block % 32))) != 0;
        }
        set
        {
            Check(block);
            if (value)
            {
                _words[block / 32] |= 1u << (int)(block % 32);
            }
            else
            {
                _words[block / 32] &= ~(1u << (int)(block % 32));
            }
        }
    }

    public void Swap(ulong block)
    {
        Check(block);
        _words[block / 32] ^= 1u << (int)(block % 32);
    }

    public void Reset() => Array.Clear(_words);

    public ulong CountSet()
    {
        ulong n = 0;
        foreach (uint w in _words)
        {
            n += (ulong)System.Numerics.BitOperations.PopCount(w);
        }
        return n;
    }

    /// <summary>Writes the packed bitmap: <c>ceil(BlockCount / 8)</c> bytes.</summary>
    public void WriteBitmap(Span<byte> destination)
    {
        int size = checked((int)((BlockCount + 7) / 8));
        Span<byte> word = stackalloc byte[4];
        for (int i = 0; i < size; i += 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(word, _words[i / 4]);
            word[..Math.Min(4, size - i)].CopyTo(destination[i..]);
        }
    }

    /// <summary>Loads a packed bitmap; bits past <see cref="BlockCount"/> are ignored.</summary>
    public void ReadBitmap(ReadOnlySpan<byte> source)
    {
        Reset();
        for (ulong block = 0; block < BlockCount; block++)
        {
            if ((source[(int)(block / 8)] & (1 << (int)(block % 8))) != 0)
            {
                _words[block / 32] |= 1u << (int)(block % 32);
            }
        }
    }

    private void Check(ulong block)
    {
        if (block >= BlockCount)
        {
            throw new ArgumentOutOfRangeException(nameof(block), block, $"block count is {BlockCount}");
        }
    }
}

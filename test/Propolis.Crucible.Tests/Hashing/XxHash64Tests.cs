using System.Text;
using Propolis.Crucible.Hashing;

namespace Propolis.Crucible.Tests.Hashing;

public class XxHash64Tests
{
    private const ulong Prime32 = 2654435761U;
    private const ulong Prime64 = 11400714785074694797UL;

    /// <summary>xxhsum's <c>XSUM_fillTestBuffer</c> (cli/xsum_sanity_check.c): byteGen starts at PRIME32,
    /// each byte is its top 8 bits, then byteGen *= PRIME64.</summary>
    internal static byte[] SanityBuffer(int length)
    {
        var buffer = new byte[length];
        ulong byteGen = Prime32;
        for (int i = 0; i < length; i++)
        {
            buffer[i] = (byte)(byteGen >> 56);
            byteGen *= Prime64;
        }
        return buffer;
    }

    // XSUM_XXH64_testdata from xxHash cli/xsum_sanity_check.c, then further lengths (every code path
    // of a 32-byte stripe loop plus tails, and whole 512 and 4096-byte blocks) computed with the
    // system's libxxhash 0.8.1.
    public static TheoryData<int, ulong, ulong> SanityVectors => new()
    {
        { 0, 0, 0xEF46DB3751D8E999UL },
        { 0, Prime32, 0xAC75FDA2929B17EFUL },
        { 1, 0, 0xE934A84ADB052768UL },
        { 1, Prime32, 0x5014607643A9B4C3UL },
        { 4, 0, 0x9136A0DCA57457EEUL },
        { 14, 0, 0x8282DCC4994E35C8UL },
        { 14, Prime32, 0xC3BD6BF63DEB6DF0UL },
        { 222, 0, 0xB641AE8CB691C174UL },
        { 222, Prime32, 0x20CB8AB7AE10C14AUL },
        { 512, 0, 0x4358D2FDD62B58A7UL },
        { 4096, 0, 0xAB77F4AF85F4E70BUL },
    };

    [Theory]
    [MemberData(nameof(SanityVectors))]
    public void OneShotMatchesTheSanityVectors(int length, ulong seed, ulong expected)
    {
        Assert.Equal(expected, XxHash64.Hash(SanityBuffer(length), seed));
    }

    [Theory]
    [MemberData(nameof(SanityVectors))]
    public void StreamingMatchesTheSanityVectors(int length, ulong seed, ulong expected)
    {
        byte[] data = SanityBuffer(length);

        var whole = new XxHash64(seed);
        whole.Append(data);
        Assert.Equal(expected, whole.GetCurrentHash());

        // One byte at a time, as xxhsum's own check does.
        var bytewise = new XxHash64(seed);
        foreach (byte b in data)
        {
            bytewise.Append([b]);
        }
        Assert.Equal(expected, bytewise.GetCurrentHash());
    }

    [Theory]
    [InlineData("", 0xEF46DB3751D8E999UL)]
    [InlineData("a", 0xD24EC4F1A98C6E5BUL)]
    [InlineData("abc", 0x44BC2CF5AD770999UL)]
    [InlineData("Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1UL)]
    public void KnownStrings(string text, ulong expected)
    {
        Assert.Equal(expected, XxHash64.Hash(Encoding.ASCII.GetBytes(text)));
    }

    [Fact]
    public void DefaultConstructorUsesSeedZero()
    {
        var h = new XxHash64();
        h.Append("abc"u8);
        Assert.Equal(0x44BC2CF5AD770999UL, h.GetCurrentHash());
    }

    [Fact]
    public void ZeroBlocksHashAsCrucibleSeesThem()
    {
        // An all-zero 512-byte and 4096-byte block (libxxhash 0.8.1).
        Assert.Equal(0x8BBF7F68E8C3B87CUL, XxHash64.Hash(new byte[512]));
        Assert.Equal(0xAC869B6F32D8BBDBUL, XxHash64.Hash(new byte[4096]));
    }

    [Fact]
    public void ChunkedAppendsEqualOneShotForEverySplit()
    {
        byte[] data = SanityBuffer(300);
        var rng = new Random(1234);
        for (int trial = 0; trial < 200; trial++)
        {
            int length = rng.Next(0, data.Length + 1);
            ulong seed = trial % 2 == 0 ? 0 : (ulong)rng.NextInt64();
            ReadOnlySpan<byte> input = data.AsSpan(0, length);
            var h = new XxHash64(seed);
            int pos = 0;
            while (pos < length)
            {
                int n = Math.Min(rng.Next(0, 70), length - pos);
                h.Append(input.Slice(pos, n));
                pos += n;
            }
            Assert.Equal(XxHash64.Hash(input, seed), h.GetCurrentHash());
        }
    }

    [Fact]
    public void GetCurrentHashDoesNotDisturbTheState()
    {
        byte[] data = SanityBuffer(100);
        var h = new XxHash64();
        h.Append(data.AsSpan(0, 40));
        _ = h.GetCurrentHash();
        h.Append(data.AsSpan(40));
        Assert.Equal(XxHash64.Hash(data), h.GetCurrentHash());

        h.Reset();
        h.Append(data);
        Assert.Equal(XxHash64.Hash(data), h.GetCurrentHash());
    }
}

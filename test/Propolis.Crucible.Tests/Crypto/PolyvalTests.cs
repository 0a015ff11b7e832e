using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Propolis.Crucible.Crypto;
using static Propolis.Crucible.Tests.Crypto.CryptoTestData;

namespace Propolis.Crucible.Tests.Crypto;

public class PolyvalTests
{
    // RFC 8452 Appendix A: POLYVAL(H, X_1, X_2).
    private const string H = "25629347589242761d31f826ba4b757b";
    private const string X1 = "4f4f95668c83dfb6401762bb2d01a262";
    private const string X2 = "d1a24ddd2721d006bbe45f20d3c9f362";
    private const string Expected = "f7a3b47b846119fae5b7866cf5e5b77e";

    public static TheoryData<bool> Backends() => new(HardwareChoices());

    private static byte[] Polyval(bool hardware, byte[] h, byte[] data)
    {
        byte[] result = new byte[16];
        if (hardware)
        {
            var p = new PolyvalClmul(Vector128.Create(h));
            p.UpdatePadded(data);
            p.Result.CopyTo(result);
        }
        else
        {
            var p = new PolyvalPortable(h);
            p.UpdatePadded(data);
            p.WriteResult(result);
        }

        return result;
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Appendix_A_worked_example(bool hardware)
    {
        Assert.Equal(Expected, Hex(Polyval(hardware, Hex(H), Hex(X1 + X2))));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Appendix_A_worked_example_one_block_at_a_time(bool hardware)
    {
        byte[] result = new byte[16];
        if (hardware)
        {
            var p = new PolyvalClmul(Vector128.Create(Hex(H)));
            p.UpdateBlock(Vector128.Create(Hex(X1)).AsUInt64());
            p.UpdateBlock(Vector128.Create(Hex(X2)).AsUInt64());
            p.Result.CopyTo(result);
        }
        else
        {
            var p = new PolyvalPortable(Hex(H));
            p.UpdatePadded(Hex(X1));
            p.UpdatePadded(Hex(X2));
            p.WriteResult(result);
        }

        Assert.Equal(Expected, Hex(result));
    }

    [Fact]
    public void Empty_input_leaves_zero()
    {
        foreach (bool hardware in HardwareChoices())
        {
            Assert.Equal(new byte[16], Polyval(hardware, Hex(H), []));
        }
    }

    [Fact]
    public void Aggregated_hardware_path_agrees_with_the_portable_one_across_batch_boundaries()
    {
        if (!PolyvalClmul.IsSupported)
        {
            return; // nothing to compare on this CPU; the portable path is covered by the RFC tests
        }

        var rng = new Random(8452);
        byte[] h = new byte[16];
        // Lengths around the 8-block (128-byte) aggregation, including partial last blocks.
        foreach (int length in new[] { 0, 1, 15, 16, 17, 112, 127, 128, 129, 143, 144, 255, 256, 257, 383, 384, 512, 640, 4096, 4097 })
        {
            for (int trial = 0; trial < 4; trial++)
            {
                rng.NextBytes(h);
                byte[] data = new byte[length];
                rng.NextBytes(data);
                Assert.Equal(Hex(Polyval(false, h, data)), Hex(Polyval(true, h, data)));
            }
        }
    }

    [Fact]
    public void Hardware_path_handles_field_extremes()
    {
        if (!PolyvalClmul.IsSupported)
        {
            return;
        }

        // All-ones operands maximise carries in every partial product and reduction step.
        byte[] ones = Enumerable.Repeat((byte)0xff, 16 * 9).ToArray();
        byte[] top = new byte[16];
        top[15] = 0x80;
        foreach (byte[] h in new[] { ones[..16], top, Hex("01000000000000000000000000000000") })
        {
            Assert.Equal(Hex(Polyval(false, h, ones)), Hex(Polyval(true, h, ones)));
        }
    }

    [Fact]
    public void Software_carryless_multiply_matches_PCLMULQDQ()
    {
        if (!Pclmulqdq.IsSupported)
        {
            return;
        }

        var rng = new Random(1);
        var cases = new List<(ulong, ulong)>
        {
            (ulong.MaxValue, ulong.MaxValue), (0, ulong.MaxValue), (1, 1), (1UL << 63, 1UL << 63),
            (0x8888888888888888, 0x1111111111111111), (0xc200000000000000, 0xc200000000000000),
        };
        for (int i = 0; i < 2000; i++)
        {
            cases.Add(((ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 62)));
        }

        foreach ((ulong x, ulong y) in cases)
        {
            Vector128<ulong> product = Pclmulqdq.CarrylessMultiply(Vector128.CreateScalar(x), Vector128.CreateScalar(y), 0x00);
            Assert.Equal(product.GetElement(0), PolyvalPortable.Clmul64Low(x, y));
            Assert.Equal(product.GetElement(1), PolyvalPortable.Clmul64High(x, y));
        }
    }

    [Fact]
    public void Dot_with_one_times_x128_is_the_identity()
    {
        // dot(a, x^128 mod p) = a. x^128 ≡ x^127 + x^126 + x^121 + 1.
        ulong oneLo = 1, oneHi = 0xc200000000000000;
        var rng = new Random(2);
        for (int i = 0; i < 100; i++)
        {
            ulong aLo = (ulong)rng.NextInt64(), aHi = (ulong)rng.NextInt64();
            PolyvalPortable.Dot(aLo, aHi, oneLo, oneHi, out ulong rLo, out ulong rHi);
            Assert.Equal((aLo, aHi), (rLo, rHi));
            if (PolyvalClmul.IsSupported)
            {
                Vector128<ulong> r = PolyvalClmul.Dot(Vector128.Create(aLo, aHi), Vector128.Create(oneLo, oneHi));
                Assert.Equal((aLo, aHi), (r.GetElement(0), r.GetElement(1)));
            }
        }
    }
}

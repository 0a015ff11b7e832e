using System.Globalization;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Vmm;

public class CpuidSpecializerTests
{
    /// <summary>CPUID as captured (cpuid instruction, leaf/subleaf/eax/ebx/ecx/edx) on the AMD EPYC
    /// build machine, itself a guest of bhyve (note the "bhyve bhyve " signature at 0x40000000).</summary>
    private const string CapturedAmdEpyc = """
        0x00000000 0x0 0x0000000d 0x68747541 0x444d4163 0x69746e65
        0x00000001 0x0 0x00b00f21 0x9ffe0800 0xfed83203 0x178bfbff
        0x00000006 0x0 0x00000004 0x00000000 0x00000000 0x00000000
        0x00000007 0x0 0x00000001 0xf1bb03a9 0x18005f42 0x00000110
        0x00000007 0x1 0x00000030 0x00000000 0x00000000 0x00000000
        0x0000000d 0x0 0x000000e7 0x00000980 0x00000980 0x00000000
        0x0000000d 0x1 0x00000007 0x00000980 0x00000000 0x00000000
        0x0000000d 0x2 0x00000100 0x00000240 0x00000000 0x00000000
        0x40000000 0x0 0x40000000 0x76796862 0x68622065 0x20657679
        0x80000000 0x0 0x80000021 0x68747541 0x444d4163 0x69746e65
        0x80000001 0x0 0x00b00f21 0x40000000 0x440001f1 0x25d3fbff
        0x80000008 0x0 0x00003030 0x20000005 0x00000000 0x00000000
        0x8000001e 0x0 0x00000000 0x00000000 0x00000000 0x00000000
        0x80000021 0x0 0x411d8c47 0x00000000 0x00000000 0x00000000
        """;

    /// <summary>A synthetic Intel table with the leaves the specialiser rewrites: leaf 4 with
    /// L1d/L1i/L2/L3 and the terminating null subleaf, and leaf 0xB with only its SMT level.</summary>
    private const string SyntheticIntel = """
        0x00000000 0x0 0x0000001f 0x756e6547 0x6c65746e 0x49656e69
        0x00000001 0x0 0x000606a6 0x01020800 0x7ffefbff 0xbfebfbff
        0x00000004 0x0 0x7c004121 0x02c0003f 0x0000003f 0x00000000
        0x00000004 0x1 0x7c004122 0x01c0003f 0x0000003f 0x00000000
        0x00000004 0x2 0x7c004143 0x04c0003f 0x000003ff 0x00000000
        0x00000004 0x3 0x7c0fc163 0x02c0003f 0x0000bfff 0x00000004
        0x00000004 0x4 0x00000000 0x00000000 0x00000000 0x00000000
        0x0000000b 0x0 0x00000001 0x00000002 0x00000100 0x00000007
        0x40000000 0x0 0x40000001 0x4b4d564b 0x564b4d56 0x0000004d
        0x40000001 0x0 0x01007afb 0x00000000 0x00000000 0x00000000
        """;

    private static CpuidEntry[] Parse(string table)
    {
        var result = new List<CpuidEntry>();
        foreach (var line in table.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = line.Split(' ').Select(x => uint.Parse(x.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            var indexed = f[0] is 4 or 7 or 0xB or 0xD or 0x1F;
            result.Add(new CpuidEntry(f[0], f[1], indexed, f[2], f[3], f[4], f[5]));
        }
        return [.. result];
    }

    private static CpuidEntry Leaf(CpuidEntry[] table, uint function, uint index = 0) =>
        Assert.Single(table, e => e.Function == function && e.Index == index);

    [Theory]
    [InlineData(0, 1)]
    [InlineData(3, 4)]
    [InlineData(5, 6)]
    public void AmdLeaf1CarriesApicIdHypervisorBitAndHtt(int id, int count)
    {
        var t = CpuidSpecializer.ForVcpu(Parse(CapturedAmdEpyc), id, count);
        var l1 = Leaf(t, 1);
        Assert.Equal((uint)id, l1.Ebx >> 24);
        Assert.Equal(0x0800u, l1.Ebx & 0xFFFF); // CLFLUSH size and brand index kept
        Assert.Equal(1u << (int)CpuidSpecializer.CoreIdShift((uint)count), (l1.Ebx >> 16) & 0xFF);
        Assert.NotEqual(0u, l1.Ecx & CpuidSpecializer.HypervisorPresentBit);
        Assert.Equal(count > 1, (l1.Edx & CpuidSpecializer.HttBit) != 0);
        Assert.Equal(0x00b00f21u, l1.Eax);
    }

    [Fact]
    public void AmdTopologyLeavesDescribeOneSocketOfSingleThreadedCores()
    {
        var t = CpuidSpecializer.ForVcpu(Parse(CapturedAmdEpyc), 5, 6);
        var sizes = Leaf(t, 0x8000_0008);
        Assert.Equal(5u, sizes.Ecx & 0xFF);           // NC = cores - 1
        Assert.Equal(3u, (sizes.Ecx >> 12) & 0xF);    // ApicIdSize = ceil(log2(6))
        Assert.Equal(0x00003030u, sizes.Eax);         // address sizes untouched
        var topo = Leaf(t, 0x8000_001E);
        Assert.Equal(5u, topo.Eax);                   // extended APIC id
        Assert.Equal(5u, topo.Ebx & 0xFF);            // core id
        Assert.Equal(0u, (topo.Ebx >> 8) & 0xFF);     // one thread per core
    }

    [Fact]
    public void HypervisorSignatureBecomesKvm()
    {
        var t = CpuidSpecializer.ForVcpu(Parse(CapturedAmdEpyc), 0, 1);
        var sig = Leaf(t, 0x4000_0000);
        var text = string.Concat(new[] { sig.Ebx, sig.Ecx, sig.Edx }.Select(r => System.Text.Encoding.ASCII.GetString(BitConverter.GetBytes(r))));
        Assert.Equal("KVMKVMKVM\0\0\0", text);
        Assert.True(sig.Eax >= 0x4000_0001);
    }

    [Fact]
    public void UntouchedLeavesPassThroughAndNothingIsLost()
    {
        var source = Parse(CapturedAmdEpyc);
        var t = CpuidSpecializer.ForVcpu(source, 1, 2);
        Assert.All(source, e => Assert.Contains(t, x => x.Function == e.Function && x.Index == e.Index));
        // The source's max basic leaf (0xD) covers leaf 0xB, which it lacked: its levels are added.
        var added = t.Where(x => !source.Any(e => e.Function == x.Function && e.Index == x.Index)).ToArray();
        Assert.Equal([(0xBu, 0u), (0xBu, 1u), (0xBu, 2u)], added.Select(x => (x.Function, x.Index)).ToArray());
        Assert.Equal(Leaf(source, 7), Leaf(t, 7));
        Assert.Equal(Leaf(source, 0xD, 1), Leaf(t, 0xD, 1));
        Assert.Equal(Leaf(source, 0x8000_0001), Leaf(t, 0x8000_0001));
    }

    [Fact]
    public void IntelExtendedTopologyHasSmtAndCoreLevelsWithX2ApicId()
    {
        var t = CpuidSpecializer.ForVcpu(Parse(SyntheticIntel), 2, 3);
        var smt = Leaf(t, 0xB, 0);
        Assert.Equal(new CpuidEntry(0xB, 0, true, 0, 1, 0x100, 2), smt);
        var core = Leaf(t, 0xB, 1);
        Assert.Equal(new CpuidEntry(0xB, 1, true, 2, 3, 0x201, 2), core);
        var end = Leaf(t, 0xB, 2);
        Assert.Equal(new CpuidEntry(0xB, 2, true, 0, 0, 0x002, 2), end);
        // Leaf 0x1F is within the max basic leaf, so it is synthesised the same way.
        Assert.Equal(core with { Function = 0x1F }, Leaf(t, 0x1F, 1));
    }

    [Fact]
    public void IntelCacheLeafCountsCoresAndSharing()
    {
        var t = CpuidSpecializer.ForVcpu(Parse(SyntheticIntel), 0, 4);
        for (var i = 0u; i < 3; i++)
        {
            var l = Leaf(t, 4, i);
            Assert.Equal(3u, l.Eax >> 26);             // 4 cores - 1
            Assert.Equal(0u, (l.Eax >> 14) & 0xFFF);   // L1/L2 private to a core
        }
        var l3 = Leaf(t, 4, 3);
        Assert.Equal(3u, (l3.Eax >> 14) & 0xFFF);      // L3 shared by the package
        Assert.Equal(0x163u, l3.Eax & 0x3FFF);         // type and level untouched
        Assert.Equal(0u, Leaf(t, 4, 4).Eax);           // the terminator stays null
    }

    [Fact]
    public void AMissingSignatureLeafIsAdded()
    {
        var source = Parse(SyntheticIntel).Where(e => e.Function < 0x4000_0000).ToArray();
        var t = CpuidSpecializer.ForVcpu(source, 0, 1);
        Assert.Equal(CpuidSpecializer.KvmSignatureEbx, Leaf(t, 0x4000_0000).Ebx);
    }

    [Theory]
    [InlineData(1, 0u)]
    [InlineData(2, 1u)]
    [InlineData(3, 2u)]
    [InlineData(4, 2u)]
    [InlineData(5, 3u)]
    [InlineData(128, 7u)]
    [InlineData(255, 8u)]
    public void CoreIdShiftIsCeilLog2(int count, uint shift) => Assert.Equal(shift, CpuidSpecializer.CoreIdShift((uint)count));

    [Fact]
    public void RejectsIdsOutsideTheVcpuCount()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuidSpecializer.ForVcpu(Parse(SyntheticIntel), 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuidSpecializer.ForVcpu(Parse(SyntheticIntel), 0, 0));
    }

    [Fact]
    public void VendorDetection()
    {
        Assert.True(CpuidSpecializer.IsAmd(Parse(CapturedAmdEpyc)));
        Assert.False(CpuidSpecializer.IsAmd(Parse(SyntheticIntel)));
    }
}

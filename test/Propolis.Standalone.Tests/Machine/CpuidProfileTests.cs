using Propolis.Standalone.Config;
using Propolis.Standalone.Machine;
using CoreCpuid = Propolis.Core.Vmm.CpuidEntry;

namespace Propolis.Standalone.Tests.Machine;

public sealed class CpuidProfileTests
{
    // "AuthenticAMD" in EBX, EDX, ECX.
    private static readonly CoreCpuid[] Host =
    [
        new(0x0, 0, false, 0xD, 0x6874_7541, 0x444D_4163, 0x6974_6E65),
        new(0x1, 0, false, 0x00A2_0F12, 0x0080_0800, 0xFED8_3203, 0x178B_FBFF),
        new(0x7, 0, true, 1, 0x219C_97A9, 0x0040_069C, 0x10),
        new(0x7, 1, true, 0, 0, 0, 0),
        new(0xD, 0, true, 0x207, 0x340, 0x988, 0),
        new(0xD, 1, true, 0xF, 0x340, 0, 0),
    ];

    [Fact]
    public void ALeafWithoutSubleafReplacesEverySubleafAndAnswersAnyIndex()
    {
        var profile = new CpuidProfileConfig("p", CpuVendor.Amd, [new CpuidEntry(0x7, null, 0, 0x1, 0x2, 0x3)]);
        var table = CpuidProfile.Apply(Host, profile);
        var leaf7 = Assert.Single(table, e => e.Function == 0x7);
        Assert.Equal((0u, false, 0u, 1u, 2u, 3u), (leaf7.Index, leaf7.IndexSignificant, leaf7.Eax, leaf7.Ebx, leaf7.Ecx, leaf7.Edx));
        Assert.Equal(Host.Length - 1, table.Length);
    }

    [Fact]
    public void ASubleafReplacesOnlyThatSubleafAndLeavesTheRestToTheHost()
    {
        var profile = new CpuidProfileConfig("p", CpuVendor.Amd,
        [
            new CpuidEntry(0xD, 1, 0x1, 0, 0, 0),
            new CpuidEntry(0x8000_0001, null, 9, 9, 9, 9),
        ]);
        var table = CpuidProfile.Apply(Host, profile);
        Assert.Equal(0x207u, Assert.Single(table, e => e.Function == 0xD && e.Index == 0).Eax);
        var d1 = Assert.Single(table, e => e.Function == 0xD && e.Index == 1);
        Assert.Equal((true, 1u), (d1.IndexSignificant, d1.Eax));
        Assert.Single(table, e => e.Function == 0x8000_0001);
        Assert.Equal(0x1u, table[1].Function); // sorted by leaf, then subleaf
        Assert.Equal(0x00A2_0F12u, table[1].Eax);
    }

    [Fact]
    public void VendorIsReadFromLeafZero()
    {
        Assert.Equal(CpuVendor.Amd, CpuidProfile.VendorOf(Host));
        CoreCpuid[] intel = [new(0, 0, false, 0x20, 0x756E_6547, 0x6C65_746E, 0x4965_6E69)];
        Assert.Equal(CpuVendor.Intel, CpuidProfile.VendorOf(intel));
        Assert.Null(CpuidProfile.VendorOf([]));
    }
}

using Propolis.Core.Hw.Acpi;

namespace Propolis.Core.Tests.Hw.Acpi;

/// <summary>AML encodings against byte sequences derived by hand from ACPI 6.4 §20 (and what
/// iasl emits for the same ASL).</summary>
public sealed class AmlWriterTests
{
    [Theory]
    [InlineData(0, "01")]
    [InlineData(5, "06")]
    [InlineData(62, "3F")]          // the largest one-byte PkgLength: 63
    [InlineData(63, "4104")]        // 65 = 0x041: lead 0x40 | low nibble 1, then 0x04
    [InlineData(0x123, "4512")]     // 0x125
    [InlineData(4093, "4FFF")]      // 4095, the largest two-byte PkgLength
    [InlineData(4094, "810001")]    // 4097 = 0x01001
    [InlineData(0xFFFFC, "8FFFFF")] // 0xFFFFF, the largest three-byte PkgLength
    [InlineData(0xFFFFD, "C1000001")] // 0x100001: nibble 1, then 0x00, 0x00, 0x01
    public void PkgLength(int contentLength, string hex) =>
        Assert.Equal(hex, Convert.ToHexString(AmlWriter.EncodePkgLength(contentLength)));

    [Theory]
    [InlineData("_SB_", "5F53425F")]
    [InlineData("LPC", "4C50435F")]                  // padded with '_'
    [InlineData("\\", "5C00")]                       // root alone: RootChar NullName
    [InlineData("^LPC_", "5E4C50435F")]              // ParentPrefixChar
    [InlineData("\\_SB_.PCI0", "5C2E5F53425F50434930")] // DualNamePrefix
    [InlineData("\\_SB_.PCI0.LPC_.LNKA", "5C2F045F53425F504349304C50435F4C4E4B41")] // MultiNamePrefix, 4 segments
    public void NameStrings(string path, string hex) =>
        Assert.Equal(hex, Convert.ToHexString(new AmlWriter().NameString(path).ToArray()));

    [Theory]
    [InlineData("1ABC")]
    [InlineData("ABCDE")]
    [InlineData("ab")]
    [InlineData("A.")]
    public void BadNameSegsAreRefused(string path) =>
        Assert.Throws<ArgumentException>(() => new AmlWriter().NameString(path));

    [Theory]
    [InlineData(0UL, "00")]                 // ZeroOp
    [InlineData(1UL, "01")]                 // OneOp
    [InlineData(2UL, "0A02")]               // BytePrefix
    [InlineData(0xFFUL, "0AFF")]
    [InlineData(0x100UL, "0B0001")]         // WordPrefix
    [InlineData(0x0004FFFFUL, "0CFFFF0400")] // DWordPrefix (a _PRT address)
    [InlineData(0x1_0000_0000UL, "0E0000000001000000")] // QWordPrefix
    public void Integers(ulong value, string hex) =>
        Assert.Equal(hex, Convert.ToHexString(new AmlWriter().Integer(value).ToArray()));

    [Theory]
    [InlineData("PNP0A03", "0C41D00A03")] // EISAID("PNP0A03") = 0x030AD041
    [InlineData("PNP0501", "0C41D00501")]
    [InlineData("PNP0C0F", "0C41D00C0F")]
    [InlineData("PNP0B00", "0C41D00B00")]
    public void EisaIds(string id, string hex) =>
        Assert.Equal(hex, Convert.ToHexString(new AmlWriter().EisaId(id).ToArray()));

    [Fact]
    public void EisaIdValue() => Assert.Equal(0x030AD041u, AmlWriter.EncodeEisaId("PNP0A03"));

    [Fact]
    public void StringIsNulTerminated() =>
        Assert.Equal("0D414350493030303700", Convert.ToHexString(new AmlWriter().String("ACPI0007").ToArray()));

    [Fact]
    public void SleepStatePackage()
    {
        // Name (_S5, Package () { 0, 0, 0, 0 })
        var w = new AmlWriter().Name("_S5_", v => v.Package(e => e.Integer(0), e => e.Integer(0), e => e.Integer(0), e => e.Integer(0)));
        Assert.Equal("085F53355F" + "1206" + "04" + "00000000", Convert.ToHexString(w.ToArray()));
    }

    [Fact]
    public void EmptyMethodWithFlags()
    {
        // Method (_SRS, 1, NotSerialized) { }  and  Method (_CRS, 0, Serialized) { Return (One) }
        Assert.Equal("14065F53525301", Convert.ToHexString(new AmlWriter().Method("_SRS", 1, false, _ => { }).ToArray()));
        Assert.Equal("14085F4352530" + "8A401", Convert.ToHexString(new AmlWriter().Method("_CRS", 0, true, m => m.Return(r => r.Integer(1))).ToArray()));
    }

    [Fact]
    public void DeviceAndScopeNest()
    {
        // Scope (\_SB) { Device (PWRB) { Name (_UID, One) } }
        var w = new AmlWriter().Scope("\\_SB_", s => s.Device("PWRB", d => d.Name("_UID", v => v.Integer(1))));
        // Scope: 5 (\_SB_) + 13 (the Device) = 18 → 0x13; Device: 4 (PWRB) + 6 (the Name) = 10 → 0x0B.
        Assert.Equal("10" + "13" + "5C5F53425F" + "5B82" + "0B" + "50575242" + "085F55494401", Convert.ToHexString(w.ToArray()));
    }

    [Fact]
    public void LongBodyGetsATwoBytePkgLength()
    {
        var w = new AmlWriter().Buffer(new byte[100]);
        // Buffer: BufferSize 0x0A 0x64 (2 bytes) + 100 bytes = 102 content bytes → PkgLength 104 = 0x068 → 48 06.
        Assert.Equal("11" + "4806" + "0A64", Convert.ToHexString(w.ToArray())[..10]);
        Assert.Equal(1 + 2 + 2 + 100, w.Length);
    }
}

public sealed class ResourceTemplateTests
{
    private static string Hex(Action<ResourceTemplateWriter> build)
    {
        var rt = new ResourceTemplateWriter();
        build(rt);
        var bytes = rt.ToArray();
        byte sum = 0;
        foreach (var b in bytes)
        {
            sum += b;
        }
        Assert.Equal(0, sum); // the End Tag checksum makes the template sum to zero (§6.4.2.9)
        return Convert.ToHexString(bytes);
    }

    [Fact]
    public void SerialPortResources() =>
        // IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)  IRQNoFlags () {4}  EndTag
        Assert.Equal("4701F803F8030108" + "221000" + "790E", Hex(rt => rt.Io(0x3F8, 8).IrqNoFlags(4)));

    [Fact]
    public void WordBusNumber() =>
        // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
        Assert.Equal("880D00020C00" + "0000" + "0000" + "FF00" + "0000" + "0001", Hex(rt => rt.WordBusNumber(0, 0xFF))[..32]);

    [Fact]
    public void DWordIo() =>
        // DWordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0xD00, 0xFFFF, 0, 0xF300)
        Assert.Equal("871700010C03" + "00000000" + "000D0000" + "FFFF0000" + "00000000" + "00F30000",
            Hex(rt => rt.DWordIo(0xD00, 0xFFFF))[..52]);

    [Fact]
    public void DWordMemoryNonCacheable() =>
        // DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0, 0xC0000000, 0xDFFFFFFF, 0, 0x20000000)
        Assert.Equal("871700000C01" + "00000000" + "000000C0" + "FFFFFFDF" + "00000000" + "00000020",
            Hex(rt => rt.DWordMemory(0xC000_0000, 0xDFFF_FFFF, cacheable: false))[..52]);

    [Fact]
    public void QWordMemoryCacheable() =>
        Assert.Equal("8A2B00000C03" + "0000000000000000" + "0000000001000000" + "FFFFFFFF0F000000" + "0000000000000000" + "000000000F000000",
            Hex(rt => rt.QWordMemory(0x1_0000_0000, 0xF_FFFF_FFFF, cacheable: true))[..92]);

    [Fact]
    public void ExtendedInterruptLevelHighShared() =>
        // Interrupt (ResourceConsumer, Level, ActiveHigh, Shared) {5}
        Assert.Equal("89060009" + "01" + "05000000", Hex(rt => rt.Interrupt(true, false, true, 5))[..18]);

    [Fact]
    public void Memory32Fixed() =>
        Assert.Equal("860900" + "01" + "0000C0FE" + "00100000", Hex(rt => rt.Memory32Fixed(0xFEC0_0000, 0x1000))[..24]);
}

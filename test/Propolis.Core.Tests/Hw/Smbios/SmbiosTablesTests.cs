using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Hw.FwCfg;
using Propolis.Core.Hw.Smbios;

namespace Propolis.Core.Tests.Hw.Smbios;

public sealed class SmbiosTablesTests
{
    private static readonly SmbiosPlatform Platform = new()
    {
        BiosVersion = "v1",
        BiosReleaseDate = "01/02/2026",
        BiosRomSize = 2UL << 20,
        SystemSerialNumber = "vm-1",
        SystemUuid = new Guid("00112233-4455-6677-8899-aabbccddeeff"),
        CpuCount = 2,
        ProcessorManufacturer = "AMD",
        ProcessorId = 0x178B_FBFF_00A0_0F11,
        MemorySize = 512UL << 20,
    };

    /// <summary>Splits the structure table into structures (formatted area + strings + double NUL).</summary>
    private static List<byte[]> Structures(byte[] table)
    {
        var list = new List<byte[]>();
        var pos = 0;
        while (pos < table.Length)
        {
            var end = pos + table[pos + 1];
            while (!(table[end] == 0 && table[end + 1] == 0))
            {
                end++;
            }
            list.Add(table[pos..(end + 2)]);
            pos = end + 2;
        }
        Assert.Equal(table.Length, pos);
        return list;
    }

    private static string Hex(string ascii) => Convert.ToHexString(Encoding.ASCII.GetBytes(ascii));

    [Fact]
    public void StructuresInHandleOrderEndingWithType127()
    {
        var s = Structures(SmbiosTables.Build(Platform).Tables);
        Assert.Equal([(0, 0x0000), (1, 0x0100), (4, 0x0300), (16, 0x1600), (17, 0x1700), (32, 0x3200), (127, 0x7F00)],
            s.Select(x => ((int)x[0], (int)BinaryPrimitives.ReadUInt16LittleEndian(x.AsSpan(2)))));
        Assert.Equal([0x18, 0x1B, 0x2A, 0x17, 0x28, 0x0B, 0x04], s.Select(x => (int)x[1]));
    }

    [Fact]
    public void BiosInformation()
    {
        var t0 = Structures(SmbiosTables.Build(Platform).Tables)[0];
        Assert.Equal(
            "00180000" + "01" + "02" + "0000" + "03" + "1F" // vendor 1, version 2, segment 0, date 3, ROM 2 MiB = 64 KiB × 32
            + "0800000000000000" + "0118" + "FFFF" + "FFFF"   // not supported; ACPI; UEFI | VM; no release numbers, no EC
            + Hex("propolis-standalone") + "00" + Hex("v1") + "00" + Hex("01/02/2026") + "00" + "00",
            Convert.ToHexString(t0));
    }

    [Fact]
    public void SystemInformationWithUuidInSmbiosByteOrder()
    {
        var t1 = Structures(SmbiosTables.Build(Platform).Tables)[1];
        Assert.Equal(
            "011B0001" + "01" + "02" + "00" + "03"
            + "33221100" + "5544" + "7766" + "8899AABBCCDDEEFF" // §7.2.1: time_low, time_mid, time_hi little-endian
            + "06" + "00" + "00"                                 // power switch; no SKU; no family
            + Hex("propolis-standalone") + "00" + Hex("propolis-standalone VM") + "00" + Hex("vm-1") + "00" + "00",
            Convert.ToHexString(t1));
    }

    [Fact]
    public void ProcessorInformationCountsCores()
    {
        var t4 = Structures(SmbiosTables.Build(Platform).Tables)[2];
        Assert.Equal(
            "042A0003" + "01" + "03" + "02" + "02" + "110FA000FFFB8B17" + "00" // socket 1, central, unknown family, manufacturer 2, ID, no version
            + "00" + "0000" + "0000" + "0000" + "41" + "02" + "FFFF" + "FFFF" + "FFFF" + "000000"
            + "02" + "02" + "02" + "0C00" + "0200"                              // 2 cores, 2 enabled, 2 threads; 64-bit, multi-core
            + Hex("CPU 0") + "00" + Hex("AMD") + "00" + "00",
            Convert.ToHexString(t4));
    }

    [Fact]
    public void MemoryArrayAndDevice()
    {
        var s = Structures(SmbiosTables.Build(Platform).Tables);
        Assert.Equal("10170016" + "030302" + "00000800" + "FEFF" + "0100" + "0000000000000000" + "0000",
            Convert.ToHexString(s[3])); // 512 MiB = 0x80000 KiB
        Assert.Equal(
            "11280017" + "0016" + "FEFF" + "FFFF" + "FFFF" + "0002" + "02" + "00" + "01" + "00" + "02" + "0400" // 512 MiB, DIMM 0, type detail unknown
            + "0000" + "00000000" + "00" + "00000000" + "0000" + "000000000000"
            + Hex("DIMM 0") + "00" + "00",
            Convert.ToHexString(s[4]));
    }

    [Fact]
    public void LargeMemoryUsesTheExtendedFields()
    {
        var s = Structures(SmbiosTables.Build(Platform with { MemorySize = 4UL << 40 }).Tables);
        var t16 = s[3];
        Assert.Equal(0x8000_0000u, BinaryPrimitives.ReadUInt32LittleEndian(t16.AsSpan(7)));
        Assert.Equal(4UL << 40, BinaryPrimitives.ReadUInt64LittleEndian(t16.AsSpan(15)));
        var t17 = s[4];
        Assert.Equal(0x7FFF, BinaryPrimitives.ReadUInt16LittleEndian(t17.AsSpan(12)));
        Assert.Equal(4u << 20, BinaryPrimitives.ReadUInt32LittleEndian(t17.AsSpan(28))); // MiB
    }

    [Fact]
    public void BootInformationAndEndOfTable()
    {
        var s = Structures(SmbiosTables.Build(Platform).Tables);
        Assert.Equal("200B0032" + "000000000000" + "00" + "0000", Convert.ToHexString(s[5]));
        Assert.Equal("7F04007F" + "0000", Convert.ToHexString(s[6]));
    }

    [Fact]
    public void Anchor()
    {
        var t = SmbiosTables.Build(Platform);
        var a = t.Anchor;
        Assert.Equal(31, a.Length);
        var maxSize = Structures(t.Tables).Max(x => x.Length);
        Span<byte> u16 = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(u16, (ushort)maxSize);
        var maxHex = Convert.ToHexString(u16);
        BinaryPrimitives.WriteUInt16LittleEndian(u16, (ushort)t.Tables.Length);
        var lenHex = Convert.ToHexString(u16);
        Assert.Equal("5F534D5F" + Convert.ToHexString(a, 4, 1) + "1F" + "02" + "07" + maxHex + "00" + "0000000000"
            + "5F444D495F" + Convert.ToHexString(a, 21, 1) + lenHex + "00000000" + "0700" + "27",
            Convert.ToHexString(a));
        byte sum = 0;
        foreach (var b in a) sum += b;
        Assert.Equal(0, sum);
        sum = 0;
        foreach (var b in a.AsSpan(16)) sum += b;
        Assert.Equal(0, sum);
    }

    [Fact]
    public void AddsBothFilesToFwCfg()
    {
        var dir = SmbiosTables.Build(Platform).AddTo(new FwCfgBuilder()).BuildFileDirectory();
        var names = Enumerable.Range(0, 2).Select(i => Encoding.ASCII.GetString(dir, 4 + 64 * i + 8, 56).TrimEnd('\0')).ToArray();
        Assert.Equal(["etc/smbios/smbios-anchor", "etc/smbios/smbios-tables"], names);
    }

    [Fact]
    public void NonAsciiStringsAreRefused() =>
        Assert.Throws<ArgumentException>(() => SmbiosTables.Build(Platform with { SystemSerialNumber = "é" }));
}

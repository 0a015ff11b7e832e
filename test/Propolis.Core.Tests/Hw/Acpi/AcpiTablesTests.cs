using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Hw.Acpi;
using Propolis.Core.Hw.FwCfg;

namespace Propolis.Core.Tests.Hw.Acpi;

public sealed class AcpiTablesTests
{
    // The header fields after the checksum: OEM ID "PRPLIS", OEM table ID "PROPOLIS", OEM revision 1,
    // creator ID "PRPL", creator revision 1.
    private const string OemFields = "5052504C4953" + "50524F504F4C4953" + "01000000" + "5052504C" + "01000000";

    private static AcpiPlatform Platform(int cpus = 2) => new()
    {
        CpuCount = cpus,
        Ecam = new AddressWindow(0xE000_0000, 0x1000_0000),
        Pci32Window = new AddressWindow(0xC000_0000, 0x2000_0000),
        Pci64Window = new AddressWindow(0x1_4000_0000, 0x40_0000_0000),
        PciSlots = [new PciInterruptSlot(2, PciIntxPins.IntA), new PciInterruptSlot(4, PciIntxPins.IntA | PciIntxPins.IntB)],
        SerialPorts = [new AcpiSerialPort(0x3F8, 4), new AcpiSerialPort(0x2F8, 3)],
    };

    private static ReadOnlySpan<byte> Table(AcpiTables t, string signature)
    {
        var offset = t.Offsets[signature];
        var length = signature == "FACS" ? 64 : (int)BinaryPrimitives.ReadUInt32LittleEndian(t.Tables.AsSpan(offset + 4));
        return t.Tables.AsSpan(offset, length);
    }

    [Fact]
    public void TablesAreLaidOutFacsFirstAndEachHeaderIsPinned()
    {
        var t = AcpiTables.Build(Platform());
        Assert.Equal(["FACS", "DSDT", "FACP", "APIC", "MCFG", "XSDT"], t.Offsets.OrderBy(kv => kv.Value).Select(kv => kv.Key));
        Assert.Equal(0, t.Offsets["FACS"]);
        Assert.Equal(64, t.Offsets["DSDT"]);

        // Checksums are zero in the blob: the loader's ADD_CHECKSUM fills them after patching pointers.
        Assert.Equal("46414350" + "14010000" + "06" + "00" + OemFields, Convert.ToHexString(Table(t, "FACP")[..36]));
        Assert.Equal("41504943" + "80000000" + "04" + "00" + OemFields, Convert.ToHexString(Table(t, "APIC")[..36]));
        Assert.Equal("4D434647" + "3C000000" + "01" + "00" + OemFields, Convert.ToHexString(Table(t, "MCFG")[..36]));
        Assert.Equal("58534454" + "3C000000" + "01" + "00" + OemFields, Convert.ToHexString(Table(t, "XSDT")[..36]));
        var dsdt = Table(t, "DSDT");
        Assert.Equal("44534454", Convert.ToHexString(dsdt[..4]));
        Assert.Equal("02" + "00" + OemFields, Convert.ToHexString(dsdt[8..36]));
        Assert.Equal(t.Offsets["FACP"] - 64, dsdt.Length);
    }

    [Fact]
    public void Facs()
    {
        var t = AcpiTables.Build(Platform());
        Assert.Equal("46414353" + "40000000" + new string('0', 48) + "02" + new string('0', 62), Convert.ToHexString(Table(t, "FACS")));
    }

    [Fact]
    public void FadtFieldsThatMatter()
    {
        var t = AcpiTables.Build(Platform());
        var f = Table(t, "FACP");
        Assert.Equal((uint)t.Offsets["FACS"], BinaryPrimitives.ReadUInt32LittleEndian(f[Fadt.FirmwareCtrl..]));
        Assert.Equal((uint)t.Offsets["DSDT"], BinaryPrimitives.ReadUInt32LittleEndian(f[Fadt.Dsdt..]));
        Assert.Equal((ulong)t.Offsets["DSDT"], BinaryPrimitives.ReadUInt64LittleEndian(f[Fadt.XDsdt..]));
        // SCI_INT 9; SMI_CMD 0xB2, ACPI_ENABLE 0xF1, ACPI_DISABLE 0xF0 (the PIIX4 APM port sets SCI_EN).
        Assert.Equal("0900" + "B2000000" + "F1F0", Convert.ToHexString(f.Slice(Fadt.SciInt, 8)));
        // PM1a_EVT 0xB000, PM1b_EVT 0, PM1a_CNT 0xB004, PM1b_CNT 0, PM2_CNT 0, PM_TMR 0xB008, GPE0 0xAFE0, GPE1 0.
        Assert.Equal("00B00000" + "00000000" + "04B00000" + "00000000" + "00000000" + "08B00000" + "E0AF0000" + "00000000",
            Convert.ToHexString(f.Slice(Fadt.Pm1aEvtBlk, 32)));
        // PM1_EVT_LEN 4, PM1_CNT_LEN 2, PM2_CNT_LEN 0, PM_TMR_LEN 4, GPE0_BLK_LEN 4, GPE1 0.
        Assert.Equal("040200040400", Convert.ToHexString(f.Slice(Fadt.Pm1EvtLen, 6)));
        Assert.Equal("6500" + "E903", Convert.ToHexString(f.Slice(Fadt.PLvl2Lat, 4))); // 101, 1001: no C2, no C3
        Assert.Equal("0700", Convert.ToHexString(f.Slice(Fadt.IapcBootArch, 2)));     // legacy devices, 8042, no VGA
        // WBINVD | PROC_C1 | SLP_BUTTON | RTC_S4 | TMR_VAL_EXT | RESET_REG_SUP.
        Assert.Equal(0x0000_05A5u, BinaryPrimitives.ReadUInt32LittleEndian(f[Fadt.Flags..]));
        // RESET_REG: system I/O, 8 bits at 0xCF9; RESET_VALUE 6.
        Assert.Equal("01080000" + "F90C000000000000" + "06", Convert.ToHexString(f.Slice(Fadt.ResetReg, 13)));
        Assert.Equal("0000" + "00", Convert.ToHexString(f.Slice(Fadt.ArmBootArch, 3))); // FADT 6.0
        Assert.Equal("01200000" + "00B0000000000000", Convert.ToHexString(f.Slice(Fadt.XPm1aEvtBlk, 12)));
        Assert.Equal("01100000" + "04B0000000000000", Convert.ToHexString(f.Slice(Fadt.XPm1aCntBlk, 12)));
        Assert.Equal("01200000" + "08B0000000000000", Convert.ToHexString(f.Slice(Fadt.XPmTmrBlk, 12)));
        Assert.Equal("01200000" + "E0AF000000000000", Convert.ToHexString(f.Slice(Fadt.XGpe0Blk, 12)));
        Assert.Equal(new string('0', 24), Convert.ToHexString(f.Slice(Fadt.XGpe1Blk, 12)));
    }

    [Fact]
    public void SmiCommandPortZeroMeansAlwaysInAcpiMode()
    {
        var f = Table(AcpiTables.Build(Platform() with { SmiCommandPort = 0, Gpe0BlockLength = 0 }), "FACP");
        Assert.Equal("0900" + "00000000" + "0000", Convert.ToHexString(f.Slice(Fadt.SciInt, 8)));
        Assert.Equal("00000000", Convert.ToHexString(f.Slice(Fadt.Gpe0Blk, 4)));
        Assert.Equal(0, f[Fadt.Gpe0BlkLen]);
    }

    [Fact]
    public void PmTimer24BitClearsTmrValExt()
    {
        var t = AcpiTables.Build(Platform() with { PmTimer32Bit = false });
        Assert.Equal(0x0000_04A5u, BinaryPrimitives.ReadUInt32LittleEndian(Table(t, "FACP")[Fadt.Flags..]));
    }

    [Fact]
    public void MadtForTwoVcpus()
    {
        var t = AcpiTables.Build(Platform());
        Assert.Equal(
            "0000E0FE" + "01000000"                    // local APIC address, PCAT_COMPAT
            + "0008000001000000" + "0008010101000000"  // local APIC: UID 0/APIC 0, UID 1/APIC 1, enabled
            + "010C0000" + "0000C0FE" + "00000000"     // I/O APIC ID 0 at 0xFEC00000, GSI base 0
            + "020A0000" + "02000000" + "0000"         // IRQ0 → GSI2, conforming
            + "020A0005" + "05000000" + "0D00"         // IRQ5 (a PCI link IRQ) level, active-high
            + "020A0009" + "09000000" + "0D00"         // IRQ9 (SCI)
            + "020A000A" + "0A000000" + "0D00"         // IRQ10 (PCI link)
            + "020A000B" + "0B000000" + "0D00"         // IRQ11 (PCI link)
            + "0406FF000001",                          // NMI on LINT1 of every processor
            Convert.ToHexString(Table(t, "APIC")[36..]));
    }

    [Fact]
    public void McfgCoversEcam()
    {
        var t = AcpiTables.Build(Platform());
        Assert.Equal("0000000000000000" + "000000E000000000" + "0000" + "00" + "FF" + "00000000",
            Convert.ToHexString(Table(t, "MCFG")[36..]));
    }

    [Fact]
    public void NoEcamMeansNoMcfg()
    {
        var t = AcpiTables.Build(Platform() with { Ecam = default });
        Assert.False(t.Offsets.ContainsKey("MCFG"));
        Assert.Equal(36 + 16, Table(t, "XSDT").Length);
    }

    [Fact]
    public void Rsdp()
    {
        var t = AcpiTables.Build(Platform());
        var xsdt = (ulong)t.Offsets["XSDT"];
        Span<byte> x = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(x, xsdt);
        Assert.Equal("5253442050545220" + "00" + "5052504C4953" + "02" + "00000000" + "24000000" + Convert.ToHexString(x) + "00" + "000000",
            Convert.ToHexString(t.Rsdp));
    }

    private static (uint Type, string[] Files, uint[] Values) Decode(ReadOnlySpan<byte> c)
    {
        static string Name(ReadOnlySpan<byte> f) => Encoding.ASCII.GetString(f[..f.IndexOf((byte)0)]);
        var type = BinaryPrimitives.ReadUInt32LittleEndian(c);
        return type switch
        {
            TableLoader.CommandAllocate => (type, [Name(c.Slice(4, 56))], [BinaryPrimitives.ReadUInt32LittleEndian(c[60..]), c[64]]),
            TableLoader.CommandAddPointer => (type, [Name(c.Slice(4, 56)), Name(c.Slice(60, 56))], [BinaryPrimitives.ReadUInt32LittleEndian(c[116..]), c[120]]),
            TableLoader.CommandAddChecksum => (type, [Name(c.Slice(4, 56))],
                [BinaryPrimitives.ReadUInt32LittleEndian(c[60..]), BinaryPrimitives.ReadUInt32LittleEndian(c[64..]), BinaryPrimitives.ReadUInt32LittleEndian(c[68..])]),
            _ => throw new Xunit.Sdk.XunitException($"unknown command {type}"),
        };
    }

    [Fact]
    public void TableLoaderScript()
    {
        var t = AcpiTables.Build(Platform());
        var script = t.TableLoader;
        Assert.Equal(0, script.Length % 128);
        // The first command, byte for byte: ALLOCATE "etc/acpi/tables", align 64, zone HIGH.
        Assert.Equal("01000000" + Convert.ToHexString("etc/acpi/tables"u8) + new string('0', 2 * (56 - 15)) + "40000000" + "01" + new string('0', 2 * 63),
            Convert.ToHexString(script, 0, 128));

        int o(string s) => t.Offsets[s];
        uint len(string s) => (uint)Table(t, s).Length;
        const string T = "etc/acpi/tables", R = "etc/acpi/rsdp";
        var expected = new (uint, string[], uint[])[]
        {
            (1, [T], [64, 1]),
            (1, [R], [16, 2]),
            (3, [T], [(uint)o("DSDT") + 9, (uint)o("DSDT"), len("DSDT")]),
            (2, [T, T], [(uint)o("FACP") + 36, 4]),   // FIRMWARE_CTRL → FACS
            (2, [T, T], [(uint)o("FACP") + 40, 4]),   // DSDT
            (2, [T, T], [(uint)o("FACP") + 140, 8]),  // X_DSDT
            (3, [T], [(uint)o("FACP") + 9, (uint)o("FACP"), 276]),
            (3, [T], [(uint)o("APIC") + 9, (uint)o("APIC"), len("APIC")]),
            (3, [T], [(uint)o("MCFG") + 9, (uint)o("MCFG"), 60]),
            (2, [T, T], [(uint)o("XSDT") + 36, 8]),
            (2, [T, T], [(uint)o("XSDT") + 44, 8]),
            (2, [T, T], [(uint)o("XSDT") + 52, 8]),
            (3, [T], [(uint)o("XSDT") + 9, (uint)o("XSDT"), 60]),
            (2, [R, T], [24, 8]),
            (3, [R], [8, 0, 20]),
            (3, [R], [32, 0, 36]),
        };
        Assert.Equal(expected.Length, script.Length / 128);
        for (int i = 0; i < expected.Length; i++)
        {
            var (type, files, values) = Decode(script.AsSpan(i * 128, 128));
            Assert.Equal(expected[i].Item1, type);
            Assert.Equal(expected[i].Item2, files);
            Assert.Equal(expected[i].Item3, values);
        }
    }

    /// <summary>Runs the script as OVMF's QemuFwCfgAcpi.c does (ADD_POINTER adds the source's
    /// address; ADD_CHECKSUM stores CalculateCheckSum8 of the range, its own byte included).</summary>
    private static Dictionary<string, (ulong Address, byte[] Bytes)> RunLoader(AcpiTables t, ulong tablesAt, ulong rsdpAt)
    {
        var files = new Dictionary<string, (ulong, byte[])>
        {
            [AcpiTables.TablesFileName] = (tablesAt, (byte[])t.Tables.Clone()),
            [AcpiTables.RsdpFileName] = (rsdpAt, (byte[])t.Rsdp.Clone()),
        };
        for (int i = 0; i < t.TableLoader.Length; i += 128)
        {
            var (type, names, v) = Decode(t.TableLoader.AsSpan(i, 128));
            switch (type)
            {
                case TableLoader.CommandAllocate:
                    Assert.Equal(0UL, files[names[0]].Item1 % v[0]);
                    break;
                case TableLoader.CommandAddPointer:
                    var dest = files[names[0]].Item2.AsSpan((int)v[0], (int)v[1]);
                    var value = v[1] == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(dest) : BinaryPrimitives.ReadUInt32LittleEndian(dest);
                    value += files[names[1]].Item1;
                    if (v[1] == 8) BinaryPrimitives.WriteUInt64LittleEndian(dest, value);
                    else BinaryPrimitives.WriteUInt32LittleEndian(dest, checked((uint)value));
                    break;
                case TableLoader.CommandAddChecksum:
                    var blob = files[names[0]].Item2;
                    blob[v[0]] = SdtHeader.ChecksumOf(blob.AsSpan((int)v[1], (int)v[2]));
                    break;
            }
        }
        return files;
    }

    private static byte Sum(ReadOnlySpan<byte> s)
    {
        byte sum = 0;
        foreach (var b in s) sum += b;
        return sum;
    }

    [Fact]
    public void AfterTheLoaderRunsPointersResolveAndEveryChecksumSumsToZero()
    {
        var t = AcpiTables.Build(Platform(cpus: 4));
        const ulong tablesAt = 0x7FF0_0000, rsdpAt = 0xF_5A40;
        var files = RunLoader(t, tablesAt, rsdpAt);
        var mem = files[AcpiTables.TablesFileName].Bytes;
        var rsdp = files[AcpiTables.RsdpFileName].Bytes;

        Assert.Equal(0, Sum(rsdp.AsSpan(0, 20)));
        Assert.Equal(0, Sum(rsdp));
        string SignatureAt(ulong address) => Encoding.ASCII.GetString(mem, (int)(address - tablesAt), 4);
        int LengthAt(ulong address) => (int)BinaryPrimitives.ReadUInt32LittleEndian(mem.AsSpan((int)(address - tablesAt) + 4));

        var xsdt = BinaryPrimitives.ReadUInt64LittleEndian(rsdp.AsSpan(24));
        Assert.Equal("XSDT", SignatureAt(xsdt));
        var signatures = new List<string>();
        for (int i = 0; i < (LengthAt(xsdt) - 36) / 8; i++)
        {
            signatures.Add(SignatureAt(BinaryPrimitives.ReadUInt64LittleEndian(mem.AsSpan((int)(xsdt - tablesAt) + 36 + 8 * i))));
        }
        Assert.Equal(["FACP", "APIC", "MCFG"], signatures);

        var fadt = (int)((ulong)t.Offsets["FACP"]);
        var facsAddress = BinaryPrimitives.ReadUInt32LittleEndian(mem.AsSpan(fadt + Fadt.FirmwareCtrl));
        Assert.Equal("FACS", SignatureAt(facsAddress));
        Assert.Equal(0u, facsAddress % 64); // §5.2.10: 64-byte aligned
        Assert.Equal("DSDT", SignatureAt(BinaryPrimitives.ReadUInt32LittleEndian(mem.AsSpan(fadt + Fadt.Dsdt))));
        Assert.Equal("DSDT", SignatureAt(BinaryPrimitives.ReadUInt64LittleEndian(mem.AsSpan(fadt + Fadt.XDsdt))));

        foreach (var sig in new[] { "DSDT", "FACP", "APIC", "MCFG", "XSDT" })
        {
            var offset = t.Offsets[sig];
            Assert.Equal(0, Sum(mem.AsSpan(offset, LengthAt(tablesAt + (ulong)offset))));
        }
    }

    [Fact]
    public void AddsTheThreeFilesToFwCfg()
    {
        var t = AcpiTables.Build(Platform());
        var dir = t.AddTo(new FwCfgBuilder()).BuildFileDirectory();
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32BigEndian(dir));
        var names = Enumerable.Range(0, 3).Select(i => Encoding.ASCII.GetString(dir, 4 + 64 * i + 8, 56).TrimEnd('\0')).ToArray();
        Assert.Equal(["etc/acpi/rsdp", "etc/acpi/tables", "etc/table-loader"], names);
    }

    [Fact]
    public void InvalidPlatformsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(Platform(cpus: 0)));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(Platform() with { PciLinkIrqs = [] }));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(Platform() with { PciLinkIrqs = [16] }));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(Platform() with { Ecam = new AddressWindow(0xE000_0000, 0x1234) }));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(Platform() with { PciSlots = [new(3, PciIntxPins.IntA), new(3, PciIntxPins.IntB)] }));
    }
}

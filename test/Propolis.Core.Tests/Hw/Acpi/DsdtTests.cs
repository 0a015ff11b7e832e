using System.Text;
using Propolis.Core.Hw.Acpi;

namespace Propolis.Core.Tests.Hw.Acpi;

/// <summary>A structural AML reader for the subset the DSDT uses: every PkgLength must end
/// exactly where its object ends, packages must hold the elements they announce, buffers the
/// bytes they announce.</summary>
internal sealed class AmlReader
{
    private readonly byte[] _aml;
    private int _pos;

    public List<string> Devices { get; } = new();

    /// <summary>Each Name's full path and the bytes of its value.</summary>
    public Dictionary<string, byte[]> Names { get; } = new();

    public List<string> Methods { get; } = new();

    /// <summary>Offset just past each Buffer's last byte.</summary>
    public List<int> BufferEnds { get; } = new();

    public AmlReader(byte[] aml) => _aml = aml;

    public void ReadAll()
    {
        TermList("\\", _aml.Length);
        Assert.Equal(_aml.Length, _pos);
    }

    private int PkgEnd()
    {
        var start = _pos;
        var lead = _aml[_pos++];
        var extra = lead >> 6;
        var length = extra == 0 ? lead & 0x3F : lead & 0x0F;
        for (int i = 0; i < extra; i++)
        {
            length |= _aml[_pos++] << (4 + 8 * i);
        }
        return start + length;
    }

    private string NameString()
    {
        var sb = new StringBuilder();
        while (_aml[_pos] is (byte)'\\' or (byte)'^')
        {
            sb.Append((char)_aml[_pos++]);
        }
        int segs;
        if (_aml[_pos] == 0x00) { _pos++; segs = 0; }
        else if (_aml[_pos] == 0x2E) { _pos++; segs = 2; }
        else if (_aml[_pos] == 0x2F) { _pos++; segs = _aml[_pos++]; }
        else segs = 1;
        for (int i = 0; i < segs; i++)
        {
            if (i > 0) sb.Append('.');
            sb.Append(Encoding.ASCII.GetString(_aml, _pos, 4));
            _pos += 4;
        }
        return sb.ToString();
    }

    private static string Join(string scope, string name) =>
        name.StartsWith('\\') ? name : scope == "\\" ? "\\" + name : scope + "." + name;

    private void TermList(string scope, int end)
    {
        while (_pos < end)
        {
            var op = _aml[_pos++];
            switch (op)
            {
                case 0x08: // Name
                    var path = Join(scope, NameString());
                    var start = _pos;
                    DataObject();
                    Names[path] = _aml[start.._pos];
                    break;
                case 0x10: // Scope
                {
                    var e = PkgEnd();
                    var s = Join(scope, NameString());
                    TermList(s, e);
                    Assert.Equal(e, _pos);
                    break;
                }
                case 0x5B when _aml[_pos] == 0x82: // Device
                {
                    _pos++;
                    var e = PkgEnd();
                    var s = Join(scope, NameString());
                    Devices.Add(s);
                    TermList(s, e);
                    Assert.Equal(e, _pos);
                    break;
                }
                case 0x14: // Method: the body is code, checked by the iasl golden; skipped here
                {
                    var e = PkgEnd();
                    Methods.Add(Join(scope, NameString()));
                    Assert.True(e <= end);
                    _pos = e;
                    break;
                }
                case 0x5B when _aml[_pos] == 0x80: // OperationRegion: name, space, offset, length
                    _pos++;
                    Names[Join(scope, NameString())] = [];
                    _pos++;
                    DataObject();
                    DataObject();
                    break;
                case 0x5B when _aml[_pos] == 0x81: // Field
                {
                    _pos++;
                    var e = PkgEnd();
                    Assert.True(e <= end);
                    _pos = e;
                    break;
                }
                case 0xA4:
                    DataObject();
                    break;
                default:
                    throw new Xunit.Sdk.XunitException($"unexpected AML opcode 0x{op:X2} at {_pos - 1}");
            }
        }
        Assert.Equal(end, _pos);
    }

    private void DataObject()
    {
        var op = _aml[_pos];
        if (op is (byte)'\\' or (byte)'^' or (byte)'_' or 0x2E or 0x2F || op is >= (byte)'A' and <= (byte)'Z')
        {
            NameString();
            return;
        }
        _pos++;
        switch (op)
        {
            case 0x00 or 0x01 or 0xFF: break;
            case 0x0A: _pos += 1; break;
            case 0x0B: _pos += 2; break;
            case 0x0C: _pos += 4; break;
            case 0x0E: _pos += 8; break;
            case 0x0D:
                while (_aml[_pos++] != 0) { }
                break;
            case 0x12: // Package
            {
                var e = PkgEnd();
                int count = _aml[_pos++];
                for (int i = 0; i < count; i++)
                {
                    DataObject();
                }
                Assert.Equal(e, _pos);
                break;
            }
            case 0x11: // Buffer
            {
                var e = PkgEnd();
                var sizeStart = _pos;
                DataObject();
                var size = _aml[sizeStart] switch
                {
                    0x00 => 0,
                    0x01 => 1,
                    0x0A => _aml[sizeStart + 1],
                    0x0B => BitConverter.ToUInt16(_aml, sizeStart + 1),
                    _ => throw new Xunit.Sdk.XunitException("unexpected BufferSize encoding"),
                };
                Assert.Equal(e, _pos + size);
                BufferEnds.Add(e);
                _pos = e;
                break;
            }
            default:
                throw new Xunit.Sdk.XunitException($"unexpected AML data object 0x{op:X2} at {_pos - 1}");
        }
    }
}

public sealed class DsdtTests
{
    private static readonly AcpiPlatform Platform = new()
    {
        CpuCount = 2,
        Ecam = new AddressWindow(0xE000_0000, 0x1000_0000),
        Pci32Window = new AddressWindow(0xC000_0000, 0x2000_0000),
        Pci64Window = new AddressWindow(0x1_4000_0000, 0x40_0000_0000),
        PciSlots = [new PciInterruptSlot(4, PciIntxPins.IntA | PciIntxPins.IntB), new PciInterruptSlot(2, PciIntxPins.IntA)],
        SerialPorts = [new AcpiSerialPort(0x3F8, 4), new AcpiSerialPort(0x2F8, 3)],
    };

    private static AmlReader Read(AcpiPlatform p)
    {
        var r = new AmlReader(Dsdt.BuildDefinitionBlock(p));
        r.ReadAll();
        return r;
    }

    [Fact]
    public void NamespaceIsWellFormedAndHasTheDevices()
    {
        var r = Read(Platform);
        Assert.Equal(
        [
            "\\_SB_.C000", "\\_SB_.C001", "\\_SB_.PCI0", "\\_SB_.PCI0.LPC_",
            "\\_SB_.PCI0.LPC_.LNKA", "\\_SB_.PCI0.LPC_.LNKB", "\\_SB_.PCI0.LPC_.LNKC", "\\_SB_.PCI0.LPC_.LNKD",
            "\\_SB_.PCI0.LPC_.RTC_", "\\_SB_.PCI0.LPC_.KBD_", "\\_SB_.PCI0.LPC_.COM1", "\\_SB_.PCI0.LPC_.COM2",
            "\\_SB_.MRES",
        ], r.Devices);
        Assert.Contains("\\_SB_.PCI0.LPC_.LNKA._SRS", r.Methods);
        Assert.Contains("\\_SB_.PCI0.LPC_.LNKD._DIS", r.Methods);
    }

    [Fact]
    public void SleepStates()
    {
        var r = Read(Platform);
        Assert.Equal("1207040A05000000", Convert.ToHexString(r.Names["\\_S0_"]));
        Assert.Equal("120604" + "00000000", Convert.ToHexString(r.Names["\\_S5_"]));
    }

    [Fact]
    public void RootBridgeIdentity()
    {
        var r = Read(Platform);
        Assert.Equal("0C41D00A03", Convert.ToHexString(r.Names["\\_SB_.PCI0._HID"]));
        Assert.Equal("00", Convert.ToHexString(r.Names["\\_SB_.PCI0._ADR"]));
        Assert.Equal("00", Convert.ToHexString(r.Names["\\_SB_.PCI0._BBN"]));
        Assert.Equal("0C00000100", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_._ADR"]));
        Assert.Equal("0D414350493030303700", Convert.ToHexString(r.Names["\\_SB_.C001._HID"]));
        Assert.Equal("01", Convert.ToHexString(r.Names["\\_SB_.C001._UID"]));
    }

    [Fact]
    public void RootBridgeResources()
    {
        var crs = Read(Platform).Names["\\_SB_.PCI0._CRS"];
        var expected =
            "880D00020C00" + "0000" + "0000" + "FF00" + "0000" + "0001"                                          // buses 0–255
            + "4701F80CF80C0108"                                                                                 // 0xCF8, 8 ports
            + "871700010C03" + "00000000" + "00000000" + "F70C0000" + "00000000" + "F80C0000"                   // I/O 0–0xCF7
            + "871700010C03" + "00000000" + "000D0000" + "FFFF0000" + "00000000" + "00F30000"                   // I/O 0xD00–0xFFFF
            + "871700000C03" + "00000000" + "00000A00" + "FFFF0B00" + "00000000" + "00000200"                   // VGA window
            + "871700000C01" + "00000000" + "000000C0" + "FFFFFFDF" + "00000000" + "00000020"                   // 32-bit window
            + "8A2B00000C03" + "0000000000000000" + "0000004001000000" + "FFFFFF3F41000000" + "0000000000000000" + "0000000040000000"; // 64-bit
        var descriptors = expected.Length / 2;
        // Buffer: BufferOp, a two-byte PkgLength, BufferSize 176 as a ByteConst, the descriptors, the End Tag.
        Assert.Equal(174, descriptors);
        Assert.Equal(1 + 2 + 2 + descriptors + 2, crs.Length);
        Assert.Equal("11" + "440B" + "0AB0", Convert.ToHexString(crs, 0, 5)); // PkgLength 2 + 2 + 176 = 180 = 0xB4: 44 0B
        Assert.Equal(expected, Convert.ToHexString(crs, 5, descriptors));
        Assert.Equal("79", Convert.ToHexString(crs, 5 + descriptors, 1));
        byte sum = 0;
        foreach (var b in crs.AsSpan(5)) sum += b;
        Assert.Equal(0, sum);
    }

    [Fact]
    public void RoutingTableFollowsThePiixSwizzle()
    {
        var prt = Convert.ToHexString(Read(Platform).Names["\\_SB_.PCI0._PRT"]);
        const string lpc = "5C2F045F53425F504349304C50435F"; // \_SB_.PCI0.LPC_.
        // Three entries, slots in ascending order: 2 INTA → LNKB, 4 INTA → LNKD, 4 INTB → LNKA.
        var entries =
            "121C04" + "0CFFFF0200" + "00" + lpc + "4C4E4B42" + "00"
            + "121C04" + "0CFFFF0400" + "00" + lpc + "4C4E4B44" + "00"
            + "121C04" + "0CFFFF0400" + "01" + lpc + "4C4E4B41" + "00";
        Assert.Equal("12" + "4A05" + "03" + entries, prt); // 1 + 3 × 29 = 88 content bytes → PkgLength 90 = 4A 05
    }

    [Theory]
    [InlineData(0, 0, 3)]
    [InlineData(1, 0, 0)]
    [InlineData(2, 0, 1)]
    [InlineData(2, 3, 0)]
    [InlineData(31, 1, 3)]
    public void LinkSwizzle(byte device, int pin, int link) => Assert.Equal(link, Dsdt.LinkFor(device, pin));

    [Fact]
    public void LinkDevicesWorkOnThePirqRegisters()
    {
        var r = Read(Platform);
        Assert.Equal("0C41D00C0F", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.LNKC._HID"]));
        Assert.Equal("0A03", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.LNKC._UID"]));
        foreach (var m in new[] { "_STA", "_DIS", "_CRS", "_PRS", "_SRS" })
        {
            Assert.Contains("\\_SB_.PCI0.LPC_.LNKC." + m, r.Methods);
        }
        Assert.Contains("\\_SB_.PCI0.LPC_.PRR0", r.Names.Keys);
        Assert.Contains("\\_SB_.PCI0.LPC_.PSTA", r.Methods);
        Assert.Contains("\\_SB_.PCI0.LPC_.PCRS", r.Methods);
        // Interrupt (ResourceConsumer, Level, ActiveHigh, Shared) {5, 10, 11}, End Tag.
        Assert.Equal("11" + "16" + "0A13" + "890E000903" + "05000000" + "0A000000" + "0B000000" + "79",
            Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.PPRS"])[..44]);
        var aml = Convert.ToHexString(Dsdt.BuildDefinitionBlock(Platform));
        // OperationRegion (PRR0, PCI_Config, 0x60, 0x04)
        Assert.Contains("5B80" + "50525230" + "02" + "0A60" + "0A04", aml);
        // Field (PRR0, AnyAcc, NoLock, Preserve) { PIRA, 8, PIRB, 8, PIRC, 8, PIRD, 8 }: 25 content bytes
        Assert.Contains("5B81" + "1A" + "50525230" + "00" + "5049524108" + "5049524208" + "5049524308" + "5049524408", aml);
        // LNKC: Method (_DIS) { Or (PIRC, 0x80, PIRC) }
        Assert.Contains("14" + "11" + "5F444953" + "00" + "7D" + "50495243" + "0A80" + "50495243", aml);
        // LNKC: Method (_SRS, 1) { CreateDWordField (Arg0, 0x05, IRQW)  Store (IRQW, PIRC) }
        Assert.Contains("14" + "17" + "5F535253" + "01" + "8A" + "68" + "0A05" + "49525157" + "70" + "49525157" + "50495243", aml);
    }

    [Fact]
    public void SerialPortsKeyboardAndRtc()
    {
        var r = Read(Platform);
        Assert.Equal("0C41D00501", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.COM1._HID"]));
        Assert.Equal("01", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.COM1._UID"]));
        Assert.Equal("11100A0D" + "4701F803F8030108" + "221000" + "790E", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.COM1._CRS"]));
        Assert.Equal("4701F802F8020108" + "220800", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.COM2._CRS"])[8..30]);
        Assert.Equal("0C41D00303", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.KBD_._HID"]));
        Assert.Equal("47016000600001014701640064000101220200", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.KBD_._CRS"])[8..46]);
        Assert.Equal("0C41D00B00", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.RTC_._HID"]));
        Assert.Equal("470170007000010222000" + "1", Convert.ToHexString(r.Names["\\_SB_.PCI0.LPC_.RTC_._CRS"])[8..30]);
    }

    [Fact]
    public void MotherboardResourcesReserveEcamAndThePmBlock()
    {
        var r = Read(Platform);
        Assert.Equal("0C41D00C02", Convert.ToHexString(r.Names["\\_SB_.MRES._HID"]));
        // Memory32Fixed (ReadWrite, 0xE0000000, 0x10000000)  IO (Decode16, 0xB000, 0xB000, 0x01, 0x40)
        Assert.Equal("86090001" + "000000E0" + "00000010" + "470100B000B00140", Convert.ToHexString(r.Names["\\_SB_.MRES._CRS"])[8..48]);
        Assert.DoesNotContain("\\_SB_.MRES", Read(Platform with { Ecam = default }).Devices);
    }

    [Fact]
    public void AbsentDevicesAreNotDescribed()
    {
        var r = Read(Platform with { SerialPorts = [], Ps2Keyboard = false, Rtc = false, Pci64Window = default, PciSlots = [] });
        Assert.DoesNotContain(r.Devices, d => d.EndsWith("COM1") || d.EndsWith("KBD_") || d.EndsWith("RTC_"));
        Assert.Equal("120200", Convert.ToHexString(r.Names["\\_SB_.PCI0._PRT"])); // Package () { }
        Assert.DoesNotContain("8A2B00", Convert.ToHexString(r.Names["\\_SB_.PCI0._CRS"]));
    }

    [Fact]
    public void PvPanicIsDescribedAsQemu0001ExactlyAsIaslCompilesIt()
    {
        Assert.DoesNotContain(Read(Platform).Devices, d => d.EndsWith("PEVT"));
        var r = Read(Platform with { PvPanicPort = 0x505 });
        Assert.Contains("\\_SB_.PCI0.LPC_.PEVT", r.Devices);
        // iasl 20200925 for: Device (PEVT) { Name (_HID, "QEMU0001")
        //   Name (_CRS, ResourceTemplate () { IO (Decode16, 0x0505, 0x0505, 0x01, 0x01) }) }
        const string Iasl = "5B822750455654085F4849440D51454D553030303100085F435253110D0A0A47010505050501017900";
        var hex = Convert.ToHexString(Dsdt.BuildDefinitionBlock(Platform with { PvPanicPort = 0x505 }));
        var at = hex.IndexOf("5045565408", StringComparison.Ordinal) - 6; // ExtOp Device, PkgLength, then the name
        // All but the End Tag's checksum byte, which iasl leaves 0 ("treat as summing to zero",
        // ACPI 6.5 §6.4.2.9) and our resource templates compute.
        Assert.Equal(Iasl[..^2], hex.Substring(at, Iasl.Length - 2));
        var template = Convert.FromHexString(hex.Substring(at + 62, 20)); // the buffer's 10 bytes
        Assert.Equal(0, template.Aggregate(0, (a, b) => (a + b) & 0xFF));
    }

    [Fact]
    public void ManyVcpusNeedLongerPackageLengthsAndStayWellFormed()
    {
        var p = Platform with
        {
            CpuCount = 200,
            PciSlots = Enumerable.Range(0, 32).Select(d => new PciInterruptSlot((byte)d, PciIntxPins.All)).ToArray(),
        };
        var r = Read(p);
        Assert.Equal(200 + 2 + 4 + 2 + 2 + 1, r.Devices.Count); // CPUs, PCI0 and LPC, links, RTC and KBD, COM1 and COM2, MRES
        Assert.Contains("\\_SB_.C0C7", r.Devices);
    }
}

public sealed class DsdtGoldenTests
{
    internal static readonly AcpiPlatform Platform = new()
    {
        CpuCount = 2,
        Ecam = new AddressWindow(0xE000_0000, 0x1000_0000),
        Pci32Window = new AddressWindow(0xC000_0000, 0x2000_0000),
        Pci64Window = new AddressWindow(0x1_4000_0000, 0x40_0000_0000),
        PciSlots = [new PciInterruptSlot(2, PciIntxPins.IntA), new PciInterruptSlot(4, PciIntxPins.All)],
        SerialPorts = [new AcpiSerialPort(0x3F8, 4), new AcpiSerialPort(0x2F8, 3)],
    };

    [Fact]
    public void MatchesIaslByteForByteApartFromCreatorAndChecksums()
    {
        var ours = Dsdt.Build(Platform);
        var iasl = Convert.FromHexString(DsdtGolden.IaslHex);
        Assert.Equal(iasl.Length, ours.Length);

        var normalized = (byte[])ours.Clone();
        // Header: iasl stamps its own creator ID and revision and a checksum.
        iasl.AsSpan(SdtHeader.CreatorId, 8).CopyTo(normalized.AsSpan(SdtHeader.CreatorId));
        normalized[SdtHeader.Checksum] = iasl[SdtHeader.Checksum];
        // iasl leaves every End Tag checksum zero ("treated as if the checksum operation
        // succeeded", ACPI 6.4 §6.4.2.9); ours make each template sum to zero.
        var reader = new AmlReader(ours[SdtHeader.Size..]);
        reader.ReadAll();
        var endTags = 0;
        foreach (var end in reader.BufferEnds)
        {
            var at = SdtHeader.Size + end;
            if (ours[at - 2] == 0x79)
            {
                normalized[at - 1] = 0;
                endTags++;
            }
        }
        // PCRS's BUF0 template lives in a method body, which the reader skips: find it by its bytes.
        var buf0 = Convert.FromHexString("890600090100000000" + "79");
        var at0 = ours.AsSpan().IndexOf(buf0);
        Assert.True(at0 > 0);
        normalized[at0 + buf0.Length] = 0;
        Assert.Equal(7, endTags); // root bridge, PPRS, RTC, KBD, COM1, COM2, MRES (+ BUF0 above)
        Assert.Equal(DsdtGolden.IaslHex, Convert.ToHexString(normalized));
        Assert.Equal(0, Sum(iasl));
        Assert.Equal("INTL", Encoding.ASCII.GetString(iasl, SdtHeader.CreatorId, 4));
    }

    private static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (var b in bytes) sum += b;
        return sum;
    }
}

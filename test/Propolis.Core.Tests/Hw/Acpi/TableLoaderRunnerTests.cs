using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Hw.Acpi;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Hw.Acpi;

public sealed class TableLoaderRunnerTests
{
    private static AcpiPlatform Platform() => new()
    {
        CpuCount = 2,
        Ecam = new AddressWindow(0xE000_0000, 0x1000_0000),
        Pci32Window = new AddressWindow(0xC000_0000, 0x2000_0000),
        PciSlots = [new PciInterruptSlot(4, PciIntxPins.IntA)],
        SerialPorts = [new AcpiSerialPort(0x3F8, 4)],
    };

    private static Dictionary<string, byte[]> Files(AcpiTables t) => new()
    {
        [AcpiTables.TablesFileName] = t.Tables,
        [AcpiTables.RsdpFileName] = t.Rsdp,
    };

    private static int Sum(ReadOnlySpan<byte> bytes)
    {
        byte s = 0;
        foreach (var b in bytes)
            s += b;
        return s;
    }

    [Fact]
    public void PlacesTheTablesWhereAsked_AndAKernelScanningTheBiosAreaFindsAValidRsdpPointingAtThem()
    {
        var t = AcpiTables.Build(Platform());
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x20_0000)]));
        var asked = new List<(string, uint, TableLoaderZone)>();
        var placed = TableLoaderRunner.Run(t.TableLoader, Files(t), (file, align, zone, size) =>
        {
            asked.Add((file, align, zone));
            return zone == TableLoaderZone.FSeg ? 0xF_0000UL : 0xF_1000UL;
        }, mem);

        Assert.Equal([(AcpiTables.TablesFileName, 64u, TableLoaderZone.High), (AcpiTables.RsdpFileName, 16u, TableLoaderZone.FSeg)], asked);
        Assert.Equal(0xF_0000UL, placed[AcpiTables.RsdpFileName]);

        // What Linux does (acpi_find_root_pointer): scan 0xE0000–0xFFFFF on 16-byte boundaries.
        var bios = new byte[0x2_0000];
        Assert.True(mem.TryRead(0xE_0000, bios));
        var at = -1;
        for (var i = 0; i < bios.Length; i += 16)
        {
            if (Encoding.ASCII.GetString(bios, i, 8) == "RSD PTR " && Sum(bios.AsSpan(i, 20)) == 0)
            {
                at = i;
                break;
            }
        }
        Assert.Equal(0x1_0000, at);
        var rsdp = bios.AsSpan(at, 36);
        Assert.Equal(0, Sum(rsdp));
        var xsdt = BinaryPrimitives.ReadUInt64LittleEndian(rsdp[24..]);
        Assert.Equal(0xF_1000UL + (ulong)t.Offsets["XSDT"], xsdt);

        // Every table the XSDT names is in memory with a zero checksum, and the FADT reaches the DSDT and FACS.
        var header = new byte[36];
        Assert.True(mem.TryRead(xsdt, header));
        var length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
        var x = new byte[length];
        Assert.True(mem.TryRead(xsdt, x));
        Assert.Equal(0, Sum(x));
        var names = new List<string>();
        for (var i = 36; i < length; i += 8)
        {
            var address = BinaryPrimitives.ReadUInt64LittleEndian(x.AsSpan(i));
            Assert.True(mem.TryRead(address, header));
            var table = new byte[BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4))];
            Assert.True(mem.TryRead(address, table));
            Assert.Equal(0, Sum(table));
            names.Add(Encoding.ASCII.GetString(table, 0, 4));
            if (names[^1] == "FACP")
            {
                Assert.Equal(0xF_1000u + (uint)t.Offsets["FACS"], BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(Fadt.FirmwareCtrl)));
                Assert.Equal(0xF_1000UL + (ulong)t.Offsets["DSDT"], BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(Fadt.XDsdt)));
            }
        }
        Assert.Equal(["FACP", "APIC", "MCFG"], names);
    }

    [Fact]
    public void TheSourceFilesAreNotModified()
    {
        var t = AcpiTables.Build(Platform());
        var before = (byte[])t.Tables.Clone();
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x20_0000)]));
        TableLoaderRunner.Run(t.TableLoader, Files(t), (_, _, zone, _) => zone == TableLoaderZone.FSeg ? 0xF_0000UL : 0x10_0000UL, mem);
        Assert.Equal(before, t.Tables);
    }

    [Fact]
    public void BadScriptsAreRefusedWithoutTouchingMemory()
    {
        var t = AcpiTables.Build(Platform());
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x20_0000)]));
        static ulong Place(string f, uint a, TableLoaderZone z, int s) => 0x1000;

        // A file the script allocates is missing.
        Assert.Throws<InvalidDataException>(() => TableLoaderRunner.Run(t.TableLoader,
            new Dictionary<string, byte[]> { [AcpiTables.TablesFileName] = t.Tables }, Place, mem));
        // A truncated command.
        Assert.Throws<InvalidDataException>(() => TableLoaderRunner.Run(t.TableLoader.AsSpan(0, 100), Files(t), Place, mem));
        // A pointer field beyond its file.
        var loader = new TableLoader();
        loader.Allocate("a", 16, TableLoaderZone.High);
        loader.AddPointer("a", "a", 14, 4);
        Assert.Throws<InvalidDataException>(() => TableLoaderRunner.Run(loader.ToArray(),
            new Dictionary<string, byte[]> { ["a"] = new byte[16] }, Place, mem));
        // A placement that ignores the alignment asked for.
        Assert.Throws<InvalidDataException>(() => TableLoaderRunner.Run(t.TableLoader, Files(t), (_, _, _, _) => 0x1008, mem));
        Assert.True(mem.TryRead(0x1000, new byte[64]));
        var probe = new byte[64];
        mem.TryRead(0x1000, probe);
        Assert.All(probe, b => Assert.Equal(0, b));
    }
}

using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Hw.Acpi;
using Propolis.Core.Hw.FwCfg;
using Propolis.Core.Hw.Smbios;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Hw.FwCfg;

public sealed class FirmwareFwCfgTests
{
    private static FirmwareInputs Inputs(MemoryLayout layout) => new()
    {
        CpuCount = 2,
        Layout = layout,
        ReservedRanges = [(MemoryLayout.PcieEcamBase, MemoryLayout.PcieEcamSize)],
        BootOrder = [BootOrderPath.Nvme(5, 0)],
        Acpi = new AcpiPlatform
        {
            CpuCount = 2,
            Ecam = new AddressWindow(MemoryLayout.PcieEcamBase, MemoryLayout.PcieEcamSize),
            Pci32Window = new AddressWindow(MemoryLayout.Pci32MmioBase, MemoryLayout.Pci32MmioSize),
        },
        Smbios = new SmbiosPlatform { CpuCount = 2, MemorySize = layout.RamSize },
    };

    [Fact]
    public void TheFirmwareSeesItemsAndFilesThroughTheDirectory()
    {
        var layout = MemoryLayout.FromRegions([(0, 0x10_0000)]);
        using var mem = GuestMemory.Allocate(layout);
        var dev = FirmwareFwCfg.CreateBuilder(Inputs(layout)).Build(mem);

        Assert.True(dev.TryGetItem(FwCfgSelector.NbCpus, out var cpus));
        Assert.Equal("0200", Convert.ToHexString(cpus.Span));
        Assert.True(dev.TryGetItem(FwCfgSelector.MaxCpus, out var max));
        Assert.Equal("0200", Convert.ToHexString(max.Span));
        Assert.True(dev.TryGetItem(FwCfgSelector.RamSize, out var ram));
        Assert.Equal("0000100000000000", Convert.ToHexString(ram.Span));
        Assert.True(dev.TryGetItem(FwCfgSelector.NoGraphic, out var nographic));
        Assert.Equal("0100", Convert.ToHexString(nographic.Span));

        Assert.True(dev.TryGetItem(FwCfgSelector.FileDir, out var dirMemory));
        var dir = dirMemory.ToArray();
        var count = BinaryPrimitives.ReadUInt32BigEndian(dir);
        var names = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var entry = dir.AsSpan(4 + 64 * i, 64);
            var name = Encoding.ASCII.GetString(entry[8..]).TrimEnd('\0');
            names.Add(name);
            var select = BinaryPrimitives.ReadUInt16BigEndian(entry[4..]);
            Assert.True(dev.TryGetItem(select, out var contents));
            Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(entry), (uint)contents.Length);
        }
        Assert.Equal(["bootorder", "etc/acpi/rsdp", "etc/acpi/tables", "etc/e820", "etc/smbios/smbios-anchor", "etc/smbios/smbios-tables", "etc/table-loader"], names);
    }
}

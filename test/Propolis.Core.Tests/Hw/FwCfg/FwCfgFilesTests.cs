using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Boot;
using Propolis.Core.Hw.FwCfg;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Hw.FwCfg;

public sealed class FwCfgFilesTests
{
    private static readonly (ulong, ulong)[] Ecam = [(MemoryLayout.PcieEcamBase, MemoryLayout.PcieEcamSize)];

    [Fact]
    public void E820For512MiB()
    {
        var layout = MemoryLayout.ForRamSize(512UL << 20);
        Assert.Equal(
            "0000000000000000" + "0000002000000000" + "01000000"   // RAM 0–512 MiB
            + "000000E000000000" + "0000001000000000" + "02000000", // ECAM, reserved
            Convert.ToHexString(FwCfgFiles.E820(layout.RamRegions, Ecam)));
    }

    [Fact]
    public void E820For4GiBSplitsAroundThePciHole()
    {
        var layout = MemoryLayout.ForRamSize(4UL << 30);
        Assert.Equal(
            "0000000000000000" + "000000C000000000" + "01000000"   // RAM 0–3 GiB
            + "000000E000000000" + "0000001000000000" + "02000000" // ECAM
            + "0000000001000000" + "0000004000000000" + "01000000", // RAM 4–5 GiB
            Convert.ToHexString(FwCfgFiles.E820(layout.RamRegions, Ecam)));
    }

    [Fact]
    public void BootOrderIsNewlineSeparatedAndNulTerminated()
    {
        var bytes = FwCfgFiles.BootOrder(
        [
            BootOrderPath.VirtioBlock(4, 0),
            BootOrderPath.Nvme(0x1F, 4, 0x123456789abcd),
            BootOrderPath.Pci(10, 3, "ethernet"),
        ], strict: true);
        Assert.Equal(
            "/pci@i0cf8/scsi@4,0/disk@0,0\n"
            + "/pci@i0cf8/pci8086,5845@1f,4/namespace@1,123456789abcd\n"
            + "/pci@i0cf8/ethernet@a,3\n"
            + "HALT\0",
            Encoding.ASCII.GetString(bytes));
        Assert.Equal(Convert.ToHexString("/pci@i0cf8/scsi@4,0/disk@0,0"u8) + "00",
            Convert.ToHexString(FwCfgFiles.BootOrder([BootOrderPath.VirtioBlock(4, 0)])));
    }

    [Fact]
    public void BootOrderRefusesControlCharacters()
    {
        Assert.Throws<ArgumentException>(() => FwCfgFiles.BootOrder(["a\nb"]));
        Assert.Throws<ArgumentException>(() => FwCfgFiles.BootOrder([""]));
    }

    private static byte[] FakeBzImage(byte setupSects, int length)
    {
        var image = new byte[length];
        image[SetupHeader.SetupSects] = setupSects;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.Header), 0x5372_6448); // "HdrS"
        for (int i = 0x300; i < length; i++)
        {
            image[i] = (byte)i;
        }
        return image;
    }

    [Theory]
    [InlineData(0, 5 * 512)]  // setup_sects 0 means 4
    [InlineData(27, 28 * 512)]
    public void KernelItemsSplitTheImageAfterTheSetup(byte setupSects, int setupSize)
    {
        var image = FakeBzImage(setupSects, 0x8000);
        using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x1_0000)]));
        var dev = new FwCfgBuilder().AddLinuxKernel(image, "initrd!"u8, "console=ttyS0").Build(mem);

        static uint U32(FwCfgDevice d, ushort sel) =>
            d.TryGetItem(sel, out var m) ? BinaryPrimitives.ReadUInt32LittleEndian(m.Span) : throw new Xunit.Sdk.XunitException($"no item {sel:X}");

        Assert.Equal((uint)setupSize, U32(dev, FwCfgSelector.SetupSize));
        Assert.Equal((uint)(image.Length - setupSize), U32(dev, FwCfgSelector.KernelSize));
        Assert.True(dev.TryGetItem(FwCfgSelector.SetupData, out var setup));
        Assert.True(dev.TryGetItem(FwCfgSelector.KernelData, out var kernel));
        Assert.Equal(image, setup.ToArray().Concat(kernel.ToArray()));
        Assert.Equal(7u, U32(dev, FwCfgSelector.InitrdSize));
        Assert.Equal(14u, U32(dev, FwCfgSelector.CmdlineSize));
        Assert.True(dev.TryGetItem(FwCfgSelector.CmdlineData, out var cmdline));
        Assert.Equal("console=ttyS0\0", Encoding.ASCII.GetString(cmdline.Span));
    }

    [Fact]
    public void KernelWithoutSetupHeaderIsRefused()
    {
        Assert.Throws<KernelImageException>(() => FwCfgLinuxKernel.SetupSize(new byte[0x1000]));
        Assert.Throws<KernelImageException>(() => FwCfgLinuxKernel.SetupSize(FakeBzImage(4, 5 * 512)));
    }
}

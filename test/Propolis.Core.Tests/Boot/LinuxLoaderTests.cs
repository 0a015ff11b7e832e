using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Boot;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Boot;

public sealed class LinuxLoaderTests : IDisposable
{
    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.ForRamSize(64 << 20));

    public void Dispose() => _mem.Dispose();

    private byte[] Read(ulong gpa, int length)
    {
        Assert.True(_mem.TryGetSpan(gpa, length, out var s));
        return s.ToArray();
    }

    private ulong U64(ulong gpa) => _mem.TryReadUInt64(gpa, out var v) ? v : throw new InvalidOperationException();

    private uint U32(ulong gpa) => _mem.TryReadUInt32(gpa, out var v) ? v : throw new InvalidOperationException();

    private ushort U16(ulong gpa) => _mem.TryReadUInt16(gpa, out var v) ? v : throw new InvalidOperationException();

    [Fact]
    public void ZeroPageGolden()
    {
        var image = TestImages.BzImage();
        var initrd = new byte[0x3001];
        initrd[0] = 0xC7;
        var state = LinuxLoader.Load(_mem, image, "bzImage", initrd, "console=ttyS0 root=/dev/vda");
        const ulong zp = LinuxLoader.ZeroPageAddress;

        // Setup header copied from the image (0x1F1 up to 0x202 + image[0x201]).
        Assert.Equal(2, Read(zp + 0x1F1, 1)[0]);
        Assert.Equal(0xAA55, U16(zp + 0x1FE));
        Assert.Equal("HdrS", Encoding.ASCII.GetString(Read(zp + 0x202, 4)));
        Assert.Equal(0x020F, U16(zp + 0x206));
        Assert.Equal(0x7FFF_FFFFu, U32(zp + 0x22C));
        Assert.Equal(0x80_0000u, U32(zp + 0x260));
        Assert.Equal(0x100_0000UL, U64(zp + 0x258));
        // Fields the loader owns.
        Assert.Equal(0xFF, Read(zp + 0x210, 1)[0]);                    // type_of_loader
        Assert.Equal(0x01, Read(zp + 0x211, 1)[0]);                    // loadflags: LOADED_HIGH as given
        Assert.Equal(0xFFFF, U16(zp + 0x1FA));                         // vid_mode
        Assert.Equal(0x10_0000u, U32(zp + 0x214));                     // code32_start
        Assert.Equal(0x2_0000u, U32(zp + 0x228));                      // cmd_line_ptr
        Assert.Equal(0u, U32(zp + 0x0C8));                             // ext_cmd_line_ptr
        Assert.Equal(0x3FF_C000u, U32(zp + 0x218));                    // ramdisk_image: (64 MiB - size) page aligned
        Assert.Equal(0x3001u, U32(zp + 0x21C));                        // ramdisk_size
        Assert.Equal(0u, U32(zp + 0x0C0));
        Assert.Equal(0u, U32(zp + 0x0C4));
        Assert.Equal(0, Read(zp + 0x1EF, 1)[0]);                       // sentinel
        Assert.All(Read(zp, 0xC0), b => Assert.Equal(0, b));           // screen_info etc. untouched
        Assert.All(Read(zp + 0x268, 0x2D0 - 0x268), b => Assert.Equal(0, b)); // past the header

        // E820: 6 entries for 64 MiB, byte-exact.
        Assert.Equal(6, Read(zp + 0x1E8, 1)[0]);
        Assert.Equal(
            "0000000000000000" + "00FC090000000000" + "01000000" +
            "00FC090000000000" + "0004000000000000" + "02000000" +
            "00000F0000000000" + "0000010000000000" + "02000000" +
            "0000100000000000" + "0000F00300000000" + "01000000" +
            "000000E000000000" + "0000001000000000" + "02000000" +
            "00C0FFFE00000000" + "0040000100000000" + "02000000" +
            "0000000000000000",
            Convert.ToHexString(Read(zp + 0x2D0, 6 * 20 + 8)));

        Assert.Equal("console=ttyS0 root=/dev/vda\0", Encoding.ASCII.GetString(Read(0x2_0000, 28)));
        Assert.Equal(0xC7, Read(0x3FF_C000, 1)[0]);
        Assert.Equal(image.AsSpan(TestImages.PayloadOffset).ToArray(), Read(0x10_0000, TestImages.PayloadLength));

        Assert.Equal(0x10_0200UL, state.Registers.Rip);
        Assert.Equal(zp, state.Registers.Rsi);
        Assert.Equal(2UL, state.Registers.Rflags);
        Assert.Equal(0x180_0000UL, state.KernelEnd); // pref_address 16 MiB + init_size 8 MiB
        Assert.Equal((ushort)0x020F, state.ProtocolVersion);
    }

    [Fact]
    public void PageTablesIdentityMapFourGiBWithTwoMiBPages()
    {
        LinuxLoader.Load(_mem, TestImages.BzImage(), "bzImage", [], "");
        Assert.Equal(0xA003UL, U64(0x9000));
        Assert.Equal(0UL, U64(0x9008));
        Assert.Equal(0xB003UL, U64(0xA000));
        Assert.Equal(0xC003UL, U64(0xA008));
        Assert.Equal(0xD003UL, U64(0xA010));
        Assert.Equal(0xE003UL, U64(0xA018));
        Assert.Equal(0UL, U64(0xA020));
        Assert.Equal(0x83UL, U64(0xB000));
        Assert.Equal(0x20_0083UL, U64(0xB008));
        Assert.Equal(0x4000_0083UL, U64(0xC000));
        Assert.Equal(0xFFE0_0083UL, U64(0xEFF8));
        // Walk: every 2 MiB page maps to itself.
        for (var gpa = 0UL; gpa < 1UL << 32; gpa += 0x20_0000)
        {
            var pml4e = U64(0x9000 + ((gpa >> 39) & 511) * 8);
            var pdpte = U64((pml4e & ~0xFFFUL) + ((gpa >> 30) & 511) * 8);
            var pde = U64((pdpte & ~0xFFFUL) + ((gpa >> 21) & 511) * 8);
            Assert.Equal(gpa | 0x83, pde);
        }
    }

    [Fact]
    public void GdtHasBootCsAndDsAndDoesNotOverlapTheIdt()
    {
        LinuxLoader.Load(_mem, TestImages.BzImage(), "bzImage", [], "");
        Assert.Equal(0UL, U64(0x500));
        Assert.Equal(0UL, U64(0x508));
        Assert.Equal(0x00AF_9B00_0000_FFFFUL, U64(0x510));
        Assert.Equal(0x00CF_9300_0000_FFFFUL, U64(0x518));
        Assert.Equal(0x008F_8B00_0000_FFFFUL, U64(0x520));
        Assert.True(LinuxLoader.IdtAddress >= LinuxLoader.GdtAddress + LinuxLoader.GdtEntries * 8);
        Assert.Equal(0UL, U64(LinuxLoader.IdtAddress));
    }

    [Fact]
    public void LongModeRegistersMatchTheSixtyFourBitProtocol()
    {
        var s = LinuxBootState.LongModeSpecialRegisters(new SpecialRegisters { ApicBase = 0xFEE0_0900, Cr8 = 0 });
        Assert.Equal(0x8000_0031UL, s.Cr0);       // PG | NE | ET | PE
        Assert.Equal(0x9000UL, s.Cr3);
        Assert.Equal(0x20UL, s.Cr4);              // PAE
        Assert.Equal(0x500UL, s.Efer);            // LMA | LME
        Assert.Equal(0xFEE0_0900UL, s.ApicBase);  // kept
        Assert.Equal((ushort)0x10, s.Cs.Selector);
        Assert.True(s.Cs.Long && !s.Cs.DefaultSize32 && s.Cs.Present && s.Cs.CodeOrData && s.Cs.Granularity);
        Assert.Equal((byte)0xB, s.Cs.Type);
        Assert.Equal(0xFFFF_FFFFu, s.Cs.Limit);
        foreach (var d in new[] { s.Ds, s.Es, s.Fs, s.Gs, s.Ss })
        {
            Assert.Equal((ushort)0x18, d.Selector);
            Assert.Equal((byte)0x3, d.Type);
            Assert.True(d.DefaultSize32 && !d.Long && d.Present);
            Assert.Equal(0UL, d.Base);
            Assert.Equal(0xFFFF_FFFFu, d.Limit);
        }
        Assert.Equal((ushort)0x20, s.Tr.Selector);
        Assert.Equal((byte)0xB, s.Tr.Type);
        Assert.Equal(0x500UL, s.Gdt.Base);
        Assert.Equal((ushort)39, s.Gdt.Limit);
    }

    [Fact]
    public void NotABzImageIsSaidPlainly()
    {
        var elf = new byte[4096];
        "\u007fELF"u8.CopyTo(elf);
        var e = Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, elf, "/boot/vmlinux", [], ""));
        Assert.Equal("/boot/vmlinux is not a Linux bzImage (no 'HdrS' signature at offset 0x202)", e.Message);
        e = Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, new byte[100], "tiny", [], ""));
        Assert.Equal("tiny is not a Linux bzImage (no 'HdrS' signature at offset 0x202)", e.Message);
    }

    [Fact]
    public void UnsupportedImagesAreRejectedWithTheReason()
    {
        Assert.Contains("boot protocol 2.11; this loader needs 2.12",
            Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, TestImages.BzImage(version: 0x020B), "old", [], "")).Message);
        Assert.Contains("no 64-bit entry point",
            Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, TestImages.BzImage(xloadflags: 0), "i386", [], "")).Message);
        Assert.Contains("zImage",
            Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, TestImages.BzImage(loadFlags: 0), "zimg", [], "")).Message);
        var badFlag = TestImages.BzImage();
        badFlag[0x1FE] = 0;
        Assert.Contains("boot_flag",
            Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, badFlag, "x", [], "")).Message);
    }

    [Fact]
    public void AHeaderTooShortForInitSizeIsMalformed()
    {
        var image = TestImages.BzImage();
        image[0x201] = 0x5E; // header would end at 0x260, before init_size
        Assert.Contains("malformed setup header",
            Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, image, "k", [], "")).Message);
    }

    [Fact]
    public void ZeroSetupSectorsMeansFour()
    {
        var image = TestImages.BzImage();
        image[0x1F1] = 0; // the payload now starts at (4 + 1) * 512
        LinuxLoader.Load(_mem, image, "k", [], "");
        Assert.Equal(image.AsSpan(5 * 512, 64).ToArray(), Read(0x10_0000, 64));
    }

    [Fact]
    public void CommandLineLongerThanTheKernelAcceptsIsAnError()
    {
        var image = TestImages.BzImage(cmdlineSize: 16);
        LinuxLoader.Load(_mem, image, "k", [], new string('a', 16));
        var e = Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, image, "k", [], new string('a', 17)));
        Assert.Equal("the kernel command line is 17 bytes; k accepts at most 16", e.Message);
    }

    [Fact]
    public void InitrdGoesBelowInitrdAddrMax()
    {
        // initrd_addr_max at 32 MiB - 1: the initrd must end at or below 32 MiB.
        var image = TestImages.BzImage(initrdAddrMax: 0x1FF_FFFF);
        var state = LinuxLoader.Load(_mem, image, "k", new byte[0x1800], "");
        Assert.Equal(0x1FF_E000UL, state.InitrdAddress);
        Assert.True(state.InitrdAddress + state.InitrdSize <= 0x200_0000);
    }

    [Fact]
    public void InitrdThatWouldOverlapTheDecompressingKernelIsRefused()
    {
        // 64 MiB of RAM, the kernel owns up to 24 MiB: a 48 MiB initrd cannot fit.
        var e = Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, TestImages.BzImage(), "k", new byte[48 << 20], ""));
        Assert.Contains("does not fit", e.Message);
        Assert.Contains("give the VM more memory", e.Message);
    }

    [Fact]
    public void KernelThatNeedsMoreMemoryThanTheVmHasIsRefused()
    {
        var e = Assert.Throws<KernelImageException>(() => LinuxLoader.Load(_mem, TestImages.BzImage(initSize: 0x400_0000), "big", [], ""));
        Assert.Contains("big needs guest memory up to 0x5000000", e.Message);
    }

    [Fact]
    public void DescriptorDecodingMatchesTheSdmLayout()
    {
        var cs = X86Descriptors.ToSegment(X86Descriptors.Code64, 0x10);
        Assert.Equal((0UL, 0xFFFF_FFFFu, (byte)0xB, true, true, true, false), (cs.Base, cs.Limit, cs.Type, cs.Present, cs.CodeOrData, cs.Long, cs.DefaultSize32));
        // base 0x12345678, limit 0x0ABCD byte-granular, data read/write, DPL 3.
        var custom = X86Descriptors.ToSegment(0x1240_F234_5678_ABCDUL, 0x2B);
        Assert.Equal((0x1234_5678UL, 0xABCDu, (byte)0x2, (byte)3, false), (custom.Base, custom.Limit, custom.Type, custom.Dpl, custom.Granularity));
    }
}

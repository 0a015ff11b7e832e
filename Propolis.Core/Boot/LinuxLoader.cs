using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Boot;

/// <summary>The kernel image cannot be booted; the message names the file and the problem.</summary>
public sealed class KernelImageException : Exception
{
    public KernelImageException(string message) : base(message) { }
}

/// <summary>Where the loader put things and the BSP state for the 64-bit entry point.</summary>
public sealed class LinuxBootState
{
    internal LinuxBootState(GeneralRegisters registers, ulong kernelAddress, ulong kernelEnd, ulong initrdAddress, ulong initrdSize, ushort protocolVersion)
    {
        Registers = registers;
        KernelAddress = kernelAddress;
        KernelEnd = kernelEnd;
        InitrdAddress = initrdAddress;
        InitrdSize = initrdSize;
        ProtocolVersion = protocolVersion;
    }

    /// <summary>RIP = startup_64 (load address + 0x200), RSI = boot_params, RFLAGS = 2.</summary>
    public GeneralRegisters Registers { get; }

    public ulong KernelAddress { get; }

    /// <summary>End of the memory the kernel claims while decompressing (runtime start + init_size).</summary>
    public ulong KernelEnd { get; }

    public ulong InitrdAddress { get; }

    public ulong InitrdSize { get; }

    /// <summary>The image's boot protocol version, e.g. 0x020F for 2.15.</summary>
    public ushort ProtocolVersion { get; }

    /// <summary>Long mode with paging on, flat 64-bit CS (0x10) and data segments (0x18) from the
    /// loader's GDT, CR3 at the identity map: <paramref name="current"/> with those fields replaced
    /// (the APIC base, CR8 and anything else the hypervisor reported are kept).</summary>
    public static SpecialRegisters LongModeSpecialRegisters(SpecialRegisters current)
    {
        var s = current;
        s.Cs = X86Descriptors.ToSegment(X86Descriptors.Code64, LinuxLoader.BootCodeSelector);
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = X86Descriptors.ToSegment(X86Descriptors.Data, LinuxLoader.BootDataSelector);
        s.Tr = X86Descriptors.ToSegment(X86Descriptors.Tss, LinuxLoader.BootTssSelector);
        s.Ldt = new SegmentRegister { Type = 2, Present = true, Limit = 0xFFFF };
        s.Gdt = new DescriptorTable { Base = LinuxLoader.GdtAddress, Limit = (ushort)(LinuxLoader.GdtEntries * 8 - 1) };
        s.Idt = new DescriptorTable { Base = LinuxLoader.IdtAddress, Limit = 7 };
        s.Cr0 = X86.CR0_PE | X86.CR0_ET | X86.CR0_NE | X86.CR0_PG;
        s.Cr3 = LinuxLoader.Pml4Address;
        s.Cr4 = X86.CR4_PAE;
        s.Efer = X86.EFER_LME | X86.EFER_LMA;
        return s;
    }

    /// <summary>Sets the BSP's registers for the 64-bit entry point.</summary>
    public void ApplyTo(IVcpu bsp)
    {
        ArgumentNullException.ThrowIfNull(bsp);
        bsp.SetSpecialRegisters(LongModeSpecialRegisters(bsp.GetSpecialRegisters()));
        bsp.SetGeneralRegisters(Registers);
    }
}

/// <summary>Loads a bzImage for the x86 64-bit boot protocol (Documentation/arch/x86/boot.rst,
/// "64-bit Boot Protocol"): the protected-mode kernel at 1 MiB, boot_params at 0x7000 with the
/// E820 map, the command line at 0x20000, the initrd as high as allowed in low RAM, identity-mapped
/// page tables for the first 4 GiB and a GDT with __BOOT_CS/__BOOT_DS.</summary>
/// <remarks>Boot protocol 2.12 or later is required (Linux 3.8, 2013): it is the first with
/// xloadflags, which says whether the 64-bit entry point exists.</remarks>
public static class LinuxLoader
{
    public const ushort MinimumProtocol = 0x020C;

    public const ulong GdtAddress = 0x500;
    /// <summary>An empty IDT right after the five-entry GDT (0x500–0x527).</summary>
    public const ulong IdtAddress = 0x528;
    public const ulong ZeroPageAddress = 0x7000;
    public const ulong StackPointer = 0x8FF0;
    public const ulong Pml4Address = 0x9000;
    public const ulong PdptAddress = 0xA000;
    /// <summary>Four page directories (one per GiB) of 2 MiB pages follow the PDPT.</summary>
    public const ulong PageDirectoryAddress = 0xB000;
    public const ulong CmdlineAddress = 0x2_0000;
    /// <summary>The command line may run up to the EBDA.</summary>
    public const int CmdlineCapacity = (int)(MemoryLayout.EbdaBase - CmdlineAddress);
    public const ulong KernelLoadAddress = MemoryLayout.HighMemoryBase;
    /// <summary>startup_64 is 0x200 bytes into the protected-mode kernel.</summary>
    public const ulong Startup64Offset = 0x200;

    public const ushort BootCodeSelector = 0x10;
    public const ushort BootDataSelector = 0x18;
    public const ushort BootTssSelector = 0x20;
    public const int GdtEntries = 5;

    private const ulong PageTablePresentWritable = 0x3;
    private const ulong PageSize2M = 0x80;

    /// <summary>Loads <paramref name="kernel"/> (the bytes of <paramref name="kernelName"/>), an optional
    /// initrd and the command line into <paramref name="memory"/>.</summary>
    /// <exception cref="KernelImageException">Not a bootable bzImage, or it, the command line or the
    /// initrd do not fit; the message says which.</exception>
    public static LinuxBootState Load(GuestMemory memory, ReadOnlySpan<byte> kernel, string kernelName, ReadOnlySpan<byte> initrd, string cmdline)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(cmdline);
        var header = Validate(kernel, kernelName);
        var lowRam = memory.Layout.LowRam;
        var lowRamTop = lowRam.End;

        // The protected-mode kernel follows the real-mode setup sectors.
        var setupSects = kernel[SetupHeader.SetupSects] == 0 ? 4 : kernel[SetupHeader.SetupSects];
        var kernelOffset = (setupSects + 1) * 512;
        if (kernelOffset >= kernel.Length)
        {
            throw new KernelImageException($"{kernelName} is truncated: its {setupSects} setup sectors leave no protected-mode kernel");
        }
        var payload = kernel[kernelOffset..];

        // The decompressor runs at max(load address, pref_address) and needs init_size bytes there.
        var prefAddress = BinaryPrimitives.ReadUInt64LittleEndian(kernel[SetupHeader.PrefAddress..]);
        var initSize = BinaryPrimitives.ReadUInt32LittleEndian(kernel[SetupHeader.InitSize..]);
        var runStart = Math.Max(KernelLoadAddress, prefAddress);
        var kernelEnd = Math.Max(KernelLoadAddress + (ulong)payload.Length, runStart + initSize);
        if (kernelEnd > lowRamTop)
        {
            throw new KernelImageException(
                $"{kernelName} needs guest memory up to 0x{kernelEnd:X} ({(kernelEnd + 0xFFFFF) >> 20} MiB) to decompress; give the VM more memory");
        }

        // Command line: NUL-terminated, at most cmdline_size bytes before the NUL.
        var cmdlineBytes = Encoding.UTF8.GetBytes(cmdline);
        var cmdlineMax = Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(kernel[SetupHeader.CmdlineSize..]), (uint)CmdlineCapacity - 1);
        if (Array.IndexOf(cmdlineBytes, (byte)0) >= 0)
        {
            throw new KernelImageException("the kernel command line contains a NUL character");
        }
        if ((uint)cmdlineBytes.Length > cmdlineMax)
        {
            throw new KernelImageException($"the kernel command line is {cmdlineBytes.Length} bytes; {kernelName} accepts at most {cmdlineMax}");
        }

        // The initrd goes as high as the kernel allows, page aligned, above the kernel's footprint.
        ulong initrdAddress = 0;
        if (!initrd.IsEmpty)
        {
            var initrdAddrMax = BinaryPrimitives.ReadUInt32LittleEndian(kernel[SetupHeader.InitrdAddrMax..]);
            var limit = Math.Min((ulong)initrdAddrMax + 1, lowRamTop);
            var size = (ulong)initrd.Length;
            initrdAddress = size <= limit ? (limit - size) & ~(MemoryLayout.PageSize - 1) : 0;
            if (size > limit || initrdAddress < AlignUp(kernelEnd, MemoryLayout.PageSize))
            {
                throw new KernelImageException(
                    $"the initrd ({(size + 0xFFFFF) >> 20} MiB) does not fit between the kernel (ending at 0x{kernelEnd:X}) "
                    + $"and 0x{limit:X}, the highest address {kernelName} and guest RAM allow; give the VM more memory");
            }
        }

        // Low memory: GDT, IDT, zero page, page tables, command line.
        memory.Write(KernelLoadAddress, payload);
        if (!initrd.IsEmpty)
        {
            memory.Write(initrdAddress, initrd);
        }
        WriteGdt(memory);
        memory.Write(IdtAddress, stackalloc byte[8]);
        WritePageTables(memory);
        var cmdlineWithNul = new byte[cmdlineBytes.Length + 1];
        cmdlineBytes.CopyTo(cmdlineWithNul, 0);
        memory.Write(CmdlineAddress, cmdlineWithNul);

        Span<byte> zeroPage = new byte[ZeroPage.Size];
        BuildZeroPage(zeroPage, kernel, memory.Layout.BuildE820(), initrdAddress, (ulong)initrd.Length);
        memory.Write(ZeroPageAddress, zeroPage);

        var regs = new GeneralRegisters
        {
            Rip = KernelLoadAddress + Startup64Offset,
            Rsi = ZeroPageAddress,
            Rsp = StackPointer,
            Rbp = StackPointer,
            Rflags = X86.RFLAGS_RESERVED1,
        };
        return new LinuxBootState(regs, KernelLoadAddress, kernelEnd, initrdAddress, (ulong)initrd.Length, header.Version);
    }

    internal readonly record struct HeaderFacts(ushort Version);

    /// <summary>Checks that <paramref name="kernel"/> is a bzImage this loader can boot.</summary>
    public static ushort ValidateImage(ReadOnlySpan<byte> kernel, string kernelName) => Validate(kernel, kernelName).Version;

    private static HeaderFacts Validate(ReadOnlySpan<byte> kernel, string kernelName)
    {
        if (kernel.Length < SetupHeader.End
            || BinaryPrimitives.ReadUInt32LittleEndian(kernel[SetupHeader.Header..]) != SetupHeader.HeaderMagic)
        {
            throw new KernelImageException($"{kernelName} is not a Linux bzImage (no 'HdrS' signature at offset 0x202)");
        }
        if (BinaryPrimitives.ReadUInt16LittleEndian(kernel[SetupHeader.BootFlag..]) != SetupHeader.BootFlagMagic)
        {
            throw new KernelImageException($"{kernelName} is not a Linux bzImage (boot_flag at 0x1FE is not 0xAA55)");
        }
        var version = BinaryPrimitives.ReadUInt16LittleEndian(kernel[SetupHeader.Version..]);
        if (version < MinimumProtocol)
        {
            throw new KernelImageException(
                $"{kernelName} uses boot protocol {version >> 8}.{version & 0xFF:D2}; this loader needs 2.12 or later (Linux 3.8 or newer)");
        }
        if ((kernel[SetupHeader.LoadFlags] & SetupHeader.LoadedHigh) == 0)
        {
            throw new KernelImageException($"{kernelName} is a zImage (loaded below 1 MiB), not a bzImage; build the kernel with 'make bzImage'");
        }
        if ((BinaryPrimitives.ReadUInt16LittleEndian(kernel[SetupHeader.XLoadFlags..]) & SetupHeader.XlfKernel64) == 0)
        {
            throw new KernelImageException($"{kernelName} has no 64-bit entry point (XLF_KERNEL_64 is clear); boot an x86_64 kernel");
        }
        var headerEnd = SetupHeader.Header + kernel[SetupHeader.Jump + 1];
        // init_size (protocol 2.10) is the last field this loader needs from the header.
        if (headerEnd < SetupHeader.InitSize + 4 || headerEnd > ZeroPage.E820Table || headerEnd > kernel.Length)
        {
            throw new KernelImageException($"{kernelName} has a malformed setup header (it claims to end at 0x{headerEnd:X})");
        }
        return new HeaderFacts(version);
    }

    /// <summary>Fills boot_params: the image's setup header, then the fields a boot loader owns.</summary>
    public static void BuildZeroPage(Span<byte> zeroPage, ReadOnlySpan<byte> kernel, IReadOnlyList<E820Entry> e820, ulong initrdAddress, ulong initrdSize)
    {
        zeroPage[..ZeroPage.Size].Clear();
        var headerEnd = SetupHeader.Header + kernel[SetupHeader.Jump + 1];
        kernel[SetupHeader.SetupSects..headerEnd].CopyTo(zeroPage[SetupHeader.SetupSects..]);

        zeroPage[SetupHeader.TypeOfLoader] = SetupHeader.LoaderTypeUndefined;
        BinaryPrimitives.WriteUInt16LittleEndian(zeroPage[SetupHeader.VidMode..], SetupHeader.VidModeNormal);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.Code32Start..], (uint)KernelLoadAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.CmdLinePtr..], (uint)CmdlineAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[ZeroPage.ExtCmdLinePtr..], (uint)(CmdlineAddress >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.RamdiskImage..], (uint)initrdAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[ZeroPage.ExtRamdiskImage..], (uint)(initrdAddress >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.RamdiskSize..], (uint)initrdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[ZeroPage.ExtRamdiskSize..], (uint)(initrdSize >> 32));

        if (e820.Count > ZeroPage.E820MaxEntries)
        {
            throw new ArgumentException($"the E820 map has {e820.Count} entries; boot_params holds {ZeroPage.E820MaxEntries}", nameof(e820));
        }
        zeroPage[ZeroPage.E820Entries] = (byte)e820.Count;
        for (var i = 0; i < e820.Count; i++)
        {
            e820[i].Encode(zeroPage[(ZeroPage.E820Table + i * E820Entry.EncodedSize)..]);
        }
    }

    /// <summary>PML4[0] → PDPT; PDPT[0..3] → four page directories; each PD maps 1 GiB with
    /// 2 MiB pages, so [0, 4 GiB) is identity mapped (Intel SDM Vol. 3A §4.5).</summary>
    public static void WritePageTables(GuestMemory memory)
    {
        Span<byte> page = stackalloc byte[(int)MemoryLayout.PageSize];
        page.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(page, PdptAddress | PageTablePresentWritable);
        memory.Write(Pml4Address, page);

        page.Clear();
        for (var gib = 0; gib < 4; gib++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(page[(gib * 8)..], (PageDirectoryAddress + (ulong)gib * MemoryLayout.PageSize) | PageTablePresentWritable);
        }
        memory.Write(PdptAddress, page);

        for (var gib = 0UL; gib < 4; gib++)
        {
            for (var i = 0UL; i < 512; i++)
            {
                var physical = ((gib << 9) + i) << 21;
                BinaryPrimitives.WriteUInt64LittleEndian(page[(int)(i * 8)..], physical | PageTablePresentWritable | PageSize2M);
            }
            memory.Write(PageDirectoryAddress + gib * MemoryLayout.PageSize, page);
        }
    }

    private static void WriteGdt(GuestMemory memory)
    {
        Span<byte> gdt = stackalloc byte[GdtEntries * 8];
        gdt.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[BootCodeSelector..], X86Descriptors.Code64);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[BootDataSelector..], X86Descriptors.Data);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[BootTssSelector..], X86Descriptors.Tss);
        memory.Write(GdtAddress, gdt);
    }

    private static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) & ~(alignment - 1);
}

/// <summary>Segment descriptors (Intel SDM Vol. 3A §3.4.5) the loader puts in its GDT, and the
/// segment-register cache values that correspond to them.</summary>
public static class X86Descriptors
{
    /// <summary>64-bit code: base 0, limit 0xFFFFF, G, L, P, DPL 0, execute/read, accessed.</summary>
    public const ulong Code64 = 0x00AF_9B00_0000_FFFF;

    /// <summary>Data: base 0, limit 0xFFFFF, G, D/B, P, DPL 0, read/write, accessed.</summary>
    public const ulong Data = 0x00CF_9300_0000_FFFF;

    /// <summary>Busy 32/64-bit TSS: base 0, limit 0xFFFFF, G, P (required for VM entry on VMX).</summary>
    public const ulong Tss = 0x008F_8B00_0000_FFFF;

    /// <summary>Decodes a descriptor into the hidden part of a segment register.</summary>
    public static SegmentRegister ToSegment(ulong descriptor, ushort selector)
    {
        var limit = (uint)(descriptor & 0xFFFF) | (uint)((descriptor >> 32) & 0xF_0000);
        var granular = ((descriptor >> 55) & 1) != 0;
        return new SegmentRegister
        {
            Base = ((descriptor >> 16) & 0xFF_FFFF) | ((descriptor >> 32) & 0xFF00_0000),
            Limit = granular ? (limit << 12) | 0xFFF : limit,
            Selector = selector,
            Type = (byte)((descriptor >> 40) & 0xF),
            CodeOrData = ((descriptor >> 44) & 1) != 0,
            Dpl = (byte)((descriptor >> 45) & 3),
            Present = ((descriptor >> 47) & 1) != 0,
            Available = ((descriptor >> 52) & 1) != 0,
            Long = ((descriptor >> 53) & 1) != 0,
            DefaultSize32 = ((descriptor >> 54) & 1) != 0,
            Granularity = granular,
        };
    }
}

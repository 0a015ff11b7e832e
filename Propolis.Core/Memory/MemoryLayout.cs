namespace Propolis.Core.Memory;

/// <summary>One contiguous range of guest RAM and where it lives in the host mapping.</summary>
/// <param name="GuestAddress">Guest-physical base address.</param>
/// <param name="Size">Bytes.</param>
/// <param name="HostOffset">Offset of the range inside the single host mapping that backs all RAM.</param>
public readonly record struct RamRegion(ulong GuestAddress, ulong Size, ulong HostOffset)
{
    /// <summary>Exclusive end address.</summary>
    public ulong End => GuestAddress + Size;
}

/// <summary>The guest-physical address map, laid out as propolis lays it out: RAM from 0 up to
/// 3 GiB, the rest of RAM from 4 GiB; the hole below 4 GiB holds 32-bit PCI BARs from
/// 3 GiB, the PCIe ECAM window at 0xE000_0000 (256 MiB), the I/O APIC and local APIC pages,
/// and the pages KVM needs for its TSS and identity map on Intel hosts; 64-bit BARs go above
/// the end of RAM.</summary>
public sealed class MemoryLayout
{
    public const ulong PageSize = 0x1000;

    /// <summary>Low RAM never reaches past this address (propolis: MAX_LOWMEM).</summary>
    public const ulong LowRamLimit = 0xC000_0000;

    /// <summary>RAM above <see cref="LowRamLimit"/> continues here.</summary>
    public const ulong HighRamBase = 0x1_0000_0000;

    /// <summary>32-bit PCI memory BARs are assigned from here up to <see cref="PcieEcamBase"/>.</summary>
    public const ulong Pci32MmioBase = 0xC000_0000;
    public const ulong Pci32MmioSize = PcieEcamBase - Pci32MmioBase;

    /// <summary>PCIe enhanced configuration access window: 256 buses × 32 devices × 8 functions × 4 KiB
    /// (PCI Express Base 4.0 §7.2.2).</summary>
    public const ulong PcieEcamBase = 0xE000_0000;
    public const ulong PcieEcamSize = 0x1000_0000;

    public const ulong IoApicBase = 0xFEC0_0000;
    public const ulong LocalApicBase = 0xFEE0_0000;

    /// <summary>KVM_SET_IDENTITY_MAP_ADDR: one page, used by KVM for real-mode guests on Intel VMX.
    /// Where QEMU puts it (target/i386/kvm.c): just below the largest boot ROM region
    /// (<see cref="BootRomMaxSize"/> under 4 GiB), which it must not overlap.</summary>
    public const ulong KvmIdentityMapAddress = 0xFEFF_C000;

    /// <summary>KVM_SET_TSS_ADDR: three pages, used by KVM on Intel VMX, after the identity map page.</summary>
    public const ulong KvmTssAddress = 0xFEFF_D000;

    /// <summary>The boot ROM ends at 4 GiB; its region is 2 MiB (propolis) and grows down for
    /// larger images, up to this size.</summary>
    public const ulong BootRomMaxSize = 16UL << 20;

    /// <summary>The smallest boot ROM region: [0xFFE0_0000, 4 GiB).</summary>
    public const ulong BootRomMinRegion = 2UL << 20;

    /// <summary>Start of the legacy EBDA; conventional memory below it is usable RAM.</summary>
    public const ulong EbdaBase = 0x9_FC00;

    /// <summary>The legacy VGA window, option ROMs and system BIOS area (0xA0000–0xFFFFF).</summary>
    public const ulong LegacyHoleBase = 0xA_0000;
    public const ulong HighMemoryBase = 0x10_0000;

    /// <summary>The system BIOS area (0xF0000–0xFFFFF), reserved in the E820 map.</summary>
    public const ulong BiosAreaBase = 0xF_0000;

    private readonly RamRegion[] _ram;

    private MemoryLayout(ulong ramSize, RamRegion[] ram)
    {
        RamSize = ramSize;
        _ram = ram;
        var ramEnd = ram[^1].End;
        Pci64MmioBase = AlignUp(Math.Max(ramEnd, HighRamBase), 1UL << 30);
    }

    /// <summary>Total guest RAM in bytes.</summary>
    public ulong RamSize { get; }

    /// <summary>RAM ranges, ascending: low RAM at 0 and, if RAM exceeds 3 GiB, high RAM at 4 GiB.</summary>
    public ReadOnlySpan<RamRegion> RamRegions => _ram;

    /// <summary>The first RAM range (starting at guest-physical 0).</summary>
    public RamRegion LowRam => _ram[0];

    /// <summary>64-bit PCI memory BARs are assigned from here (1 GiB aligned, above all RAM).</summary>
    public ulong Pci64MmioBase { get; }

    /// <summary>The layout for <paramref name="ramSize"/> bytes of RAM, which must be a whole
    /// number of 2 MiB pages and at least 2 MiB.</summary>
    public static MemoryLayout ForRamSize(ulong ramSize)
    {
        const ulong granule = 2UL << 20;
        if (ramSize < granule || ramSize % granule != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ramSize), ramSize,
                "guest memory must be a non-zero multiple of 2 MiB");
        }
        if (ramSize > (1UL << 46))
        {
            throw new ArgumentOutOfRangeException(nameof(ramSize), ramSize, "guest memory above 64 TiB is not supported");
        }
        var low = Math.Min(ramSize, LowRamLimit);
        return ramSize == low
            ? new MemoryLayout(ramSize, [new RamRegion(0, low, 0)])
            : new MemoryLayout(ramSize, [new RamRegion(0, low, 0), new RamRegion(HighRamBase, ramSize - low, low)]);
    }

    /// <summary>A layout with arbitrary page-aligned RAM regions (ascending, non-overlapping,
    /// the first at 0): for tests that want a hole without gigabytes of address space.</summary>
    public static MemoryLayout FromRegions(ReadOnlySpan<(ulong GuestAddress, ulong Size)> regions)
    {
        if (regions.IsEmpty || regions[0].GuestAddress != 0)
        {
            throw new ArgumentException("the first RAM region must start at guest-physical 0", nameof(regions));
        }
        var ram = new RamRegion[regions.Length];
        ulong hostOffset = 0, previousEnd = 0, total = 0;
        for (var i = 0; i < regions.Length; i++)
        {
            var (gpa, size) = regions[i];
            if (size == 0 || gpa % PageSize != 0 || size % PageSize != 0 || gpa < previousEnd || gpa + size < gpa)
            {
                throw new ArgumentException($"RAM region {i} (0x{gpa:X}+0x{size:X}) is empty, unaligned, overlapping or wraps", nameof(regions));
            }
            ram[i] = new RamRegion(gpa, size, hostOffset);
            hostOffset += size;
            total += size;
            previousEnd = gpa + size;
        }
        return new MemoryLayout(total, ram);
    }

    /// <summary>The BIOS-style memory map handed to the guest (E820 for Linux, boot_params
    /// e820_table): usable RAM minus the legacy areas below 1 MiB, with the ECAM window and
    /// the KVM/firmware pages below 4 GiB marked reserved.</summary>
    public IReadOnlyList<E820Entry> BuildE820()
    {
        var map = new List<E820Entry>();
        foreach (var r in _ram)
        {
            if (r.GuestAddress != 0)
            {
                map.Add(new E820Entry(r.GuestAddress, r.Size, E820Type.Ram));
            }
            else if (r.Size > HighMemoryBase)
            {
                // Conventional memory, the EBDA, the BIOS area (where MP and ACPI RSDP
                // structures are looked for), then extended memory from 1 MiB.
                map.Add(new E820Entry(0, EbdaBase, E820Type.Ram));
                map.Add(new E820Entry(EbdaBase, LegacyHoleBase - EbdaBase, E820Type.Reserved));
                map.Add(new E820Entry(BiosAreaBase, HighMemoryBase - BiosAreaBase, E820Type.Reserved));
                map.Add(new E820Entry(HighMemoryBase, r.Size - HighMemoryBase, E820Type.Ram));
            }
            else
            {
                map.Add(new E820Entry(0, Math.Min(r.Size, EbdaBase), E820Type.Ram));
            }
        }
        map.Add(new E820Entry(PcieEcamBase, PcieEcamSize, E820Type.Reserved));
        map.Add(new E820Entry(KvmIdentityMapAddress, HighRamBase - KvmIdentityMapAddress, E820Type.Reserved));
        map.Sort((a, b) => a.Address.CompareTo(b.Address));
        return map;
    }

    /// <summary>True if [<paramref name="gpa"/>, +<paramref name="length"/>) lies in one RAM region.</summary>
    public bool IsRam(ulong gpa, ulong length) => FindRegion(gpa, length) >= 0;

    internal int FindRegion(ulong gpa, ulong length)
    {
        var ram = _ram;
        for (var i = 0; i < ram.Length; i++)
        {
            var r = ram[i];
            // Overflow-safe: never compute gpa + length.
            if (gpa >= r.GuestAddress && gpa - r.GuestAddress <= r.Size && length <= r.Size - (gpa - r.GuestAddress))
            {
                return i;
            }
        }
        return -1;
    }

    private static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) & ~(alignment - 1);
}

namespace Propolis.Core.Vmm;

/// <summary>Turns the hypervisor's supported CPUID table into the table one vCPU sees: its APIC
/// id, a topology of one socket with <c>vcpuCount</c> single-threaded cores, the hypervisor
/// present bit, and the KVM signature leaf (so a Linux guest finds kvmclock and PV features).</summary>
public static class CpuidSpecializer
{
    public const uint LeafVendor = 0x0;
    public const uint LeafFeatures = 0x1;
    public const uint LeafCacheParameters = 0x4;
    public const uint LeafExtendedTopology = 0xB;
    public const uint LeafExtendedTopologyV2 = 0x1F;
    public const uint LeafHypervisorSignature = 0x4000_0000;
    public const uint LeafKvmFeatures = 0x4000_0001;
    public const uint LeafAmdAddressSizes = 0x8000_0008;
    public const uint LeafAmdTopology = 0x8000_001E;

    /// <summary>CPUID.1:ECX bit 31, reserved for hypervisors to announce themselves.</summary>
    public const uint HypervisorPresentBit = 1u << 31;

    /// <summary>CPUID.1:EDX bit 28, HTT: EBX[23:16] of leaf 1 is valid.</summary>
    public const uint HttBit = 1u << 28;

    /// <summary>"KVMKVMKVM\0\0\0" as EBX, ECX, EDX of leaf 0x40000000.</summary>
    public const uint KvmSignatureEbx = 0x4B4D_564B, KvmSignatureEcx = 0x564B_4D56, KvmSignatureEdx = 0x0000_004D;

    // Leaf 0xB/0x1F level types (Intel SDM Vol. 2A, CPUID leaf 0BH).
    private const uint LevelTypeInvalid = 0, LevelTypeSmt = 1, LevelTypeCore = 2;

    /// <summary>The CPUID table for vCPU <paramref name="vcpuId"/> (which is also its APIC id) of <paramref name="vcpuCount"/>.</summary>
    public static CpuidEntry[] ForVcpu(ReadOnlySpan<CpuidEntry> supported, int vcpuId, int vcpuCount)
    {
        if (vcpuCount is < 1 or > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), vcpuCount, "a VM has 1 to 255 vCPUs (8-bit xAPIC ids)");
        }
        if (vcpuId < 0 || vcpuId >= vcpuCount)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuId), vcpuId, $"vCPU id must be below the vCPU count {vcpuCount}");
        }
        var apicId = (uint)vcpuId;
        var count = (uint)vcpuCount;
        var coreShift = CoreIdShift(count);
        var amd = IsAmd(supported);
        var table = new List<CpuidEntry>(supported.Length + 4);
        var maxBasic = 0u;

        foreach (var original in supported)
        {
            var e = original;
            switch (e.Function)
            {
                case LeafVendor:
                    maxBasic = e.Eax;
                    break;
                case LeafFeatures:
                    // EBX[31:24] initial APIC id, EBX[23:16] addressable logical processor ids.
                    e.Ebx = (e.Ebx & 0x0000_FFFF) | (apicId << 24) | (Math.Min(1u << (int)coreShift, 0xFFu) << 16);
                    e.Ecx |= HypervisorPresentBit;
                    e.Edx = count > 1 ? e.Edx | HttBit : e.Edx & ~HttBit;
                    break;
                case LeafCacheParameters when !amd:
                {
                    // EAX[31:26] cores per package - 1; EAX[25:14] logical processors sharing
                    // this cache - 1: one for L1/L2, the whole package for L3.
                    if ((e.Eax & 0x1F) != 0) // cache type 0: no more caches
                    {
                        var level = (e.Eax >> 5) & 0x7;
                        var coreIds = 1u << (int)coreShift;
                        var sharing = level >= 3 ? coreIds - 1 : 0;
                        e.Eax = (e.Eax & 0x3FFF) | ((coreIds - 1) << 26) | (sharing << 14);
                    }
                    break;
                }
                case LeafExtendedTopology or LeafExtendedTopologyV2:
                    e = TopologyLevel(e.Function, e.Index, apicId, count, coreShift);
                    break;
                case LeafAmdAddressSizes when amd:
                    // ECX[15:12] APIC id bits used for the core id, ECX[7:0] cores - 1.
                    e.Ecx = (e.Ecx & ~0xF0FFu) | (coreShift << 12) | (count - 1);
                    break;
                case LeafAmdTopology when amd:
                    // EAX extended APIC id; EBX[15:8] threads per core - 1, EBX[7:0] core id; ECX node 0.
                    e.Eax = apicId;
                    e.Ebx = (e.Ebx & ~0xFFFFu) | apicId;
                    e.Ecx &= ~0x7FFu;
                    break;
                case LeafHypervisorSignature:
                    e.Eax = Math.Max(e.Eax, LeafKvmFeatures);
                    e.Ebx = KvmSignatureEbx;
                    e.Ecx = KvmSignatureEcx;
                    e.Edx = KvmSignatureEdx;
                    break;
            }
            table.Add(e);
        }

        // The topology leaves must have their SMT and core levels even if the source lacked them.
        foreach (var leaf in (ReadOnlySpan<uint>)[LeafExtendedTopology, LeafExtendedTopologyV2])
        {
            if (maxBasic >= leaf)
            {
                for (var level = 0u; level <= 2; level++)
                {
                    if (!table.Exists(x => x.Function == leaf && x.Index == level))
                    {
                        table.Add(TopologyLevel(leaf, level, apicId, count, coreShift));
                    }
                }
            }
        }
        if (!table.Exists(x => x.Function == LeafHypervisorSignature))
        {
            table.Add(new CpuidEntry(LeafHypervisorSignature, 0, false, LeafKvmFeatures, KvmSignatureEbx, KvmSignatureEcx, KvmSignatureEdx));
        }
        return [.. table];
    }

    /// <summary>Leaf 0xB / 0x1F subleaf <paramref name="level"/>: level 0 is SMT (one thread per
    /// core), level 1 is the core level (all vCPUs in one package), higher levels are invalid.
    /// EDX is always the x2APIC id.</summary>
    private static CpuidEntry TopologyLevel(uint leaf, uint level, uint apicId, uint count, uint coreShift) => level switch
    {
        0 => new CpuidEntry(leaf, 0, true, 0, 1, (LevelTypeSmt << 8) | 0, apicId),
        1 => new CpuidEntry(leaf, 1, true, coreShift, count, (LevelTypeCore << 8) | 1, apicId),
        _ => new CpuidEntry(leaf, level, true, 0, 0, (LevelTypeInvalid << 8) | (level & 0xFF), apicId),
    };

    /// <summary>Bits of the APIC id that number cores: ceil(log2(count)).</summary>
    public static uint CoreIdShift(uint count) => count <= 1 ? 0 : 32 - (uint)uint.LeadingZeroCount(count - 1);

    /// <summary>True if leaf 0's vendor string is "AuthenticAMD" (or Hygon's AMD-compatible "HygonGenuine").</summary>
    public static bool IsAmd(ReadOnlySpan<CpuidEntry> table)
    {
        foreach (var e in table)
        {
            if (e.Function == LeafVendor)
            {
                return (e.Ebx, e.Edx, e.Ecx) is (0x6874_7541, 0x6974_6E65, 0x444D_4163) // "Auth" "enti" "cAMD"
                    or (0x6F67_7948, 0x6E65_476E, 0x656E_6975); // "Hygo" "nGen" "uine"
            }
        }
        return false;
    }
}

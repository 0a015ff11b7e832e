using Propolis.Standalone.Config;
using CoreCpuid = Propolis.Core.Vmm.CpuidEntry;

namespace Propolis.Standalone.Machine;

/// <summary>Applies a <c>[cpuid.NAME]</c> profile to the host's supported CPUID table.</summary>
internal static class CpuidProfile
{
    /// <summary>The host table with the profile's leaves put in place: a leaf given without a
    /// subleaf replaces every subleaf the host had for that function (and answers any ECX); a
    /// leaf given with subleaves replaces exactly those. Leaves the profile does not name keep
    /// the host's values. Per-vCPU fields (APIC ids, topology) are filled in afterwards.</summary>
    public static CoreCpuid[] Apply(IReadOnlyList<CoreCpuid> host, CpuidProfileConfig profile)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(profile);
        var result = new List<CoreCpuid>(host.Count + profile.Entries.Count);
        foreach (var e in host)
        {
            var overridden = profile.Entries.Any(o => o.Leaf == e.Function && (o.Subleaf is null || o.Subleaf == e.Index));
            if (!overridden)
                result.Add(e);
        }
        foreach (var o in profile.Entries)
            result.Add(new CoreCpuid(o.Leaf, o.Subleaf ?? 0, o.Subleaf is not null, o.Eax, o.Ebx, o.Ecx, o.Edx));
        result.Sort((a, b) => a.Function != b.Function ? a.Function.CompareTo(b.Function) : a.Index.CompareTo(b.Index));
        return [.. result];
    }

    /// <summary>The vendor leaf 0 names in <paramref name="table"/>, if it is AMD or Intel.</summary>
    public static CpuVendor? VendorOf(IReadOnlyList<CoreCpuid> table)
    {
        foreach (var e in table)
        {
            if (e.Function != 0)
                continue;
            return (e.Ebx, e.Edx, e.Ecx) switch
            {
                (0x6874_7541, 0x6974_6E65, 0x444D_4163) => CpuVendor.Amd,   // "AuthenticAMD"
                (0x756E_6547, 0x4965_6E69, 0x6C65_746E) => CpuVendor.Intel, // "GenuineIntel"
                _ => null,
            };
        }
        return null;
    }

    /// <summary>The processor brand string of leaves 0x8000_0002–4 (16 ASCII bytes each, EAX to
    /// EDX), trimmed; empty when the table has none or it is not printable ASCII.</summary>
    public static string BrandString(IReadOnlyList<CoreCpuid> table)
    {
        Span<byte> bytes = stackalloc byte[48];
        for (var leaf = 0u; leaf < 3; leaf++)
        {
            var e = table.FirstOrDefault(x => x.Function == 0x8000_0002 + leaf);
            if (e.Function == 0)
                return "";
            var part = bytes.Slice((int)leaf * 16, 16);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(part, e.Eax);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(part[4..], e.Ebx);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(part[8..], e.Ecx);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(part[12..], e.Edx);
        }
        var end = bytes.IndexOf((byte)0);
        var text = System.Text.Encoding.ASCII.GetString(end < 0 ? bytes : bytes[..end]).Trim();
        return text.All(c => c is >= ' ' and <= '~') ? text : "";
    }
}

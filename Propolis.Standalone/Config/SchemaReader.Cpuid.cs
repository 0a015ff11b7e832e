using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

internal sealed partial class SchemaReader
{
    // ---- [cpuid.NAME] ---------------------------------------------------------------------

    private CpuidProfileConfig? ReadCpuid(string name, TomlTable t)
    {
        var r = new TableReader(t, $"[cpuid.{name}]", _d);
        int before = _d.Count;
        CpuVendor? vendor = null;
        if (r.StringNode("vendor", required: true, hint: " (\"amd\" or \"intel\")") is { } v)
        {
            vendor = v.Value switch { "amd" => CpuVendor.Amd, "intel" => CpuVendor.Intel, _ => null };
            if (vendor is null)
                r.Error(v.Position, $"'vendor' must be \"amd\" or \"intel\", found \"{v.Value}\"");
        }

        var entries = new List<(CpuidEntry Entry, TomlPosition Position)>();
        foreach (var (key, value) in t.Entries)
        {
            if (key.Name == "vendor")
                continue;
            r.Node(key.Name);
            if (Values.ParseCpuidLeaf(key.Name) is not { } leaf)
            {
                r.Error(key.Position, $"'{key.Name}' is not a CPUID leaf: write the leaf in hex (\"0x7\" or \"7\"), or leaf and subleaf (\"7-0\")" +
                    (Suggest.Closest(key.Name, new[] { "vendor" }) is not null ? "; did you mean 'vendor'?" : ""));
                continue;
            }
            var regs = CpuidRegisters(r, key.Name, value);
            if (regs is null)
                continue;
            var entry = new CpuidEntry(leaf.Leaf, leaf.Subleaf, regs[0], regs[1], regs[2], regs[3]);
            var same = entries.FirstOrDefault(e => e.Entry.Leaf == entry.Leaf && e.Entry.Subleaf == entry.Subleaf);
            if (same.Entry is not null)
            {
                r.Error(key.Position, $"CPUID leaf {entry} is already set at {same.Position.Line}:{same.Position.Column}");
                continue;
            }
            var mixed = entries.FirstOrDefault(e => e.Entry.Leaf == entry.Leaf && (e.Entry.Subleaf is null) != (entry.Subleaf is null));
            if (mixed.Entry is not null)
            {
                r.Error(key.Position, $"CPUID leaf 0x{entry.Leaf:x} is set both with and without a subleaf (see {mixed.Position.Line}:{mixed.Position.Column}); use one form");
                continue;
            }
            entries.Add((entry, key.Position));
        }

        if (_d.Count != before || vendor is null)
            return null;
        return new CpuidProfileConfig(name, vendor.Value, entries.Select(e => e.Entry).ToArray());
    }

    private static uint[]? CpuidRegisters(TableReader r, string key, TomlNode value)
    {
        if (value is not TomlArray arr || arr.Count != 4)
        {
            r.Error(value.Position, $"CPUID leaf '{key}' must be an array of four integers [eax, ebx, ecx, edx], found " +
                (value is TomlArray a ? $"{a.Count} items" : value.TypeName));
            return null;
        }
        var regs = new uint[4];
        bool ok = true;
        for (int i = 0; i < 4; i++)
        {
            if (arr[i] is TomlInteger n && n.Value is >= 0 and <= uint.MaxValue)
                regs[i] = (uint)n.Value;
            else
            {
                r.Error(arr[i].Position, $"CPUID register values must be integers from 0 to 0xffffffff, found {(arr[i] is TomlInteger bad ? bad.Value.ToString(CultureInfo.InvariantCulture) : arr[i].TypeName)}");
                ok = false;
            }
        }
        return ok ? regs : null;
    }
}

using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

internal sealed partial class SchemaReader
{
    // ---- references -------------------------------------------------------------------------

    private void CheckReferences(TomlTable? main)
    {
        var blockNames = _blockDevNames.Select(b => b.Name).ToArray();

        // Each block_dev backs at most one device; each PCI function holds one device.
        var attached = new Dictionary<string, DeviceRefs>(StringComparer.Ordinal);
        var slots = new Dictionary<PciPath, DeviceRefs>();
        foreach (var dev in _deviceRefs)
        {
            if (dev.BlockDev is { } bd)
            {
                if (!blockNames.Contains(bd))
                    _d.Error(dev.BlockDevPosition, $"block_dev '{bd}' is not defined{Suggest.DidYouMean(bd, blockNames)} (defined: {Suggest.List(blockNames)})");
                else if (attached.TryGetValue(bd, out var other))
                    _d.Error(dev.BlockDevPosition, $"block_dev '{bd}' is already attached to [dev.{other.Name}]; a block_dev backs one device");
                else
                    attached.Add(bd, dev);

                if (_blockDevNames.FirstOrDefault(b => b.Name == bd).Type == "cloudinit" && !HasCloudInit)
                    _d.Error(dev.BlockDevPosition, $"block_dev '{bd}' has type \"cloudinit\" but there is no [cloudinit] section to fill it");

                // NVMe namespaces here are formatted with 512-byte or 4 KiB logical blocks only
                // (Identify Namespace LBA format 0); the front end cannot serve anything else.
                if (dev.Driver == "pci-nvme" && _blockDevSizes.TryGetValue(bd, out var size) && size.BlockSize is not (512 or 4096))
                    _d.Error(size.Position, $"block_dev '{bd}' has block_size {size.BlockSize}, but [dev.{dev.Name}] (pci-nvme) serves 512- or 4096-byte blocks only; set block_size = 512 or 4096");
            }
            if (dev.Pci is { } pci)
            {
                if (slots.TryGetValue(pci, out var other))
                    _d.Error(dev.PciPosition, $"pci-path {pci} is already used by [dev.{other.Name}]");
                else
                    slots.Add(pci, dev);
            }
        }

        var pvpanics = _deviceRefs.Where(x => x.Driver == "qemu-pvpanic").ToArray();
        foreach (var extra in pvpanics.Skip(1))
            _d.Error(extra.HeaderPosition, $"only one qemu-pvpanic device fits (ISA port 0x505); [dev.{pvpanics[0].Name}] is the first");

        // Valid but without effect: say so rather than ignore it silently.
        foreach (var (name, type, position) in _blockDevNames)
        {
            if (!attached.ContainsKey(name))
                _d.Warning(position, $"block_dev '{name}' is not attached to any [dev.*] device; it is ignored");
        }
        if (_cloudInitPosition is { } ciPos && !_blockDevNames.Any(b => b.Type == "cloudinit" && attached.ContainsKey(b.Name)))
            _d.Warning(ciPos, "[cloudinit] is unused: no device is attached to a block_dev of type \"cloudinit\"");
        foreach (var dev in _deviceRefs.Where(x => x.Driver == "qemu-pvpanic" && x.PvpanicDisabled))
            _d.Warning(dev.HeaderPosition, $"[dev.{dev.Name}] has enable_isa = false, so no pvpanic device is created");
        var selected = main?.TryGetValue("cpuid_profile", out var sel) == true && sel is TomlString sp ? sp.Value : null;
        foreach (var (name, position) in _cpuidProfiles)
        {
            if (name != selected)
                _d.Warning(position, $"[cpuid.{name}] is not selected by [main] cpuid_profile; it is ignored");
        }

        if (main is null)
            return;

        if (main.TryGetValue("cpuid_profile", out var cp) && cp is TomlString profile && !CpuidNames.Contains(profile.Value))
            _d.Error(cp.Position, $"cpuid_profile '{profile.Value}' is not defined{Suggest.DidYouMean(profile.Value, CpuidNames)} (defined [cpuid.*] profiles: {Suggest.List(CpuidNames)})");

        if (main.TryGetValue("boot_order", out var bo) && bo is TomlArray order)
        {
            var deviceNames = _deviceRefs.Select(x => x.Name).ToArray();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in order.Items)
            {
                if (item is not TomlString s)
                    continue;
                var dev = _deviceRefs.FirstOrDefault(x => x.Name == s.Value);
                if (dev is null)
                    _d.Error(s.Position, $"boot_order names device '{s.Value}', which is not defined{Suggest.DidYouMean(s.Value, deviceNames)} (defined [dev.*] devices: {Suggest.List(deviceNames)})");
                else if (!seen.Add(s.Value))
                    _d.Error(s.Position, $"boot_order lists '{s.Value}' twice");
                else if (dev.Driver is { } drv && !drv.StartsWith("pci-", StringComparison.Ordinal))
                    _d.Error(s.Position, $"boot_order names '{s.Value}', a {drv} device; only PCI devices can boot");
            }
        }
    }
}

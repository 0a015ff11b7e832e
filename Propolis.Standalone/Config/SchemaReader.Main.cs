using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

internal sealed partial class SchemaReader
{
    // ---- [main] ---------------------------------------------------------------------------

    private MainConfig? ReadMain(TomlTable t)
    {
        var r = new TableReader(t, "[main]", _d);
        int before = _d.Count;

        var name = r.NonEmptyString("name", required: true);
        var cpus = r.Integer("cpus", 1, ConfigLoader.MaxCpus, required: true);
        long? memory = null;
        if (r.Integer("memory", 1, long.MaxValue, required: true, hint: " (guest memory in MiB)") is { } mem)
        {
            if (mem > ConfigLoader.MaxMemoryMiB)
                r.Error(r.ValuePosition("memory"), $"'memory' is {mem} MiB; a guest can have at most {ConfigLoader.MaxMemoryMiB} MiB (64 TiB)");
            else
                memory = mem;
        }

        var bootrom = Bootrom(r);
        var bootromVersion = r.String("bootrom_version");
        var kernel = ExistingFile(r, "kernel", "kernel");
        var initrd = ExistingFile(r, "initrd", "initrd");
        var cmdline = r.String("cmdline");
        if (!r.Has("bootrom") && !r.Has("kernel"))
            r.Error(t.Position, "[main] needs 'bootrom' (UEFI firmware) or 'kernel' (direct kernel boot), or both");
        if (!r.Has("kernel"))
        {
            if (r.Has("initrd"))
                r.Error(r.KeyPosition("initrd"), "'initrd' needs 'kernel' (it is loaded for direct kernel boot)");
            if (r.Has("cmdline"))
                r.Error(r.KeyPosition("cmdline"), "'cmdline' needs 'kernel' (it is passed to a directly booted kernel)");
        }

        bool useReservoir = r.Bool("use_reservoir") ?? false;
        var cpuidProfile = r.String("cpuid_profile");

        var binding = CpuBinding.Any;
        if (r.StringNode("cpu_binding") is { } cb)
        {
            switch (cb.Value)
            {
                case "any": binding = CpuBinding.Any; break;
                case "upper-half": binding = CpuBinding.UpperHalf; break;
                default:
                    r.Error(cb.Position, $"'cpu_binding' must be \"any\" or \"upper-half\", found \"{cb.Value}\"{Suggest.DidYouMean(cb.Value, new[] { "any", "upper-half" }, "\"")}");
                    break;
            }
        }

        var exitOnHalt = r.Integer("exit_on_halt", 0, 255);
        var exitOnReboot = r.Integer("exit_on_reboot", 0, 255);

        var bootOrder = new List<string>();
        if (r.Array("boot_order") is { } bo)
        {
            foreach (var item in bo.Items)
            {
                if (item is TomlString s)
                    bootOrder.Add(s.Value);
                else
                    r.Error(item.Position, $"'boot_order' lists device names (strings), found {item.TypeName}");
            }
        }

        var acpi = AcpiVariant.V0;
        if (r.StringNode("acpi_variant") is { } av && av.Value != "V0")
            r.Error(av.Position, $"'acpi_variant' must be \"V0\" (the only variant), found \"{av.Value}\"");

        r.RejectUnknown();

        if (_d.Count != before)
            return null;
        return new MainConfig(name!, (int)cpus!.Value, memory!.Value, bootrom, bootromVersion, kernel, initrd, cmdline,
            useReservoir, cpuidProfile, binding, (byte)(exitOnHalt ?? 0), exitOnReboot is { } er ? (byte)er : null,
            bootOrder, acpi);
    }

    private string? Bootrom(TableReader r)
    {
        var path = ExistingFile(r, "bootrom", "bootrom");
        if (path is null)
            return null;
        var pos = r.ValuePosition("bootrom");
        long len = new FileInfo(path).Length;
        var shown = Show(((TomlString)r.Table["bootrom"]).Value, path);
        if (len == 0)
        {
            r.Error(pos, $"bootrom {shown} is empty");
            return null;
        }
        if (len % 4096 != 0)
        {
            r.Error(pos, $"bootrom {shown} is {len} bytes, not a multiple of 4 KiB");
            return null;
        }
        if (len > ConfigLoader.MaxBootromBytes)
        {
            r.Error(pos, $"bootrom {shown} is {Values.FormatSize(len)}, larger than the {Values.FormatSize(ConfigLoader.MaxBootromBytes)} ROM region");
            return null;
        }
        return path;
    }
}

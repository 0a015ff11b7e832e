using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

/// <summary>One pass over the document; state for cross-references.</summary>
internal sealed partial class SchemaReader
{
    private static readonly string[] Sections = { "main", "block_dev", "dev", "cpuid", "cloudinit" };

    private static readonly string[] CommonBlockKeys = { "type", "block_size", "read_only", "skip_flush" };

    private static readonly (string Type, string[] Keys)[] BlockTypes =
    {
        ("file", new[] { "path", "workers" }),
        ("crucible", new[]
        {
            "blocks_per_extent", "extent_count", "targets", "generation", "upstairs_id", "lossy",
            "flush_timeout", "encryption_key", "cert_pem", "key_pem", "root_cert_pem", "control_addr",
        }),
        ("crucible-mem", new[] { "size" }),
        ("mem-async", new[] { "size", "workers" }),
        ("cloudinit", System.Array.Empty<string>()),
    };

    private static readonly (string Driver, string[] Keys)[] Drivers =
    {
        ("pci-nvme", new[] { "block_dev", "pci-path" }),
        ("pci-virtio-block", new[] { "block_dev", "pci-path" }),
        ("pci-virtio-viona", new[] { "vnic", "pci-path", "rx-queue-size", "tx-queue-size", "tx_copy_data", "tx_header_pad", "mac", "vhost" }),
        ("qemu-pvpanic", new[] { "enable_isa" }),
        ("pci-virtio-socket", new[] { "pci-path", "guest_cid", "port_mappings" }),
    };

    private static readonly string[] MainKeys =
    {
        "name", "cpus", "memory", "bootrom", "bootrom_version", "kernel", "initrd", "cmdline",
        "use_reservoir", "cpuid_profile", "cpu_binding", "exit_on_halt", "exit_on_reboot",
        "boot_order", "acpi_variant",
    };

    private static readonly string[] CloudInitItems = { "user-data", "meta-data", "network-config" };

    private readonly Diagnostics _d;
    private readonly string _baseDir;

    // Everything defined, valid or not, so that a broken definition does not also produce
    // "unknown reference" errors at each use.
    private readonly List<(string Name, string? Type, TomlPosition Position)> _blockDevNames = new();
    /// <summary>Each block_dev's block size and where it was set (the table header when defaulted).</summary>
    private readonly Dictionary<string, (int BlockSize, TomlPosition Position)> _blockDevSizes = new(StringComparer.Ordinal);
    private readonly List<DeviceRefs> _deviceRefs = new();
    private readonly List<(string Name, TomlPosition Position)> _cpuidProfiles = new();
    private TomlPosition? _cloudInitPosition;
    private bool HasCloudInit => _cloudInitPosition is not null;
    private IEnumerable<string> CpuidNames => _cpuidProfiles.Select(p => p.Name);

    private sealed record DeviceRefs(string Name, string? Driver, TomlPosition HeaderPosition)
    {
        public string? BlockDev { get; set; }
        public TomlPosition BlockDevPosition { get; set; }
        public PciPath? Pci { get; set; }
        public TomlPosition PciPosition { get; set; }
        public bool PvpanicDisabled { get; set; }
    }

    public SchemaReader(Diagnostics d, string baseDirectory)
    {
        _d = d;
        _baseDir = baseDirectory;
    }

    public StandaloneConfig? Read(TomlTable root, string fileName)
    {
        MainConfig? main = null;
        (TomlTable Table, TomlPosition KeyPosition)? mainTable = null;
        var blockDevs = new List<BlockDevConfig>();
        var devices = new List<DeviceConfig>();
        var cpuids = new List<CpuidProfileConfig>();
        CloudInitConfig? cloudInit = null;

        foreach (var (key, node) in root.Entries)
        {
            switch (key.Name)
            {
                case "main":
                    if (ExpectTable(node, "main") is { } mt)
                        mainTable = (mt, key.Position);
                    break;
                case "block_dev":
                    foreach (var (name, t) in SubTables(node, "block_dev"))
                    {
                        if (ReadBlockDev(name, t) is { } b)
                            blockDevs.Add(b);
                    }
                    break;
                case "dev":
                    foreach (var (name, t) in SubTables(node, "dev"))
                    {
                        if (ReadDevice(name, t) is { } dev)
                            devices.Add(dev);
                    }
                    break;
                case "cpuid":
                    foreach (var (name, t) in SubTables(node, "cpuid"))
                    {
                        _cpuidProfiles.Add((name, t.Position));
                        if (ReadCpuid(name, t) is { } p)
                            cpuids.Add(p);
                    }
                    break;
                case "cloudinit":
                    _cloudInitPosition = node.Position;
                    if (ExpectTable(node, "cloudinit") is { } ct)
                        cloudInit = ReadCloudInit(ct);
                    break;
                default:
                    UnknownTopLevel(key, node);
                    break;
            }
        }

        if (mainTable is { } m)
            main = ReadMain(m.Table);
        else
            _d.Error(new TomlPosition(1, 1), "missing required section [main] (name, cpus, memory, and bootrom or kernel)");

        CheckReferences(mainTable?.Table);

        if (_d.HasErrors || main is null)
            return null;
        return new StandaloneConfig(Path.Combine(_baseDir, Path.GetFileName(fileName)), main, blockDevs, devices, cpuids, cloudInit)
        {
            Warnings = _d.SortedWarnings(),
        };
    }

    private void UnknownTopLevel(TomlKey key, TomlNode node)
    {
        if (node is TomlTable)
        {
            var near = Suggest.Closest(key.Name, Sections);
            _d.Error(key.Position, near is null
                ? $"unknown section [{key.Name}]; sections are {string.Join(", ", Sections.Select(s => $"[{s}]"))}"
                : $"unknown section [{key.Name}]; did you mean [{near}]?");
            return;
        }
        if (MainKeys.Contains(key.Name))
        {
            _d.Error(key.Position, $"key '{key.Name}' is outside any section; it belongs in [main]");
            return;
        }
        _d.Error(key.Position, $"unknown key '{key.Name}' outside any section; sections are {string.Join(", ", Sections.Select(s => $"[{s}]"))}");
    }

    private TomlTable? ExpectTable(TomlNode node, string name)
    {
        if (node is TomlTable t)
            return t;
        _d.Error(node.Position, $"'{name}' must be a table ([{name}]), found {node.TypeName}");
        return null;
    }

    /// <summary>The NAME tables of <c>[kind.NAME]</c>.</summary>
    private IEnumerable<(string Name, TomlTable Table)> SubTables(TomlNode node, string kind)
    {
        if (ExpectTable(node, kind) is not { } parent)
            yield break;
        foreach (var (key, value) in parent.Entries)
        {
            if (value is TomlTable t)
                yield return (key.Name, t);
            else
                _d.Error(value.Position, $"'{kind}.{key.Name}' must be a table ([{kind}.{key.Name}]), found {value.TypeName}");
        }
    }

    // ---- paths ----------------------------------------------------------------------------

    private string Resolve(string path) => Path.GetFullPath(path, _baseDir);

    private static string Show(string written, string resolved) =>
        Path.IsPathRooted(written) ? $"'{written}'" : $"'{written}' ({resolved})";

    private enum FileUse { Read, ReadWrite }

    /// <summary>A path key naming an existing readable file; returns the absolute path.</summary>
    private string? ExistingFile(TableReader r, string key, string what, bool required = false,
        FileUse use = FileUse.Read)
    {
        var node = r.StringNode(key, required);
        if (node is null)
            return null;
        if (node.Value.Length == 0)
        {
            r.Error(node.Position, $"'{key}' must not be empty");
            return null;
        }
        if (node.Value.Contains('\0'))
        {
            r.Error(node.Position, $"'{key}' contains a NUL character, which no path can");
            return null;
        }
        var resolved = Resolve(node.Value);
        var shown = Show(node.Value, resolved);
        if (Directory.Exists(resolved))
        {
            r.Error(node.Position, $"{what} {shown} is a directory");
            return null;
        }
        if (!File.Exists(resolved))
        {
            r.Error(node.Position, $"{what} {shown} does not exist");
            return null;
        }
        try
        {
            using var h = File.OpenHandle(resolved, FileMode.Open,
                use == FileUse.ReadWrite ? FileAccess.ReadWrite : FileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var mode = use == FileUse.ReadWrite ? "open for reading and writing" : "read";
            var hint = use == FileUse.ReadWrite ? " (set read_only = true to open it read-only)" : "";
            r.Error(node.Position, $"cannot {mode} {what} {shown}: {Values.DescribeIoError(e)}{hint}");
            return null;
        }
        return resolved;
    }
}

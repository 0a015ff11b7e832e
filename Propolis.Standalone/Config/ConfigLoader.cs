using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

/// <summary>Turns a TOML document into a <see cref="StandaloneConfig"/>, checking everything
/// that can be checked before the machine is built and reporting every problem of the file
/// in one <see cref="ConfigException"/>.</summary>
/// <remarks>Relative paths (bootrom, kernel, initrd, file block devices, PEM files,
/// cloud-init files) are resolved against the directory holding the configuration file, so
/// a configuration works the same from any working directory.</remarks>
public static class ConfigLoader
{
    /// <summary>The largest bootrom the ROM region below 4 GiB takes.</summary>
    public const long MaxBootromBytes = 16L << 20;
    public const int MaxCpus = 32;
    /// <summary>64 TiB, comfortably inside what KVM guests can address.</summary>
    public const long MaxMemoryMiB = 64L << 20;
    public const int MinBlockSize = 512;
    public const int MaxBlockSize = 32768;
    public const int DefaultBlockSize = 512;
    /// <summary>The cloud-init volume holds at most 512 sectors of file data (upstream limit).</summary>
    public const int MaxCloudInitSectors = 512;

    /// <summary>Reads and loads a file. I/O errors on the file itself propagate as
    /// exceptions; problems in its content throw <see cref="ConfigException"/>.</summary>
    public static StandaloneConfig LoadFile(string path)
    {
        var text = ReadText(path);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? Directory.GetCurrentDirectory();
        return Load(text, path, dir);
    }

    /// <summary>The file as strict UTF-8.</summary>
    public static string ReadText(string path)
    {
        var bytes = File.ReadAllBytes(path);
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new InvalidDataException("not valid UTF-8");
        }
    }

    /// <summary>Parses and validates <paramref name="text"/>; <paramref name="fileName"/>
    /// names the file in messages and <paramref name="baseDirectory"/> anchors relative paths.</summary>
    public static StandaloneConfig Load(string text, string fileName, string baseDirectory)
    {
        TomlTable root;
        try
        {
            root = TomlParser.Parse(text, fileName);
        }
        catch (TomlException e)
        {
            throw new ConfigException(new[] { new ConfigError(fileName, e.Position, e.Reason) });
        }
        return Load(root, fileName, baseDirectory);
    }

    /// <summary>Validates an already parsed document.</summary>
    public static StandaloneConfig Load(TomlTable root, string fileName, string baseDirectory)
    {
        var d = new Diagnostics(fileName);
        var config = new SchemaReader(d, baseDirectory).Read(root, fileName);
        if (d.HasErrors || config is null)
            throw new ConfigException(d.Sorted());
        return config;
    }
}

/// <summary>The fixed PCI functions of the i440FX/PIIX3 chipset.</summary>
public static class ChipsetSlots
{
    public static readonly PciPath HostBridge = new(0, 0, 0);
    public static readonly PciPath Lpc = new(0, 1, 0);
    public static readonly PciPath PowerManagement = new(0, 1, 3);

    /// <summary>The chipset owns devices 0 and 1 of bus 0 (every function).</summary>
    public static string? OwnerOf(PciPath path) => (path.Bus, path.Device) switch
    {
        (0, 0) => "the i440fx host bridge",
        (0, 1) => "the piix3 lpc and power management functions",
        _ => null,
    };

    public const int FirstFreeDevice = 2;
}

/// <summary>One pass over the document; state for cross-references.</summary>
internal sealed class SchemaReader
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
        ("pci-virtio-viona", new[] { "vnic", "pci-path", "rx-queue-size", "tx-queue-size", "tx_copy_data", "tx_header_pad", "mac" }),
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

    // ---- [block_dev.NAME] -----------------------------------------------------------------

    private static string[]? KeysOfType(string type) =>
        BlockTypes.FirstOrDefault(b => b.Type == type).Keys;

    private BlockDevConfig? ReadBlockDev(string name, TomlTable t)
    {
        var r = new TableReader(t, $"[block_dev.{name}]", _d);
        int before = _d.Count;

        var typeNode = r.StringNode("type", required: true, hint: $" ({string.Join(", ", BlockTypes.Select(b => $"\"{b.Type}\""))})");
        string? type = typeNode?.Value;
        if (typeNode is not null && KeysOfType(typeNode.Value) is null)
        {
            r.Error(typeNode.Position, $"unknown block_dev type \"{typeNode.Value}\"{Suggest.DidYouMean(typeNode.Value, BlockTypes.Select(b => b.Type), "\"")} (types: {string.Join(", ", BlockTypes.Select(b => b.Type))})");
            type = null;
        }
        _blockDevNames.Add((name, type, t.Position));

        bool crucible = type == "crucible";
        int? blockSize = BlockSize(r, required: crucible);
        bool readOnly = r.Bool("read_only") ?? false;
        bool skipFlush = r.Bool("skip_flush") ?? false;

        if (type is null)
        {
            // Without a type only the keys no type knows can be called wrong.
            foreach (var (key, _) in t.Entries)
            {
                if (!CommonBlockKeys.Contains(key.Name) && !BlockTypes.Any(b => b.Keys.Contains(key.Name)))
                    r.Error(key.Position, $"unknown key '{key.Name}' in {r.Section}{Suggest.DidYouMean(key.Name, CommonBlockKeys.Concat(BlockTypes.SelectMany(b => b.Keys)))}");
            }
            return null;
        }

        int bs = blockSize ?? ConfigLoader.DefaultBlockSize;
        BlockDevConfig? result = type switch
        {
            "file" => ReadFileBlockDev(r, name, bs, readOnly, skipFlush),
            "crucible" => ReadCrucible(r, name, bs, readOnly, skipFlush),
            "crucible-mem" => Size(r, bs) is { } size ? new CrucibleMemBlockDev(name, bs, readOnly, skipFlush, size) : null,
            "mem-async" => ReadMemAsync(r, name, bs, readOnly, skipFlush),
            "cloudinit" => new CloudInitBlockDev(name, bs, readOnly, skipFlush),
            _ => null,
        };

        r.RejectUnknown(key =>
        {
            var owner = BlockTypes.FirstOrDefault(b => b.Keys.Contains(key)).Type;
            return owner is null ? null : $"key '{key}' is not valid for block_dev type '{type}' (it belongs to type '{owner}')";
        });

        if (_d.Count != before || result is null)
            return null;
        return result with { Position = t.Position };
    }

    private static int? BlockSize(TableReader r, bool required)
    {
        var v = r.Integer("block_size", 0, long.MaxValue, required,
            required ? " (it must match the block size of the downstairs regions)" : null);
        if (v is null)
            return null;
        if (v < ConfigLoader.MinBlockSize || v > ConfigLoader.MaxBlockSize || (v & (v - 1)) != 0)
        {
            r.Error(r.ValuePosition("block_size"), $"'block_size' must be a power of two from {ConfigLoader.MinBlockSize} to {ConfigLoader.MaxBlockSize}, found {v}");
            return null;
        }
        return (int)v;
    }

    private static long? Size(TableReader r, int blockSize)
    {
        var size = r.Integer("size", 1, long.MaxValue, required: true, hint: " (in bytes)");
        if (size is null)
            return null;
        if (size % blockSize != 0)
        {
            r.Error(r.ValuePosition("size"), $"'size' must be a multiple of the block size ({blockSize}), found {size}");
            return null;
        }
        return size;
    }

    private static int Workers(TableReader r) =>
        (int)(r.Integer("workers", 1, FileBlockDev.MaxWorkers) ?? FileBlockDev.DefaultWorkers);

    private FileBlockDev? ReadFileBlockDev(TableReader r, string name, int bs, bool readOnly, bool skipFlush)
    {
        var path = ExistingFile(r, "path", "disk image", required: true,
            use: readOnly ? FileUse.Read : FileUse.ReadWrite);
        int workers = Workers(r);
        return path is null ? null : new FileBlockDev(name, bs, readOnly, skipFlush, path, workers);
    }

    private MemAsyncBlockDev? ReadMemAsync(TableReader r, string name, int bs, bool readOnly, bool skipFlush)
    {
        var size = Size(r, bs);
        int workers = Workers(r);
        return size is null ? null : new MemAsyncBlockDev(name, bs, readOnly, skipFlush, size.Value, workers);
    }

    private CrucibleBlockDev? ReadCrucible(TableReader r, string name, int bs, bool readOnly, bool skipFlush)
    {
        int before = _d.Count;
        const string regionHint = " (it must match the downstairs regions)";
        var bpe = r.Integer("blocks_per_extent", 1, long.MaxValue, required: true, hint: regionHint);
        var extents = r.Integer("extent_count", 1, uint.MaxValue, required: true, hint: regionHint);

        var targets = new List<System.Net.IPEndPoint>();
        if (r.Array("targets", required: true) is { } arr)
        {
            if (arr.Count != 3)
                r.Error(arr.Position, $"'targets' must list exactly 3 downstairs addresses, found {arr.Count}");
            foreach (var item in arr.Items)
            {
                if (item is not TomlString s)
                {
                    r.Error(item.Position, $"'targets' lists socket addresses (strings), found {item.TypeName}");
                    continue;
                }
                if (SocketAddress(r, s, "targets") is not { } ep)
                    continue;
                if (targets.Any(x => x.Equals(ep)))
                    r.Error(s.Position, $"downstairs {s.Value} is listed twice in 'targets'; the three must be distinct");
                targets.Add(ep);
            }
        }

        var generation = r.Integer("generation", 0, long.MaxValue, required: true,
            hint: " (it must grow with every connection to the downstairs)");

        Guid? upstairsId = null;
        if (r.StringNode("upstairs_id") is { } uid)
        {
            upstairsId = Values.ParseUuid(uid.Value);
            if (upstairsId is null)
                r.Error(uid.Position, $"'upstairs_id' must be a UUID such as \"e4396bd0-ede1-48d7-ac14-3d2094dfba5b\", found \"{uid.Value}\"");
        }

        bool lossy = r.Bool("lossy") ?? false;
        double? flushTimeout = r.PositiveNumber("flush_timeout");

        byte[]? key = null;
        if (r.StringNode("encryption_key") is { } ek)
        {
            var buffer = new byte[ek.Value.Length];
            if (!Convert.TryFromBase64String(ek.Value, buffer, out int n))
                r.Error(ek.Position, "'encryption_key' must be base64 (create one with: openssl rand -base64 32)");
            else if (n != 32)
                r.Error(ek.Position, $"'encryption_key' must decode to 32 bytes (256 bits), found {n} bytes");
            else
                key = buffer[..32];
        }

        var cert = ExistingFile(r, "cert_pem", "certificate");
        var keyPem = ExistingFile(r, "key_pem", "private key");
        var root = ExistingFile(r, "root_cert_pem", "root certificate");
        string[] tlsKeys = { "cert_pem", "key_pem", "root_cert_pem" };
        var present = tlsKeys.Where(r.Has).ToArray();
        if (present.Length is > 0 and < 3)
        {
            var missing = tlsKeys.Except(present);
            r.Error(r.KeyPosition(present[0]), $"TLS needs 'cert_pem', 'key_pem' and 'root_cert_pem' together; missing {string.Join(", ", missing.Select(m => $"'{m}'"))}");
        }

        System.Net.IPEndPoint? control = null;
        if (r.StringNode("control_addr") is { } ca)
            control = SocketAddress(r, ca, "control_addr");

        if (_d.Count == before && (UInt128)(ulong)bpe!.Value * (ulong)extents!.Value * (ulong)bs > long.MaxValue)
            r.Error(r.ValuePosition("extent_count"), $"the region ({extents} extents of {bpe} blocks of {bs} bytes) is larger than 2^63 bytes");
        if (_d.Count != before)
            return null;
        var tls = cert is not null && keyPem is not null && root is not null ? new CrucibleTls(cert, keyPem, root) : null;
        return new CrucibleBlockDev(name, bs, readOnly, skipFlush, (ulong)bpe!.Value, (uint)extents!.Value, targets,
            (ulong)generation!.Value, upstairsId, lossy, flushTimeout, key, tls, control);
    }

    private static System.Net.IPEndPoint? SocketAddress(TableReader r, TomlString s, string key)
    {
        var ep = Values.ParseSocketAddress(s.Value, out var reason);
        if (ep is null)
            r.Error(s.Position, $"'{key}': \"{s.Value}\" is not a socket address: {reason}");
        return ep;
    }

    // ---- [dev.NAME] -----------------------------------------------------------------------

    private DeviceConfig? ReadDevice(string name, TomlTable t)
    {
        var r = new TableReader(t, $"[dev.{name}]", _d);
        int before = _d.Count;

        var driverNode = r.StringNode("driver", required: true, hint: $" ({string.Join(", ", Drivers.Select(x => $"\"{x.Driver}\""))})");
        string? driver = driverNode?.Value;
        if (driverNode is not null && !Drivers.Any(x => x.Driver == driverNode.Value))
        {
            r.Error(driverNode.Position, $"unknown driver \"{driverNode.Value}\"{Suggest.DidYouMean(driverNode.Value, Drivers.Select(x => x.Driver), "\"")} (drivers: {string.Join(", ", Drivers.Select(x => x.Driver))})");
            driver = null;
        }
        var refs = new DeviceRefs(name, driver, t.Position);
        _deviceRefs.Add(refs);

        if (driver is null)
        {
            foreach (var (key, _) in t.Entries)
            {
                if (key.Name != "driver" && !Drivers.Any(x => x.Keys.Contains(key.Name)))
                    r.Error(key.Position, $"unknown key '{key.Name}' in {r.Section}{Suggest.DidYouMean(key.Name, Drivers.SelectMany(x => x.Keys).Append("driver"))}");
            }
            return null;
        }

        var keys = Drivers.First(x => x.Driver == driver).Keys;
        PciPath? pci = null;
        if (keys.Contains("pci-path"))
        {
            pci = ReadPciPath(r);
            refs.Pci = pci;
            refs.PciPosition = r.ValuePosition("pci-path");
        }
        string? blockDev = null;
        if (keys.Contains("block_dev"))
        {
            blockDev = r.NonEmptyString("block_dev", required: true);
            refs.BlockDev = blockDev;
            refs.BlockDevPosition = r.ValuePosition("block_dev");
        }

        DeviceConfig? result = driver switch
        {
            "pci-nvme" when pci is { } p && blockDev is not null => new NvmeDeviceConfig(name, p, blockDev),
            "pci-virtio-block" when pci is { } p && blockDev is not null => new VirtioBlockDeviceConfig(name, p, blockDev),
            "pci-virtio-viona" => ReadViona(r, name, pci),
            "qemu-pvpanic" => Pvpanic(r, name, refs),
            "pci-virtio-socket" => ReadVsock(r, name, pci),
            _ => null,
        };

        r.RejectUnknown(key =>
        {
            var owners = Drivers.Where(x => x.Keys.Contains(key)).Select(x => x.Driver).ToArray();
            return owners.Length == 0 ? null
                : $"key '{key}' is not valid for driver '{driver}' (it belongs to {string.Join(", ", owners.Select(o => $"'{o}'"))})";
        });

        if (_d.Count != before || result is null)
            return null;
        return result with { Position = t.Position };
    }

    private static PvpanicDeviceConfig Pvpanic(TableReader r, string name, DeviceRefs refs)
    {
        bool enabled = r.Bool("enable_isa") ?? false;
        refs.PvpanicDisabled = !enabled;
        return new PvpanicDeviceConfig(name, enabled);
    }

    private static PciPath? ReadPciPath(TableReader r)
    {
        var node = r.StringNode("pci-path", required: true, hint: " (\"0.DEVICE.0\" with DEVICE from 2 to 31)");
        if (node is null)
            return null;
        var parts = node.Value.Split('.');
        var nums = new int[3];
        bool ok = parts.Length == 3;
        for (int i = 0; ok && i < 3; i++)
        {
            ok = parts[i].Length is > 0 and <= 3 && parts[i].All(char.IsAsciiDigit);
            if (ok)
                nums[i] = int.Parse(parts[i], CultureInfo.InvariantCulture);
        }
        if (!ok)
        {
            r.Error(node.Position, $"'pci-path' must be \"bus.device.function\" in decimal, such as \"0.4.0\", found \"{node.Value}\"");
            return null;
        }
        var (bus, dev, fn) = (nums[0], nums[1], nums[2]);
        if (bus != 0)
        {
            r.Error(node.Position, $"pci-path {node.Value}: bus {bus} does not exist; devices go on bus 0 (there are no PCI bridges)");
            return null;
        }
        if (dev > PciPath.MaxDevice)
        {
            r.Error(node.Position, $"pci-path {node.Value}: device must be from 0 to {PciPath.MaxDevice}, found {dev}");
            return null;
        }
        if (fn > PciPath.MaxFunction)
        {
            r.Error(node.Position, $"pci-path {node.Value}: function must be from 0 to {PciPath.MaxFunction}, found {fn}");
            return null;
        }
        var path = new PciPath((byte)bus, (byte)dev, (byte)fn);
        if (ChipsetSlots.OwnerOf(path) is { } owner)
        {
            r.Error(node.Position, $"pci-path {path} belongs to the chipset ({owner}); use a device number from {ChipsetSlots.FirstFreeDevice} to {PciPath.MaxDevice}");
            return null;
        }
        return path;
    }

    private static int QueueSize(TableReader r, string key, int defaultSize)
    {
        var v = r.Integer(key, 1, VirtioNetDeviceConfig.MaxQueueSize);
        if (v is null)
            return defaultSize;
        if ((v & (v - 1)) != 0)
        {
            r.Error(r.ValuePosition(key), $"'{key}' must be a power of two, found {v}");
            return defaultSize;
        }
        return (int)v;
    }

    private static VirtioNetDeviceConfig? ReadViona(TableReader r, string name, PciPath? pci)
    {
        var vnic = r.NonEmptyString("vnic", required: true);
        int rx = QueueSize(r, "rx-queue-size", VirtioNetDeviceConfig.DefaultRxQueueSize);
        int tx = QueueSize(r, "tx-queue-size", VirtioNetDeviceConfig.DefaultTxQueueSize);
        bool copy = r.Bool("tx_copy_data") ?? true;
        var pad = r.Integer("tx_header_pad", 0, ushort.MaxValue) ?? 0;
        byte[]? mac = null;
        if (r.StringNode("mac") is { } m)
        {
            mac = Values.ParseMac(m.Value);
            if (mac is null)
                r.Error(m.Position, $"'mac' must be six hex bytes \"xx:xx:xx:xx:xx:xx\", found \"{m.Value}\"");
            else if ((mac[0] & 1) != 0)
            {
                r.Error(m.Position, $"'mac' {m.Value} is a multicast address; a NIC needs a unicast one (first byte even)");
                mac = null;
            }
        }
        if (pci is not { } p || vnic is null)
            return null;
        return new VirtioNetDeviceConfig(name, p, vnic, rx, tx, copy, (ushort)pad, mac);
    }

    private static VirtioSocketDeviceConfig? ReadVsock(TableReader r, string name, PciPath? pci)
    {
        // CIDs 0-2 are reserved by the virtio spec (§5.10.4); 0xffffffff is VMADDR_CID_ANY.
        var cid = r.Integer("guest_cid", 3, uint.MaxValue - 1, required: true);
        var mappings = new List<VsockPortMapping>();
        if (r.Array("port_mappings") is { } arr)
        {
            foreach (var item in arr.Items)
            {
                if (item is not TomlTable t)
                {
                    r.Error(item.Position, $"'port_mappings' lists tables such as {{ port = 22, addr = \"127.0.0.1:2222\" }}, found {item.TypeName}");
                    continue;
                }
                var mr = new TableReader(t, $"a port mapping of {r.Section}", r.Diagnostics);
                var port = mr.Integer("port", 0, uint.MaxValue, required: true);
                System.Net.IPEndPoint? addr = null;
                if (mr.StringNode("addr", required: true) is { } a)
                    addr = SocketAddress(mr, a, "addr");
                mr.RejectUnknown();
                if (port is null || addr is null)
                    continue;
                if (mappings.Any(x => x.Port == port))
                {
                    r.Error(mr.ValuePosition("port"), $"vsock port {port} is mapped twice");
                    continue;
                }
                mappings.Add(new VsockPortMapping((uint)port.Value, addr));
            }
        }
        if (pci is not { } p || cid is null)
            return null;
        return new VirtioSocketDeviceConfig(name, p, (uint)cid.Value, mappings);
    }

    // ---- [cloudinit] ----------------------------------------------------------------------

    private CloudInitConfig? ReadCloudInit(TomlTable t)
    {
        var r = new TableReader(t, "[cloudinit]", _d);
        int before = _d.Count;
        var items = new CloudInitSource?[CloudInitItems.Length];
        long sectors = 0;
        for (int i = 0; i < CloudInitItems.Length; i++)
        {
            var item = CloudInitItems[i];
            var inline = r.String(item);
            var path = ExistingFile(r, item + "-path", item + " file");
            if (r.Has(item) && r.Has(item + "-path"))
            {
                r.Error(r.KeyPosition(item + "-path"), $"'{item}' and '{item}-path' are both set; use one");
                continue;
            }
            if (inline is not null)
            {
                items[i] = new CloudInitSource.Inline(inline);
                sectors += (Encoding.UTF8.GetByteCount(inline) + 511) / 512;
            }
            else if (path is not null)
            {
                items[i] = new CloudInitSource.FromFile(path);
                sectors += (new FileInfo(path).Length + 511) / 512;
            }
        }
        if (sectors > ConfigLoader.MaxCloudInitSectors)
            r.Error(t.Position, $"cloud-init data takes {sectors} sectors of 512 bytes; the cidata volume holds at most {ConfigLoader.MaxCloudInitSectors} (256 KiB)");
        r.RejectUnknown();
        return _d.Count != before ? null : new CloudInitConfig(items[0], items[1], items[2]);
    }

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

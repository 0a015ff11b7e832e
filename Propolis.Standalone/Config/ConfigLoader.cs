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

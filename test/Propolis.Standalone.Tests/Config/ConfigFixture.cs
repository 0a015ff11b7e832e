using Propolis.Standalone.Config;

namespace Propolis.Standalone.Tests.Config;

/// <summary>A scratch directory with the files configurations point at: firmware, a kernel
/// and initrd, a disk image. Configurations are loaded as "vm.toml" in this directory.</summary>
public sealed class ConfigFixture : IDisposable
{
    public const string FileName = "vm.toml";

    public ConfigFixture()
    {
        Dir = Path.Combine(Path.GetTempPath(), "propolis-config-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
        Write("OVMF_CODE.fd", 64 * 1024);
        Write("vmlinuz", 1000);
        Write("initramfs.img", 3000);
        Write("disk.raw", 1 << 20);
    }

    public string Dir { get; }

    public string PathOf(string name) => Path.Combine(Dir, name);

    public string Write(string name, int length)
    {
        var path = PathOf(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, new byte[length]);
        return path;
    }

    public string WriteText(string name, string text)
    {
        var path = PathOf(name);
        File.WriteAllText(path, text);
        return path;
    }

    public StandaloneConfig Load(string toml) => ConfigLoader.Load(toml, FileName, Dir);

    /// <summary>Every error of <paramref name="toml"/> as printed: FILE:LINE:COL: message.</summary>
    public string[] Errors(string toml)
    {
        var e = Assert.Throws<ConfigException>(() => Load(toml));
        return e.Errors.Select(x => x.ToString()).ToArray();
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
    }
}

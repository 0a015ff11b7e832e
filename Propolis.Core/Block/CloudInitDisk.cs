using System.Text;
using Microsoft.Extensions.Logging;

namespace Propolis.Core.Block;

/// <summary>A cloud-init NoCloud seed disk (cloud-init docs, "NoCloud": a vfat or iso9660 file system
/// labelled <c>cidata</c> holding <c>user-data</c>, <c>meta-data</c> and optionally
/// <c>network-config</c>), built in memory as FAT12 and served read-only.</summary>
public static class CloudInitDisk
{
    public const string Kind = "cloudinit";
    public const string VolumeLabel = "cidata";

    /// <summary>The FAT12 image. <paramref name="userData"/> and <paramref name="metaData"/> are always
    /// written (empty if empty: NoCloud requires both files); network-config only if given.</summary>
    public static byte[] BuildImage(string userData, string metaData, string? networkConfig = null)
    {
        ArgumentNullException.ThrowIfNull(userData);
        ArgumentNullException.ThrowIfNull(metaData);
        var files = new List<Fat12File>
        {
            new("user-data", Encoding.UTF8.GetBytes(userData)),
            new("meta-data", Encoding.UTF8.GetBytes(metaData)),
        };
        if (networkConfig is not null)
        {
            files.Add(new Fat12File("network-config", Encoding.UTF8.GetBytes(networkConfig)));
        }
        return Fat12Image.Build(VolumeLabel, files);
    }

    /// <summary>A read-only in-memory backend holding <see cref="BuildImage"/>'s volume.</summary>
    public static MemoryBackend Create(string userData, string metaData, string? networkConfig = null, int workers = 1, ILogger? logger = null) =>
        MemoryBackend.FromContents(Kind, BuildImage(userData, metaData, networkConfig),
            new BlockBackendOptions { ReadOnly = true, Workers = workers }, logger);
}

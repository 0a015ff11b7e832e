namespace Propolis.Core.Hw.Virtio;

/// <summary>Device configuration space reads shared by the device types (virtio 1.2 §4.1.4.6,
/// §4.1.4.8): bytes past the end of the structure read as 0.</summary>
public static class VirtioConfigSpace
{
    /// <summary>Copies <paramref name="data"/>.Length bytes of <paramref name="config"/> from
    /// <paramref name="offset"/>; whatever lies outside it reads as 0.</summary>
    public static void Read(ReadOnlySpan<byte> config, int offset, Span<byte> data)
    {
        data.Clear();
        if (offset < 0 || offset >= config.Length)
        {
            return;
        }
        var n = Math.Min(data.Length, config.Length - offset);
        config.Slice(offset, n).CopyTo(data);
    }
}

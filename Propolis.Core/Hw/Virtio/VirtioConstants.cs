namespace Propolis.Core.Hw.Virtio;

/// <summary>Device status bits (virtio 1.2 §2.1).</summary>
[Flags]
public enum DeviceStatus : byte
{
    Reset = 0,
    Acknowledge = 1,
    Driver = 2,
    DriverOk = 4,
    FeaturesOk = 8,
    DeviceNeedsReset = 64,
    Failed = 128,
}

/// <summary>Feature bits shared by all device types (virtio 1.2 §6) and the ring features
/// (§2.7.5.3, §2.7.7, §2.7.10).</summary>
public static class VirtioFeatures
{
    /// <summary>VIRTIO_F_NOTIFY_ON_EMPTY (legacy only, §6.3).</summary>
    public const ulong NotifyOnEmpty = 1UL << 24;

    /// <summary>VIRTIO_F_ANY_LAYOUT (legacy only, §6.3): message framing does not depend on descriptor boundaries.</summary>
    public const ulong AnyLayout = 1UL << 27;

    /// <summary>VIRTIO_F_INDIRECT_DESC (§2.7.5.3).</summary>
    public const ulong RingIndirectDesc = 1UL << 28;

    /// <summary>VIRTIO_F_EVENT_IDX (§2.7.7, §2.7.10).</summary>
    public const ulong RingEventIdx = 1UL << 29;

    /// <summary>VIRTIO_F_VERSION_1 (§6): the modern interface; bit 32, so invisible to a legacy driver.</summary>
    public const ulong Version1 = 1UL << 32;
}

/// <summary>Virtqueue descriptor flags (virtio 1.2 §2.7.5).</summary>
[Flags]
public enum DescriptorFlags : ushort
{
    None = 0,
    /// <summary>VIRTQ_DESC_F_NEXT: the buffer continues in the descriptor named by <c>next</c>.</summary>
    Next = 1,
    /// <summary>VIRTQ_DESC_F_WRITE: device write-only (otherwise device read-only).</summary>
    Write = 2,
    /// <summary>VIRTQ_DESC_F_INDIRECT: the buffer is a table of descriptors (§2.7.5.3).</summary>
    Indirect = 4,
}

/// <summary>Ring flag words (virtio 1.2 §2.7.6, §2.7.8).</summary>
public static class RingFlags
{
    /// <summary>VIRTQ_AVAIL_F_NO_INTERRUPT: the driver asks not to be interrupted (ignored with EVENT_IDX).</summary>
    public const ushort AvailNoInterrupt = 1;

    /// <summary>VIRTQ_USED_F_NO_NOTIFY: the device asks not to be notified (ignored with EVENT_IDX).</summary>
    public const ushort UsedNoNotify = 1;
}

namespace Propolis.Core.Hw.Virtio;

/// <summary>A virtio device type as the transport sees it (virtio 1.2 §2, §4.1): its id, features,
/// queues and configuration space. The transport owns status, feature negotiation and interrupts.</summary>
public interface IVirtioDevice
{
    /// <summary>The virtio device id (§5: 2 for block).</summary>
    ushort DeviceId { get; }

    /// <summary>Everything the device offers, device-type and transport bits together.</summary>
    ulong DeviceFeatures { get; }

    /// <summary>The device's virtqueues, indexed by queue number.</summary>
    ReadOnlySpan<VirtQueue> Queues { get; }

    /// <summary>Bytes of device configuration space (§4.1.4.6, §4.1.4.8).</summary>
    int ConfigSize { get; }

    /// <summary>Reads device configuration bytes; out-of-range bytes read as 0.</summary>
    void ReadConfig(int offset, Span<byte> data);

    /// <summary>Writes device configuration bytes; read-only fields ignore writes.</summary>
    void WriteConfig(int offset, ReadOnlySpan<byte> data);

    /// <summary>FEATURES_OK (or, for a legacy driver, DRIVER_OK) was reached with these features.</summary>
    void FeaturesNegotiated(ulong features);

    /// <summary>The driver set DRIVER_OK (§3.1.1 step 8): the queues it set up are live. Called
    /// on the writing vCPU, outside the transport's lock, before the queues are looked at for
    /// buffers made available earlier.</summary>
    void DriverOk()
    {
    }

    /// <summary>The driver notified queue <paramref name="queue"/> (§4.1.5.2). Called from a vCPU or
    /// ioeventfd thread; must not block on I/O.</summary>
    void QueueNotify(int queue);

    /// <summary>Device reset (§2.1): queues are reset by the transport; forget negotiated state and
    /// drop completions of requests still in flight.</summary>
    void Reset();
}

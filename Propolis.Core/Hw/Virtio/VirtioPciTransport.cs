using System.Buffers.Binary;
using Microsoft.Extensions.Logging;

namespace Propolis.Core.Hw.Virtio;

/// <summary>How the transport signals the driver: the PCI function's MSI-X and INTx, supplied by the PCI glue.</summary>
public interface IVirtioInterrupts
{
    /// <summary>MSI-X is enabled in the function's capability (decides the legacy register layout,
    /// §4.1.4.8, and whether vectors or the ISR/INTx path are used, §4.1.5.1.2 / §4.1.5.3).</summary>
    bool MsixEnabled { get; }

    /// <summary>Table entries in the MSI-X capability (a vector ≥ this is refused with NO_VECTOR).</summary>
    int MsixVectorCount { get; }

    /// <summary>Sends the message of MSI-X table entry <paramref name="vector"/> (or marks it pending if masked).</summary>
    void SendMsix(ushort vector);

    /// <summary>Drives the function's INTx pin (level-triggered, §4.1.5.3).</summary>
    void SetIntx(bool asserted);
}

/// <summary>The registers of the transitional virtio PCI transport (virtio 1.2 §4.1).</summary>
public static class VirtioPciLayout
{
    public const ushort VendorId = 0x1AF4;

    /// <summary>Transitional device ids are 0x1000 + (virtio id - 1) for net, block, ... (§4.1.2.3): 0x1001 for block.</summary>
    public static ushort TransitionalDeviceId(ushort virtioDeviceId) => (ushort)(0x1000 + virtioDeviceId - 1);

    /// <summary>NO_VECTOR (§4.1.5.1.2).</summary>
    public const ushort NoVector = 0xFFFF;

    /// <summary>ISR bits (§4.1.4.5).</summary>
    public const byte IsrQueue = 1, IsrConfig = 2;

    /// <summary>Legacy I/O BAR: device config at 0x14, or at 0x18 when MSI-X is enabled (§4.1.4.8).</summary>
    public const int LegacyConfigOffset = 0x14, LegacyConfigOffsetMsix = 0x18;

    /// <summary>The modern memory BAR is laid out as four 4 KiB regions, each named by a
    /// virtio_pci_cap (§4.1.4): common config, ISR, device config, notifications.</summary>
    public const int CommonOffset = 0x0000, CommonLength = 0x38;
    public const int IsrOffset = 0x1000, IsrLength = 1;
    public const int DeviceOffset = 0x2000;
    public const int NotifyOffset = 0x3000;
    public const uint NotifyOffMultiplier = 4;
    public const int ModernBarSize = 0x4000;

    /// <summary>cfg_type values of virtio_pci_cap (§4.1.4).</summary>
    public const byte CapCommonCfg = 1, CapNotifyCfg = 2, CapIsrCfg = 3, CapDeviceCfg = 4, CapPciCfg = 5;

    /// <summary>sizeof(struct virtio_pci_cap) and sizeof(struct virtio_pci_notify_cap).</summary>
    public const int CapLength = 16, NotifyCapLength = 20;

    /// <summary>The body of a virtio_pci_cap after cap_vndr (0x09) and cap_next, which the PCI
    /// capability list owns: cap_len, cfg_type, bar, id, padding[2], le32 offset, le32 length
    /// (+ le32 notify_off_multiplier for the notify capability). Writes the whole capability
    /// with vendor id 0x09 and cap_next 0 into <paramref name="destination"/>.</summary>
    public static int EncodeCapability(byte cfgType, byte bar, uint offset, uint length, Span<byte> destination)
    {
        var len = cfgType == CapNotifyCfg ? NotifyCapLength : CapLength;
        var c = destination[..len];
        c.Clear();
        c[0] = 0x09;             // PCI_CAP_ID_VNDR
        c[2] = (byte)len;
        c[3] = cfgType;
        c[4] = bar;
        BinaryPrimitives.WriteUInt32LittleEndian(c[8..], offset);
        BinaryPrimitives.WriteUInt32LittleEndian(c[12..], length);
        if (cfgType == CapNotifyCfg)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(c[16..], NotifyOffMultiplier);
        }
        return len;
    }
}

/// <summary>The virtio PCI transport's register logic, independent of the PCI bus: the legacy I/O
/// register block (§4.1.4.8), the modern common/ISR/device/notify regions (§4.1.4.3–§4.1.4.7),
/// the device status state machine (§2.1, §3.1) and feature negotiation (§2.2).</summary>
/// <remarks>
/// The PCI function wraps this: its I/O BAR forwards to <see cref="LegacyRead"/>/<see cref="LegacyWrite"/>,
/// its memory BAR to <see cref="ModernRead"/>/<see cref="ModernWrite"/>, and an ioeventfd thread may call
/// <see cref="NotifyQueue"/> directly. Register accesses are serialised by a lock that covers no I/O;
/// notifications take no transport lock. Accesses of a width a register does not have read as 0 and
/// are ignored on write; 8-byte accesses to the 64-bit queue address pairs are split.
/// </remarks>
public sealed class VirtioPciTransport : IVirtQueueEvents
{
    private enum Reg : byte
    {
        // legacy (§4.1.4.8)
        HostFeatures, GuestFeatures, QueuePfn, QueueSize, QueueSelect, QueueNotify, DeviceStatus, Isr,
        ConfigMsixVector, QueueMsixVector,
        // modern common configuration (§4.1.4.3)
        DeviceFeatureSelect, DeviceFeature, DriverFeatureSelect, DriverFeature, NumQueues, ConfigGeneration,
        QueueEnable, QueueNotifyOff, QueueDescLo, QueueDescHi, QueueDriverLo, QueueDriverHi, QueueDeviceLo, QueueDeviceHi,
    }

    private readonly record struct Register(int Offset, int Width, Reg Id);

    private static readonly Register[] s_legacy =
    [
        new(0x00, 4, Reg.HostFeatures),
        new(0x04, 4, Reg.GuestFeatures),
        new(0x08, 4, Reg.QueuePfn),
        new(0x0C, 2, Reg.QueueSize),
        new(0x0E, 2, Reg.QueueSelect),
        new(0x10, 2, Reg.QueueNotify),
        new(0x12, 1, Reg.DeviceStatus),
        new(0x13, 1, Reg.Isr),
    ];

    /// <summary>Present only while MSI-X is enabled (§4.1.4.8).</summary>
    private static readonly Register[] s_legacyMsix =
    [
        new(0x14, 2, Reg.ConfigMsixVector),
        new(0x16, 2, Reg.QueueMsixVector),
    ];

    private static readonly Register[] s_common =
    [
        new(0x00, 4, Reg.DeviceFeatureSelect),
        new(0x04, 4, Reg.DeviceFeature),
        new(0x08, 4, Reg.DriverFeatureSelect),
        new(0x0C, 4, Reg.DriverFeature),
        new(0x10, 2, Reg.ConfigMsixVector),
        new(0x12, 2, Reg.NumQueues),
        new(0x14, 1, Reg.DeviceStatus),
        new(0x15, 1, Reg.ConfigGeneration),
        new(0x16, 2, Reg.QueueSelect),
        new(0x18, 2, Reg.QueueSize),
        new(0x1A, 2, Reg.QueueMsixVector),
        new(0x1C, 2, Reg.QueueEnable),
        new(0x1E, 2, Reg.QueueNotifyOff),
        new(0x20, 4, Reg.QueueDescLo),
        new(0x24, 4, Reg.QueueDescHi),
        new(0x28, 4, Reg.QueueDriverLo),
        new(0x2C, 4, Reg.QueueDriverHi),
        new(0x30, 4, Reg.QueueDeviceLo),
        new(0x34, 4, Reg.QueueDeviceHi),
    ];

    private readonly IVirtioDevice _device;
    private readonly IVirtioInterrupts _interrupts;
    private readonly ILogger? _logger;
    private readonly Lock _lock = new();
    private volatile byte _status;
    private int _isr;
    private ulong _driverFeatures;
    private uint _deviceFeatureSelect;
    private uint _driverFeatureSelect;
    private ushort _queueSelect;
    private ushort _configVector = VirtioPciLayout.NoVector;
    private bool _legacyDriver;

    // Interrupt work decided under _lock and done after it is released: the PCI function takes
    // its own lock to drive INTx, and calls into this transport under that lock on a function reset.
    private bool _pendingDeassert;
    private bool _pendingConfigSignal;

    /// <param name="createDevice">Builds the device with this transport as its queue-event sink.</param>
    public VirtioPciTransport(Func<IVirtQueueEvents, IVirtioDevice> createDevice, IVirtioInterrupts interrupts, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(createDevice);
        ArgumentNullException.ThrowIfNull(interrupts);
        _interrupts = interrupts;
        _logger = logger;
        _device = createDevice(this);
    }

    public IVirtioDevice Device => _device;

    public DeviceStatus Status => (DeviceStatus)_status;

    /// <summary>Features the driver wrote (meaningful once FEATURES_OK, or DRIVER_OK for a legacy driver).</summary>
    public ulong DriverFeatures { get { lock (_lock) { return _driverFeatures; } } }

    /// <summary>Size of the legacy I/O BAR: registers, MSI-X vectors, device config, rounded up to a power of two.</summary>
    public int LegacyBarSize => (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(VirtioPciLayout.LegacyConfigOffsetMsix + _device.ConfigSize));

    // ---- notifications ----

    /// <summary>Queue notification (legacy QueueNotify write, a write to the modern notify region,
    /// or an ioeventfd firing). Ignored before DRIVER_OK (§3.1.1: the device does not consume
    /// buffers before then) and for a queue number the device does not have.</summary>
    public void NotifyQueue(int queue)
    {
        if (!IsLive)
        {
            return;
        }
        if ((uint)queue < (uint)_device.Queues.Length)
        {
            _device.QueueNotify(queue);
        }
    }

    /// <summary>Guest-physical offset, within the modern BAR, that notifies <paramref name="queue"/>
    /// (for registering an ioeventfd): NotifyOffset + queue_notify_off × multiplier (§4.1.4.4).</summary>
    public static ulong NotifyAddressOffset(int queue) => VirtioPciLayout.NotifyOffset + (ulong)queue * VirtioPciLayout.NotifyOffMultiplier;

    // ---- legacy I/O BAR (§4.1.4.8) ----

    public void LegacyRead(int offset, Span<byte> data)
    {
        data.Clear();
        var configBase = _interrupts.MsixEnabled ? VirtioPciLayout.LegacyConfigOffsetMsix : VirtioPciLayout.LegacyConfigOffset;
        if (offset >= configBase)
        {
            _device.ReadConfig(offset - configBase, data);
            return;
        }
        if (Find(s_legacy, offset, data.Length, out var reg) || (_interrupts.MsixEnabled && Find(s_legacyMsix, offset, data.Length, out reg)))
        {
            if (reg == Reg.Isr)
            {
                data[0] = ReadAndClearIsr();
                return;
            }
            lock (_lock)
            {
                Store(data, ReadRegister(reg, legacy: true));
            }
        }
    }

    public void LegacyWrite(int offset, ReadOnlySpan<byte> data)
    {
        var configBase = _interrupts.MsixEnabled ? VirtioPciLayout.LegacyConfigOffsetMsix : VirtioPciLayout.LegacyConfigOffset;
        if (offset >= configBase)
        {
            _device.WriteConfig(offset - configBase, data);
            return;
        }
        if (Find(s_legacy, offset, data.Length, out var reg) || (_interrupts.MsixEnabled && Find(s_legacyMsix, offset, data.Length, out reg)))
        {
            if (reg == Reg.QueueNotify)
            {
                NotifyQueue(BinaryPrimitives.ReadUInt16LittleEndian(data));
                return;
            }
            WriteLocked(reg, Load(data), legacy: true);
        }
    }

    // ---- modern memory BAR (§4.1.4.3 - §4.1.4.7) ----

    public void ModernRead(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (offset < VirtioPciLayout.CommonLength)
        {
            var o = (int)offset;
            if (Find(s_common, o, data.Length, out var reg))
            {
                lock (_lock) { Store(data, ReadRegister(reg, legacy: false)); }
            }
            else if (data.Length == 8 && Find(s_common, o, 4, out var lo) && Find(s_common, o + 4, 4, out var hi))
            {
                lock (_lock)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(data, ReadRegister(lo, legacy: false));
                    BinaryPrimitives.WriteUInt32LittleEndian(data[4..], ReadRegister(hi, legacy: false));
                }
            }
        }
        else if (offset == VirtioPciLayout.IsrOffset && data.Length == 1)
        {
            data[0] = ReadAndClearIsr();
        }
        else if (offset >= VirtioPciLayout.DeviceOffset && offset < VirtioPciLayout.DeviceOffset + (ulong)_device.ConfigSize)
        {
            _device.ReadConfig((int)(offset - VirtioPciLayout.DeviceOffset), data);
        }
    }

    public void ModernWrite(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset < VirtioPciLayout.CommonLength)
        {
            var o = (int)offset;
            if (Find(s_common, o, data.Length, out var reg))
            {
                WriteLocked(reg, Load(data), legacy: false);
            }
            else if (data.Length == 8 && Find(s_common, o, 4, out var lo) && Find(s_common, o + 4, 4, out var hi))
            {
                WriteLocked(lo, BinaryPrimitives.ReadUInt32LittleEndian(data), legacy: false);
                WriteLocked(hi, BinaryPrimitives.ReadUInt32LittleEndian(data[4..]), legacy: false);
            }
        }
        else if (offset >= VirtioPciLayout.NotifyOffset && offset < VirtioPciLayout.ModernBarSize)
        {
            var rel = offset - VirtioPciLayout.NotifyOffset;
            if (rel % VirtioPciLayout.NotifyOffMultiplier == 0)
            {
                NotifyQueue((int)(rel / VirtioPciLayout.NotifyOffMultiplier));
            }
        }
        else if (offset >= VirtioPciLayout.DeviceOffset && offset < VirtioPciLayout.DeviceOffset + (ulong)_device.ConfigSize)
        {
            _device.WriteConfig((int)(offset - VirtioPciLayout.DeviceOffset), data);
        }
    }

    // ---- registers ----

    private static bool Find(Register[] table, int offset, int width, out Reg reg)
    {
        foreach (var r in table)
        {
            if (r.Offset == offset && r.Width == width)
            {
                reg = r.Id;
                return true;
            }
        }
        reg = default;
        return false;
    }

    private static uint Load(ReadOnlySpan<byte> data) => data.Length switch
    {
        1 => data[0],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(data),
        _ => BinaryPrimitives.ReadUInt32LittleEndian(data),
    };

    private static void Store(Span<byte> data, uint value)
    {
        switch (data.Length)
        {
            case 1: data[0] = (byte)value; break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(data, (ushort)value); break;
            default: BinaryPrimitives.WriteUInt32LittleEndian(data, value); break;
        }
    }

    private VirtQueue? SelectedQueue => _queueSelect < _device.Queues.Length ? _device.Queues[_queueSelect] : null;

    private uint ReadRegister(Reg reg, bool legacy)
    {
        var q = SelectedQueue;
        switch (reg)
        {
            case Reg.HostFeatures: return (uint)_device.DeviceFeatures;
            case Reg.GuestFeatures: return (uint)_driverFeatures;
            case Reg.QueuePfn: return q?.LegacyPfn ?? 0;
            // A legacy driver cannot choose the size: it reads the device's (§4.1.4.8); 0 = no such queue.
            case Reg.QueueSize: return q is null ? 0u : legacy ? q.MaxSize : q.Size;
            case Reg.QueueSelect: return _queueSelect;
            case Reg.DeviceStatus: return _status;
            case Reg.ConfigMsixVector: return _configVector;
            case Reg.QueueMsixVector: return q?.MsixVector ?? VirtioPciLayout.NoVector;
            case Reg.DeviceFeatureSelect: return _deviceFeatureSelect;
            case Reg.DeviceFeature: return _deviceFeatureSelect < 2 ? (uint)(_device.DeviceFeatures >> (int)(32 * _deviceFeatureSelect)) : 0;
            case Reg.DriverFeatureSelect: return _driverFeatureSelect;
            case Reg.DriverFeature: return _driverFeatureSelect < 2 ? (uint)(_driverFeatures >> (int)(32 * _driverFeatureSelect)) : 0;
            case Reg.NumQueues: return (uint)_device.Queues.Length;
            case Reg.ConfigGeneration: return 0;   // the device configuration never changes under the driver
            case Reg.QueueEnable: return q is { IsEnabled: true } ? 1u : 0u;
            case Reg.QueueNotifyOff: return q is null ? 0u : _queueSelect;
            case Reg.QueueDescLo: return (uint)(q?.DescriptorTableAddress ?? 0);
            case Reg.QueueDescHi: return (uint)((q?.DescriptorTableAddress ?? 0) >> 32);
            case Reg.QueueDriverLo: return (uint)(q?.AvailRingAddress ?? 0);
            case Reg.QueueDriverHi: return (uint)((q?.AvailRingAddress ?? 0) >> 32);
            case Reg.QueueDeviceLo: return (uint)(q?.UsedRingAddress ?? 0);
            case Reg.QueueDeviceHi: return (uint)((q?.UsedRingAddress ?? 0) >> 32);
            default: return 0;
        }
    }

    private void WriteLocked(Reg reg, uint value, bool legacy)
    {
        var kick = false;
        lock (_lock)
        {
            var q = SelectedQueue;
            switch (reg)
            {
                case Reg.GuestFeatures:
                    // §4.1.4.8: a legacy driver's features take effect as written (no FEATURES_OK).
                    _legacyDriver = true;
                    _driverFeatures = value & (uint)_device.DeviceFeatures;
                    _device.FeaturesNegotiated(_driverFeatures);
                    break;
                case Reg.QueuePfn:
                    _legacyDriver = true;
                    if (q is not null && !q.SetLegacyPfn(value))
                    {
                        SetNeedsReset();
                    }
                    break;
                case Reg.QueueSelect:
                    _queueSelect = (ushort)value;
                    break;
                case Reg.DeviceStatus:
                    kick = WriteStatus((byte)value);
                    break;
                case Reg.ConfigMsixVector:
                    _configVector = ValidVector((ushort)value);
                    break;
                case Reg.QueueMsixVector:
                    if (q is not null) { q.MsixVector = ValidVector((ushort)value); }
                    break;
                case Reg.DeviceFeatureSelect:
                    _deviceFeatureSelect = value;
                    break;
                case Reg.DriverFeatureSelect:
                    _driverFeatureSelect = value;
                    break;
                case Reg.DriverFeature:
                    // §2.2: written before FEATURES_OK; later writes are ignored.
                    if (_driverFeatureSelect < 2 && ((DeviceStatus)_status & DeviceStatus.FeaturesOk) == 0)
                    {
                        var shift = (int)(32 * _driverFeatureSelect);
                        _driverFeatures = (_driverFeatures & ~(0xFFFF_FFFFUL << shift)) | ((ulong)value << shift);
                    }
                    break;
                case Reg.QueueSize:
                    q?.TrySetSize((ushort)value);
                    break;
                case Reg.QueueEnable:
                    // §4.1.4.3.2: the driver only writes 1; the rings are checked now.
                    if (q is not null && value == 1 && !q.TryEnable())
                    {
                        SetNeedsReset();
                    }
                    break;
                case Reg.QueueDescLo: q?.SetDescriptorTableAddress(SetLo(q.DescriptorTableAddress, value)); break;
                case Reg.QueueDescHi: q?.SetDescriptorTableAddress(SetHi(q.DescriptorTableAddress, value)); break;
                case Reg.QueueDriverLo: q?.SetAvailRingAddress(SetLo(q.AvailRingAddress, value)); break;
                case Reg.QueueDriverHi: q?.SetAvailRingAddress(SetHi(q.AvailRingAddress, value)); break;
                case Reg.QueueDeviceLo: q?.SetUsedRingAddress(SetLo(q.UsedRingAddress, value)); break;
                case Reg.QueueDeviceHi: q?.SetUsedRingAddress(SetHi(q.UsedRingAddress, value)); break;
                default:
                    break;   // read-only registers
            }
        }
        RunPendingInterrupts();
        if (kick)
        {
            _device.DriverOk();
            // Buffers made available before DRIVER_OK were not consumed; look at them now.
            for (var i = 0; i < _device.Queues.Length; i++)
            {
                NotifyQueue(i);
            }
        }
    }

    private static ulong SetLo(ulong current, uint lo) => (current & 0xFFFF_FFFF_0000_0000UL) | lo;

    private static ulong SetHi(ulong current, uint hi) => (current & 0xFFFF_FFFFUL) | ((ulong)hi << 32);

    private ushort ValidVector(ushort vector) =>
        vector < _interrupts.MsixVectorCount ? vector : VirtioPciLayout.NoVector;

    /// <summary>The status state machine (§2.1, §3.1.1). Returns true when DRIVER_OK was just set.</summary>
    private bool WriteStatus(byte value)
    {
        if (value == 0)
        {
            ResetLocked();
            return false;
        }
        var old = (DeviceStatus)_status;
        var requested = (DeviceStatus)value & ~DeviceStatus.DeviceNeedsReset;
        // §2.1.2: the driver never clears bits (only a reset does); keep what the device set.
        var next = old | requested;
        if ((requested & DeviceStatus.FeaturesOk) != 0 && (old & DeviceStatus.FeaturesOk) == 0)
        {
            // §3.1.1 step 5-6: accept the subset only if it is one; a modern driver must take VERSION_1.
            var ok = (_driverFeatures & ~_device.DeviceFeatures) == 0 && (_driverFeatures & VirtioFeatures.Version1) != 0;
            if (ok)
            {
                _device.FeaturesNegotiated(_driverFeatures);
            }
            else
            {
                next &= ~DeviceStatus.FeaturesOk;
                _logger?.LogWarning("virtio: driver features 0x{Driver:X} are not acceptable (device offers 0x{Device:X}); FEATURES_OK refused",
                    _driverFeatures, _device.DeviceFeatures);
            }
        }
        if ((requested & DeviceStatus.DriverOk) != 0 && !_legacyDriver && (next & DeviceStatus.FeaturesOk) == 0)
        {
            // A modern driver must have FEATURES_OK first (§3.1.1); a legacy one never sets it.
            next &= ~DeviceStatus.DriverOk;
        }
        _status = (byte)next;
        return (next & DeviceStatus.DriverOk) != 0 && (old & DeviceStatus.DriverOk) == 0;
    }

    /// <summary>Device reset: status, features, queues and interrupts back to their initial state (§2.1, §4.1.4.3.2).</summary>
    public void Reset()
    {
        lock (_lock)
        {
            ResetLocked();
        }
        RunPendingInterrupts();
    }

    private void RunPendingInterrupts()
    {
        bool deassert, config;
        lock (_lock)
        {
            deassert = _pendingDeassert;
            config = _pendingConfigSignal;
            _pendingDeassert = _pendingConfigSignal = false;
        }
        if (deassert)
        {
            _interrupts.SetIntx(false);
        }
        if (config)
        {
            Signal(VirtioPciLayout.IsrConfig, _configVector);
        }
    }

    private void ResetLocked()
    {
        _device.Reset();
        _status = 0;
        _driverFeatures = 0;
        _deviceFeatureSelect = _driverFeatureSelect = 0;
        _queueSelect = 0;
        _configVector = VirtioPciLayout.NoVector;
        _legacyDriver = false;
        Interlocked.Exchange(ref _isr, 0);
        _pendingDeassert = true;
        _pendingConfigSignal = false;
    }

    private byte ReadAndClearIsr()
    {
        // §4.1.4.5: reading the ISR status clears it and de-asserts INTx.
        var v = (byte)Interlocked.Exchange(ref _isr, 0);
        if (v != 0)
        {
            _interrupts.SetIntx(false);
        }
        return v;
    }

    private void SetNeedsReset()
    {
        var status = (DeviceStatus)_status;
        if ((status & DeviceStatus.DeviceNeedsReset) != 0)
        {
            return;
        }
        _status = (byte)(status | DeviceStatus.DeviceNeedsReset);
        // §2.1.2, §4.1.5.2: tell the driver through a configuration change notification.
        if ((status & DeviceStatus.DriverOk) != 0)
        {
            _pendingConfigSignal = true;
        }
    }

    private void Signal(byte isrBit, ushort vector)
    {
        if (_interrupts.MsixEnabled)
        {
            // §4.1.5.1.2: with MSI-X, the ISR is not used; NO_VECTOR means no interrupt.
            if (vector != VirtioPciLayout.NoVector)
            {
                _interrupts.SendMsix(vector);
            }
            return;
        }
        int old, updated;
        do
        {
            old = Volatile.Read(ref _isr);
            updated = old | isrBit;
        }
        while (Interlocked.CompareExchange(ref _isr, updated, old) != old);
        _interrupts.SetIntx(true);
    }

    /// <summary>DRIVER_OK is set and neither DEVICE_NEEDS_RESET nor FAILED.</summary>
    private bool IsLive =>
        ((DeviceStatus)_status & (DeviceStatus.DriverOk | DeviceStatus.DeviceNeedsReset | DeviceStatus.Failed)) == DeviceStatus.DriverOk;

    bool IVirtQueueEvents.DriverOk => IsLive;

    void IVirtQueueEvents.QueueInterrupt(VirtQueue queue) => Signal(VirtioPciLayout.IsrQueue, queue.MsixVector);

    void IVirtQueueEvents.QueueNeedsReset(VirtQueue queue)
    {
        lock (_lock)
        {
            SetNeedsReset();
        }
        RunPendingInterrupts();
    }
}

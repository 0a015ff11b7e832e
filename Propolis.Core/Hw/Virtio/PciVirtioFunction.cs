using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Virtio;

/// <summary>A transitional virtio PCI function (virtio 1.2 §4.1.2.3): the PCI side every virtio
/// device type shares. A device type derives from it with its identity and its
/// <see cref="IVirtioDevice"/>.</summary>
/// <remarks>
/// <para>BAR 0 is the legacy I/O register block (§4.1.4.8); BAR 1 holds the MSI-X table (offset 0)
/// and PBA (offset 0x800), one vector for configuration changes and one per queue; BAR 4 is the
/// modern interface (§4.1.4), named by vendor-specific <c>virtio_pci_cap</c>s: common configuration
/// at 0, ISR at 0x1000, device configuration at 0x2000, notifications at 0x3000 (queue n at
/// 0x3000 + 4n), and the VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9) reaches any BAR through
/// configuration space. A legacy driver (or firmware) uses BAR 0; a modern one finds the
/// capabilities. INTx is used while MSI-X is disabled (§4.1.5.3).</para>
/// <para>Doorbells. Each queue's notifications — the legacy QueueNotify port write of the queue
/// number (an ioeventfd with that datamatch) and the modern notify address — signal the one
/// eventfd <see cref="DoorbellEventFd"/> names for the queue, inside KVM, so a notification costs
/// the guest no exit to userspace. The registrations follow the BARs as the guest moves them or
/// turns decoding off. A queue without an eventfd, or any queue when the bus has no registrar or
/// the hypervisor refuses, traps to <see cref="BarWrite"/>, which does the same through
/// <see cref="VirtioPciTransport.NotifyQueue"/>. Doorbell changes are serialised by their own
/// lock, taken after the PCI config lock and after the transport's lock, never before either.</para>
/// </remarks>
public abstract partial class PciVirtioFunction : PciDevice, IVirtioInterrupts, IDisposable
{
    public const int LegacyBar = 0;
    public const int MsixBar = 1;
    public const int ModernBar = 4;
    public const uint MsixTableOffset = 0, MsixPbaOffset = 0x800;

    /// <summary>The most MSI-X vectors: the table (16 bytes a vector) ends before the PBA.</summary>
    public const int MaxMsixVectors = (int)(MsixPbaOffset / MsixCapability.EntrySize);

    /// <summary>Offset of QueueNotify in the legacy block (§4.1.4.8).</summary>
    private const int LegacyQueueNotify = 0x10;

    /// <summary>struct virtio_pci_cfg_cap: a virtio_pci_cap, then u8 pci_cfg_data[4] (§4.1.4.9).</summary>
    private const int PciCfgCapLength = 20, PciCfgBar = 4, PciCfgOffset = 8, PciCfgLength = 12, PciCfgData = 16;

    private readonly MsixCapability _msix;
    private readonly int _vectors;
    private readonly ulong _legacyBarSize;
    private readonly int _pciCfgCap;
    private readonly ILogger? _logger;

    private readonly Lock _doorbellLock = new();
    /// <summary>Per queue: the legacy port doorbell at 2q, the modern MMIO one at 2q + 1.</summary>
    private readonly (ulong Address, EventFd? Fd)[] _doorbells;
    private ulong? _legacyBase, _modernBase;
    private IIoEventRegistrar? _registrar;
    private bool _loggedLegacy, _loggedModern;
    private bool _disposed;

    /// <param name="createDevice">Builds the device type with the transport as its queue-event sink.</param>
    protected PciVirtioFunction(PciIdentity identity, Func<IVirtQueueEvents, IVirtioDevice> createDevice, ILogger? logger)
        : base(identity)
    {
        _logger = logger;
        Transport = new VirtioPciTransport(createDevice, this, logger);
        var queues = Transport.Device.Queues.Length;
        _legacyBarSize = (ulong)Transport.LegacyBarSize;
        _vectors = Math.Min(queues + 1, MaxMsixVectors);
        DefineBar(LegacyBar, PciBarKind.Io, _legacyBarSize);
        DefineBar(MsixBar, PciBarKind.Memory32, 0x1000);
        DefineBar(ModernBar, PciBarKind.Memory32, VirtioPciLayout.ModernBarSize);
        UseIntx();
        _msix = AddMsix(_vectors, MsixBar, MsixTableOffset, MsixBar, MsixPbaOffset);

        Span<byte> cap = stackalloc byte[VirtioPciLayout.NotifyCapLength];
        AddVirtioCapability(cap, VirtioPciLayout.CapCommonCfg, VirtioPciLayout.CommonOffset, VirtioPciLayout.CommonLength);
        AddVirtioCapability(cap, VirtioPciLayout.CapNotifyCfg, VirtioPciLayout.NotifyOffset, (uint)queues * VirtioPciLayout.NotifyOffMultiplier);
        AddVirtioCapability(cap, VirtioPciLayout.CapIsrCfg, VirtioPciLayout.IsrOffset, VirtioPciLayout.IsrLength);
        AddVirtioCapability(cap, VirtioPciLayout.CapDeviceCfg, VirtioPciLayout.DeviceOffset, (uint)Transport.Device.ConfigSize);
        // §4.1.4.9 VIRTIO_PCI_CAP_PCI_CFG: the driver writes bar/offset/length, then reads or
        // writes pci_cfg_data to reach that BAR through configuration space.
        Span<byte> pciCfg = stackalloc byte[PciCfgCapLength];
        pciCfg.Clear();
        pciCfg[0] = PciCfgCapLength;
        pciCfg[1] = VirtioPciLayout.CapPciCfg;
        _pciCfgCap = AddVendorCapability(pciCfg[..(PciCfgCapLength - 2)],
            [new("virtio_pci_cfg_cap.cap.bar", PciCfgBar, 1, 0xFF), new("virtio_pci_cfg_cap.cap.offset", PciCfgOffset, 4, 0xFFFF_FFFF),
             new("virtio_pci_cfg_cap.cap.length", PciCfgLength, 4, 0xFFFF_FFFF)],
            [PciCfgData]);
        _doorbells = new (ulong, EventFd?)[2 * queues];
    }

    public VirtioPciTransport Transport { get; }

    /// <summary>Size of BAR 0: the legacy registers (with the MSI-X vectors) and the device
    /// configuration, rounded up to a power of two.</summary>
    public ulong LegacyBarSize => _legacyBarSize;

    /// <summary>Vectors in the MSI-X table: configuration, then one per queue.</summary>
    public int MsixVectors => _vectors;

    /// <summary>Doorbells currently watched by ioeventfds.</summary>
    public int IoEventDoorbells
    {
        get
        {
            lock (_doorbellLock)
            {
                var n = 0;
                foreach (var d in _doorbells)
                {
                    if (d.Fd is not null) { n++; }
                }
                return n;
            }
        }
    }

    /// <summary>The eventfd KVM signals for <paramref name="queue"/>'s doorbells (legacy and modern
    /// alike), or null to let them trap. Called under the doorbell lock, only while the bus has an
    /// ioeventfd registrar; the answer may change only where the subclass calls <see cref="RefreshDoorbells"/>.</summary>
    protected abstract EventFd? DoorbellEventFd(int queue);

    /// <summary>Where a watched doorbell's signal goes, for the log line (e.g. "the packet threads wake on them").</summary>
    protected abstract string DoorbellConsumer { get; }

    /// <summary>Releases what the subclass owns (its device's threads), after the doorbells are unregistered.</summary>
    protected abstract void DisposeDevice();

    /// <summary>The eventfd of MSI-X <paramref name="vector"/>'s irqfd route, for a producer outside
    /// this process's threads (vhost) that raises the vector by writing it; from then on the route
    /// follows the table entry and its mask (see <see cref="MsixCapability.AcquireIrqFd"/>). Null
    /// when the machine has no irqfd routes or the vector is out of range.</summary>
    public EventFd? VectorIrqFd(int vector) => _msix.AcquireIrqFd(vector);

    /// <summary>Function reset (machine reset): the virtio device too, as if the driver wrote status 0.</summary>
    protected override void OnReset() => Transport.Reset();

    protected override void BarRead(int bar, ulong offset, Span<byte> data)
    {
        if (bar == LegacyBar && offset < _legacyBarSize)
        {
            Transport.LegacyRead((int)offset, data);
            return;
        }
        if (bar == ModernBar && offset < VirtioPciLayout.ModernBarSize)
        {
            Transport.ModernRead(offset, data);
            return;
        }
        data.Fill(0xFF);
    }

    protected override void BarWrite(int bar, ulong offset, ReadOnlySpan<byte> data)
    {
        if (bar == LegacyBar && offset < _legacyBarSize)
        {
            Transport.LegacyWrite((int)offset, data);
        }
        else if (bar == ModernBar && offset < VirtioPciLayout.ModernBarSize)
        {
            Transport.ModernWrite(offset, data);
        }
    }

    // ---- VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9) ----

    /// <summary>pci_cfg_data read: the BAR bytes the capability's bar/offset/length select (1, 2
    /// or 4 bytes, naturally aligned; anything else reads zero). Under the config lock.</summary>
    protected override uint CustomConfigRead(int offset)
    {
        if (offset != _pciCfgCap + PciCfgData || !PciCfgWindow(out var bar, out var at, out var length))
        {
            return 0;
        }
        Span<byte> data = stackalloc byte[4];
        data.Clear();
        DispatchBarRead(bar, at, data[..length]);
        return BinaryPrimitives.ReadUInt32LittleEndian(data);
    }

    /// <summary>pci_cfg_data write: the low <c>length</c> bytes go to the selected BAR.</summary>
    protected override void CustomConfigWrite(int offset, uint value, uint byteMask)
    {
        if (offset != _pciCfgCap + PciCfgData || !PciCfgWindow(out var bar, out var at, out var length))
        {
            return;
        }
        Span<byte> data = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(data, value);
        DispatchBarWrite(bar, at, data[..length]);
    }

    private bool PciCfgWindow(out int bar, out ulong offset, out int length)
    {
        var c = ConfigBytes;
        bar = c[_pciCfgCap + PciCfgBar];
        offset = BinaryPrimitives.ReadUInt32LittleEndian(c[(_pciCfgCap + PciCfgOffset)..]);
        length = (int)BinaryPrimitives.ReadUInt32LittleEndian(c[(_pciCfgCap + PciCfgLength)..]);
        return bar is LegacyBar or MsixBar or ModernBar && length is 1 or 2 or 4 && offset % (ulong)length == 0
            && GetBar(bar) is { } b && offset + (ulong)length <= b.Size;
    }

    private void AddVirtioCapability(Span<byte> buffer, byte cfgType, int offset, uint length)
    {
        var n = VirtioPciLayout.EncodeCapability(cfgType, ModernBar, (uint)offset, length, buffer);
        AddVendorCapability(buffer[2..n]);
    }

    // ---- doorbells ----

    /// <summary>Moves the doorbell ioeventfds with the BAR (called under the config lock).</summary>
    protected override void OnBarMappingChanged(PciBar bar, ulong? oldAddress, ulong? newAddress)
    {
        if (bar.Index is not (LegacyBar or ModernBar))
        {
            return;
        }
        lock (_doorbellLock)
        {
            if (_disposed)
            {
                return;
            }
            _registrar ??= IoEvents;
            if (bar.Index == LegacyBar)
            {
                _legacyBase = newAddress;
            }
            else
            {
                _modernBase = newAddress;
            }
            var (legacyWatched, modernWatched) = SyncDoorbellsLocked();
            var legacy = bar.Index == LegacyBar;
            var watched = legacy ? legacyWatched : modernWatched;
            if (_logger is not null && newAddress is { } at && watched > 0)
            {
                ref var logged = ref legacy ? ref _loggedLegacy : ref _loggedModern;
                var where = legacy ? $"legacy port 0x{at + LegacyQueueNotify:X} (datamatch = queue)" : $"modern MMIO 0x{at + VirtioPciLayout.NotifyOffset:X} + 4 × queue";
                if (!logged)
                {
                    logged = true;
                    LogDoorbells(_logger, Name, watched, Transport.Device.Queues.Length, where, DoorbellConsumer, InterruptDelivery);
                }
                else
                {
                    LogDoorbellsMoved(_logger, Name, watched, where);
                }
            }
        }
    }

    /// <summary>How completion interrupts reach the guest, for the log line.</summary>
    private string InterruptDelivery => MsiSink is IMsiRouteSource
        ? "interrupts: an MSI-X vector per queue through its irqfd GSI route (INTx while MSI-X is off)"
        : "interrupts: MSI-X messages signalled to the hypervisor (INTx while MSI-X is off)";

    /// <summary>Registers again every doorbell whose eventfd changed: a device whose queue
    /// numbering depends on the negotiated features (virtio-net's control queue) calls this after
    /// negotiation and reset.</summary>
    protected void RefreshDoorbells()
    {
        lock (_doorbellLock)
        {
            if (!_disposed)
            {
                SyncDoorbellsLocked();
            }
        }
    }

    /// <summary>Makes every doorbell registration what the BARs and <see cref="DoorbellEventFd"/>
    /// say now. Returns how many legacy and modern doorbells are watched.</summary>
    private (int Legacy, int Modern) SyncDoorbellsLocked()
    {
        var registrar = _registrar;
        var queues = _doorbells.Length / 2;
        var watchedLegacy = 0;
        var watchedModern = 0;
        for (var q = 0; q < queues; q++)
        {
            var fd = registrar is null ? null : DoorbellEventFd(q);
            for (var kind = 0; kind < 2; kind++)
            {
                var legacy = kind == 0;
                var slot = 2 * q + kind;
                ulong address = 0;
                if ((legacy ? _legacyBase : _modernBase) is { } b)
                {
                    address = legacy ? b + LegacyQueueNotify : b + VirtioPciTransport.NotifyAddressOffset(q);
                }
                var want = address != 0 ? fd : null;
                ref var current = ref _doorbells[slot];
                if (current.Fd != want || (want is not null && current.Address != address))
                {
                    Unwatch(slot);
                    if (want is not null && registrar!.TryRegister(want, Space(slot), address, 2, Match(slot)))
                    {
                        current = (address, want);
                    }
                }
                if (current.Fd is not null)
                {
                    if (legacy) { watchedLegacy++; } else { watchedModern++; }
                }
            }
        }
        return (watchedLegacy, watchedModern);
    }

    private static IoEventSpace Space(int slot) => slot % 2 == 0 ? IoEventSpace.Port : IoEventSpace.Mmio;

    /// <summary>The legacy QueueNotify port is shared by all queues: each one's ioeventfd matches its number.</summary>
    private static ulong? Match(int slot) => slot % 2 == 0 ? (ulong)(slot / 2) : null;

    private void Unwatch(int slot)
    {
        ref var d = ref _doorbells[slot];
        if (d.Fd is not null)
        {
            _registrar?.Unregister(d.Fd, Space(slot), d.Address, 2, Match(slot));
        }
        d = (0, null);
    }

    /// <summary>Drops the doorbell registrations, then stops the device (its threads, its eventfds).</summary>
    public void Dispose()
    {
        lock (_doorbellLock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            for (var slot = 0; slot < _doorbells.Length; slot++)
            {
                Unwatch(slot);
            }
        }
        DisposeDevice();
        GC.SuppressFinalize(this);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Device}: {Watched} of {Queues} queue doorbells at {Where} are ioeventfds; {Consumer}; {Interrupts}")]
    private static partial void LogDoorbells(ILogger logger, string device, int watched, int queues, string where, string consumer, string interrupts);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Device}: {Watched} queue doorbell ioeventfds moved to {Where}")]
    private static partial void LogDoorbellsMoved(ILogger logger, string device, int watched, string where);

    // ---- interrupts ----

    bool IVirtioInterrupts.MsixEnabled => _msix.Enabled;

    int IVirtioInterrupts.MsixVectorCount => _vectors;

    void IVirtioInterrupts.SendMsix(ushort vector) => _msix.Notify(vector);

    void IVirtioInterrupts.SetIntx(bool asserted) => SetIntx(asserted);
}

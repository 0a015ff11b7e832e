using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Virtio;

/// <summary>A virtio block device on PCI, transitional (virtio 1.2 §4.1.2.3): vendor 0x1AF4, device
/// id 0x1001, subsystem id 2 (the virtio device id, §4.1.2.1), class 01/00.</summary>
/// <remarks>
/// <para>BAR 0 is the legacy I/O register block (§4.1.4.8); BAR 1 holds the MSI-X table (offset 0)
/// and PBA (offset 0x800); BAR 4 is the modern interface (§4.1.4), named by vendor-specific
/// <c>virtio_pci_cap</c>s: common configuration at 0, ISR at 0x1000, device configuration at
/// 0x2000, notifications at 0x3000 (queue n at 0x3000 + 4n). A legacy driver (or firmware) uses
/// BAR 0; a modern one finds the capabilities. INTx is used while MSI-X is disabled (§4.1.5.3).</para>
/// <para>Queue notifications — the legacy QueueNotify port write of the queue number and the
/// modern notify address — are watched by ioeventfds when the bus has a registrar, so a request
/// costs the guest no exit to userspace; a dedicated thread drains the queue. Without one (or if
/// the hypervisor refuses), the same writes trap to <see cref="BarWrite"/> and do the same.</para>
/// </remarks>
public sealed partial class PciVirtioBlock : PciDevice, IVirtioInterrupts, IDisposable
{
    /// <summary>Vectors in the MSI-X table: configuration and the request queue.</summary>
    public const int MsixVectors = 2;

    /// <summary>0x18 bytes of registers (with MSI-X) + 0x3C of virtio_blk_config, rounded up.</summary>
    public const ulong LegacyBarSize = 0x80;

    public const int LegacyBar = 0;
    public const int MsixBar = 1;
    public const int ModernBar = 4;
    public const uint MsixTableOffset = 0, MsixPbaOffset = 0x800;

    /// <summary>Offset of QueueNotify in the legacy block (§4.1.4.8).</summary>
    private const int LegacyQueueNotify = 0x10;

    private readonly MsixCapability _msix;
    private readonly ILogger? _logger;
    private readonly ulong[] _ioEventAddresses;
    private EventFdWaiter? _notifier;
    private IIoEventRegistrar? _registrar;

    public PciVirtioBlock(GuestMemory memory, IBlockBackend backend, VirtioBlockOptions? options = null, ILogger? logger = null)
        : base(new PciIdentity(VirtioPciLayout.VendorId, VirtioPciLayout.TransitionalDeviceId(VirtioBlockSpec.DeviceId),
            ClassCode: 0x01, Subclass: 0x00, SubsystemVendorId: VirtioPciLayout.VendorId, SubsystemId: VirtioBlockSpec.DeviceId))
    {
        _logger = logger;
        DefineBar(LegacyBar, PciBarKind.Io, LegacyBarSize);
        DefineBar(MsixBar, PciBarKind.Memory32, 0x1000);
        DefineBar(ModernBar, PciBarKind.Memory32, VirtioPciLayout.ModernBarSize);
        UseIntx();
        _msix = AddMsix(MsixVectors, MsixBar, MsixTableOffset, MsixBar, MsixPbaOffset);
        Transport = new VirtioPciTransport(events => new VirtioBlock(memory, backend, events, options, logger), this, logger);
        if ((ulong)Transport.LegacyBarSize > LegacyBarSize)
        {
            throw new InvalidOperationException("the legacy register block outgrew BAR 0");
        }
        var queues = Transport.Device.Queues.Length;
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
        // Per queue: the legacy port doorbell, then the modern MMIO one.
        _ioEventAddresses = new ulong[2 * queues];
    }

    /// <summary>struct virtio_pci_cfg_cap: a virtio_pci_cap, then u8 pci_cfg_data[4] (§4.1.4.9).</summary>
    private const int PciCfgCapLength = 20, PciCfgBar = 4, PciCfgOffset = 8, PciCfgLength = 12, PciCfgData = 16;

    private readonly int _pciCfgCap;

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
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data);
    }

    /// <summary>pci_cfg_data write: the low <c>length</c> bytes go to the selected BAR.</summary>
    protected override void CustomConfigWrite(int offset, uint value, uint byteMask)
    {
        if (offset != _pciCfgCap + PciCfgData || !PciCfgWindow(out var bar, out var at, out var length))
        {
            return;
        }
        Span<byte> data = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(data, value);
        DispatchBarWrite(bar, at, data[..length]);
    }

    private bool PciCfgWindow(out int bar, out ulong offset, out int length)
    {
        var c = ConfigBytes;
        bar = c[_pciCfgCap + PciCfgBar];
        offset = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(c[(_pciCfgCap + PciCfgOffset)..]);
        length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(c[(_pciCfgCap + PciCfgLength)..]);
        return bar is LegacyBar or MsixBar or ModernBar && length is 1 or 2 or 4 && offset % (ulong)length == 0
            && GetBar(bar) is { } b && offset + (ulong)length <= b.Size;
    }

    private void AddVirtioCapability(Span<byte> buffer, byte cfgType, int offset, uint length)
    {
        var n = VirtioPciLayout.EncodeCapability(cfgType, ModernBar, (uint)offset, length, buffer);
        AddVendorCapability(buffer[2..n]);
    }

    public VirtioPciTransport Transport { get; }

    public VirtioBlock Block => (VirtioBlock)Transport.Device;

    public override string Name => "virtio-block";

    /// <summary>Doorbells currently watched by ioeventfds.</summary>
    public int IoEventDoorbells { get { var n = 0; foreach (var a in _ioEventAddresses) { if (a != 0) n++; } return n; } }

    /// <summary>Function reset (machine reset): the virtio device too, as if the driver wrote status 0.</summary>
    protected override void OnReset() => Transport.Reset();

    protected override void BarRead(int bar, ulong offset, Span<byte> data)
    {
        if (bar == LegacyBar && offset < LegacyBarSize)
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
        if (bar == LegacyBar && offset < LegacyBarSize)
        {
            Transport.LegacyWrite((int)offset, data);
        }
        else if (bar == ModernBar && offset < VirtioPciLayout.ModernBarSize)
        {
            Transport.ModernWrite(offset, data);
        }
    }

    /// <summary>Moves the doorbell ioeventfds with the BAR (called under the config lock).</summary>
    protected override void OnBarMappingChanged(PciBar bar, ulong? oldAddress, ulong? newAddress)
    {
        if (bar.Index is not (LegacyBar or ModernBar))
        {
            return;
        }
        var registrar = IoEvents;
        if (registrar is null)
        {
            return;
        }
        _registrar = registrar;
        var queues = Transport.Device.Queues.Length;
        _notifier ??= new EventFdWaiter($"{Name} notify", 2 * queues, i => Transport.NotifyQueue(i % queues), _logger);
        for (var q = 0; q < queues; q++)
        {
            var legacy = bar.Index == LegacyBar;
            var slot = legacy ? q : queues + q;
            var space = legacy ? IoEventSpace.Port : IoEventSpace.Mmio;
            ulong? match = legacy ? (ulong)q : null;
            if (_ioEventAddresses[slot] != 0)
            {
                registrar.Unregister(_notifier[slot], space, _ioEventAddresses[slot], 2, match);
                _ioEventAddresses[slot] = 0;
            }
            if (newAddress is { } at)
            {
                var address = legacy ? at + LegacyQueueNotify : at + VirtioPciTransport.NotifyAddressOffset(q);
                if (registrar.TryRegister(_notifier[slot], space, address, 2, match))
                {
                    _ioEventAddresses[slot] = address;
                    if (_logger is not null)
                    {
                        LogNotifyWatched(_logger, legacy ? "legacy port" : "modern MMIO", q, address);
                    }
                }
            }
        }
    }

    /// <summary>Stops the notification thread and drops the doorbell registrations.</summary>
    public void Dispose()
    {
        if (_notifier is null)
        {
            return;
        }
        var queues = Transport.Device.Queues.Length;
        for (var slot = 0; slot < _ioEventAddresses.Length; slot++)
        {
            if (_ioEventAddresses[slot] != 0)
            {
                var legacy = slot < queues;
                _registrar?.Unregister(_notifier[slot], legacy ? IoEventSpace.Port : IoEventSpace.Mmio, _ioEventAddresses[slot], 2,
                    legacy ? (ulong)slot : null);
                _ioEventAddresses[slot] = 0;
            }
        }
        _notifier.Dispose();
        _notifier = null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "virtio-block: queue {Queue} notifications ({Kind} 0x{Address:X}) watched by ioeventfd")]
    private static partial void LogNotifyWatched(ILogger logger, string kind, int queue, ulong address);

    bool IVirtioInterrupts.MsixEnabled => _msix.Enabled;

    int IVirtioInterrupts.MsixVectorCount => MsixVectors;

    void IVirtioInterrupts.SendMsix(ushort vector) => _msix.Notify(vector);

    void IVirtioInterrupts.SetIntx(bool asserted) => SetIntx(asserted);
}

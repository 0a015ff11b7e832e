using Microsoft.Extensions.Logging;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Nvme;

/// <summary>The PCI function of an NVMe controller: class 01h/08h/02h (mass storage,
/// non-volatile memory, NVM Express I/O controller), BAR0/1 the 64-bit controller registers
/// (<see cref="NvmeController.Bar0Size"/>), BAR4 the MSI-X table and PBA with one vector per
/// queue pair plus the admin queue.</summary>
/// <remarks>Completions are signalled with MSI-X only: no INTx pin is offered, and while the
/// guest has MSI-X disabled, interrupts are not delivered (drivers enable MSI-X before
/// creating queues; Linux does). A function reset resets the controller.
/// <para>Once the driver configures shadow doorbells (Doorbell Buffer Config, §5.10; Linux does
/// when OACS says it may), the I/O queues' doorbell registers are watched by ioeventfds (when the
/// bus has a registrar): the guest's doorbell write then costs no exit to userspace, and a
/// doorbell thread reads the new value from the shadow buffer, as QEMU's nvme does. The admin
/// queue's doorbells always trap.</para></remarks>
public sealed partial class NvmePciFunction : PciDevice, INvmeInterrupts, IDisposable
{
    /// <summary>Device ID used under the Oxide vendor ID for this controller.</summary>
    public const ushort NvmeDeviceId = 0x0000;

    public const int RegistersBar = 0;
    public const int MsixBar = 4;
    private const ulong MsixBarSize = 0x1000;
    private const uint MsixTableOffset = 0x000;
    private const uint MsixPbaOffset = 0x800;

    public NvmePciFunction(GuestMemory memory, INvmeBlockBackend backend, NvmeControllerOptions options, ILogger? logger = null)
        : base(new PciIdentity(options.VendorId, NvmeDeviceId, ClassCode: 0x01, Subclass: 0x08, ProgIf: 0x02,
            SubsystemVendorId: options.SubsystemVendorId, SubsystemId: NvmeDeviceId))
    {
        DefineBar(RegistersBar, PciBarKind.Memory64, NvmeController.Bar0Size);
        DefineBar(MsixBar, PciBarKind.Memory32, MsixBarSize);
        AddMsix(options.InterruptVectorCount, MsixBar, MsixTableOffset, MsixBar, MsixPbaOffset);
        Controller = new NvmeController(memory, backend, this, options, logger);
        Controller.ShadowDoorbellsChanged = OnShadowDoorbellsChanged;
        _logger = logger;
    }

    /// <summary>Doorbells of I/O queues 1..16: SQ tail and CQ head each.</summary>
    private const int IoDoorbells = 2 * NvmeController.MaxIoQueuePairs;

    private readonly Lock _ioEventLock = new();
    private readonly ILogger? _logger;
    private readonly ulong[] _watched = new ulong[IoDoorbells];
    private EventFdWaiter? _doorbells;
    private IIoEventRegistrar? _registrar;
    private bool _shadowActive;
    private ulong? _bar0At;

    /// <summary>I/O doorbells currently watched by ioeventfds.</summary>
    public int IoEventDoorbells { get { lock (_ioEventLock) { return _watched.Count(a => a != 0); } } }

    private void OnShadowDoorbellsChanged(bool active)
    {
        lock (_ioEventLock)
        {
            _shadowActive = active;
            UpdateDoorbellWatchLocked();
        }
    }

    protected override void OnBarMappingChanged(PciBar bar, ulong? oldAddress, ulong? newAddress)
    {
        if (bar.Index != RegistersBar)
        {
            return;
        }
        lock (_ioEventLock)
        {
            _registrar ??= IoEvents;
            _bar0At = newAddress;
            UpdateDoorbellWatchLocked();
        }
    }

    /// <summary>Watches doorbell i (1-based queue ids: register index 2 + i) at BAR0 while the
    /// BAR is decoded and shadow doorbells are on; otherwise watches nothing.</summary>
    private void UpdateDoorbellWatchLocked()
    {
        var registrar = _registrar;
        if (registrar is null)
        {
            return;
        }
        ulong? baseAddress = _shadowActive ? _bar0At : null;
        if (baseAddress is not null)
        {
            _doorbells ??= new EventFdWaiter("nvme doorbells", IoDoorbells, i => Controller.ShadowDoorbellRung(i + 2), _logger);
        }
        var before = _watched.Count(a => a != 0);
        for (var i = 0; i < IoDoorbells; i++)
        {
            ulong want = baseAddress is { } b ? b + NvmeRegisterMap.DoorbellBase + (ulong)(i + 2) * 4 : 0;
            if (_watched[i] == want)
            {
                continue;
            }
            if (_watched[i] != 0)
            {
                registrar.Unregister(_doorbells![i], IoEventSpace.Mmio, _watched[i], 4, null);
                _watched[i] = 0;
            }
            if (want != 0 && registrar.TryRegister(_doorbells![i], IoEventSpace.Mmio, want, 4, null))
            {
                _watched[i] = want;
            }
        }
        var after = _watched.Count(a => a != 0);
        if (after != before && _logger is not null)
        {
            LogDoorbells(_logger, after, baseAddress ?? 0);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "nvme: {Count} I/O doorbells watched by ioeventfd (BAR0 at 0x{Bar:X}; shadow doorbells on)")]
    private static partial void LogDoorbells(ILogger logger, int count, ulong bar);

    /// <summary>Drops the doorbell registrations and stops the doorbell thread.</summary>
    public void Dispose()
    {
        lock (_ioEventLock)
        {
            _shadowActive = false;
            UpdateDoorbellWatchLocked();
            _doorbells?.Dispose();
            _doorbells = null;
        }
    }

    public NvmeController Controller { get; }

    public override string Name => "nvme";

    void INvmeInterrupts.Raise(ushort vector) => Msix!.Notify(vector);

    protected override void BarRead(int bar, ulong offset, Span<byte> data)
    {
        if (bar == RegistersBar)
        {
            Controller.MmioRead(offset, data);
        }
        else
        {
            data.Clear();
        }
    }

    protected override void BarWrite(int bar, ulong offset, ReadOnlySpan<byte> data)
    {
        if (bar == RegistersBar)
        {
            Controller.MmioWrite(offset, data);
        }
    }

    protected override void OnReset() => Controller.Reset();
}

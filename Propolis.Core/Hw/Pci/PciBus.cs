using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Intr;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Pci;

/// <summary>Chooses the INTx pin of a function and the line it drives (the chipset's routing).</summary>
public interface IPciIntxRouter
{
    /// <summary>The pin reported in the function's Interrupt Pin register and the line it drives.</summary>
    (PciInterruptPin Pin, IIrqLine Line) RouteIntx(PciAddress address);
}

/// <summary>PCI bus 0 and the host bridge's two configuration mechanisms: mechanism #1 at
/// 0xCF8/0xCFC (PCI Local Bus 3.0 §3.2.2.3.2) and the PCI Express ECAM window (PCI Express Base 4.0
/// §7.2.2) at <see cref="MemoryLayout.PcieEcamBase"/>, 1 MiB per bus. Functions attach at a
/// device/function number; their BARs are mapped on the port I/O and MMIO buses as the guest
/// programs and enables them.</summary>
public sealed partial class PciBus : IPortIoHandler, IMmioHandler
{
    public const ushort ConfigAddressPort = 0xCF8;
    public const ushort ConfigDataPort = 0xCFC;
    public const ushort ConfigPortsLength = 8;

    /// <summary>CONFIG_ADDRESS (§3.2.2.3.2): enable bit, bus, device, function, register; bits 30:24
    /// and 1:0 read as zero.</summary>
    private const uint ConfigAddressEnable = 0x8000_0000;
    private const uint ConfigAddressWritable = ConfigAddressEnable | 0x00FF_FFFC;

    private const int Devices = 32;
    private const int Functions = 8;

    private readonly PortIoBus _pio;
    private readonly MmioBus _mmio;
    private readonly PciDevice?[] _functions = new PciDevice?[Devices * Functions];
    private readonly ILogger _logger;
    private uint _configAddress;

    public PciBus(PortIoBus pio, MmioBus mmio, IMsiSink msiSink, ILogger<PciBus>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(pio);
        ArgumentNullException.ThrowIfNull(mmio);
        ArgumentNullException.ThrowIfNull(msiSink);
        _pio = pio;
        _mmio = mmio;
        MsiSink = msiSink;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public IMsiSink MsiSink { get; }

    /// <summary>Where functions register doorbell ioeventfds for their BARs (null: every doorbell
    /// write traps to the function's handler, which is always correct, only slower).</summary>
    public IIoEventRegistrar? IoEvents { get; set; }

    /// <summary>INTx routing for functions attached from now on (the PIIX3's PIRQ links).</summary>
    public IPciIntxRouter? IntxRouter { get; set; }

    /// <summary>Receives byte accesses to port 0xCF9 (offset 0), which shares the dword at 0xCF8 with
    /// CONFIG_ADDRESS: only dword accesses reach CONFIG_ADDRESS (§3.2.2.3.2).</summary>
    public IPortIoHandler? ResetControl { get; set; }

    /// <summary>Claims ports 0xCF8–0xCFF and, if <paramref name="ecam"/>, the ECAM window.</summary>
    public void AttachConfigAccess(PortIoRegistration registerPorts, bool ecam = true)
    {
        registerPorts(ConfigAddressPort, ConfigPortsLength, this, "pci-config-mechanism-1");
        if (ecam)
            _mmio.Register(MemoryLayout.PcieEcamBase, MemoryLayout.PcieEcamSize, this, "pci-ecam");
    }

    /// <summary>Attaches <paramref name="function"/> at 00:<paramref name="device"/>.<paramref name="functionNumber"/>.</summary>
    public void Attach(PciDevice function, byte device, byte functionNumber)
    {
        ArgumentNullException.ThrowIfNull(function);
        if (device >= Devices || functionNumber >= Functions)
            throw new ArgumentOutOfRangeException(nameof(device), $"00:{device:x2}.{functionNumber} is not a valid device/function");
        var slot = device * Functions + functionNumber;
        if (_functions[slot] is { } existing)
            throw new InvalidOperationException($"00:{device:x2}.{functionNumber} is already occupied by {existing.Name}");
        var address = new PciAddress(0, device, functionNumber);
        var (pin, line) = function.UsesIntx && IntxRouter != null ? IntxRouter.RouteIntx(address) : (PciInterruptPin.None, (IIrqLine?)null);
        function.Attach(this, address, pin, line, _logger);
        _functions[slot] = function;
    }

    public PciDevice? Find(byte device, byte function) =>
        device < Devices && function < Functions ? _functions[device * Functions + function] : null;

    /// <summary>Attached functions in device/function order.</summary>
    public IReadOnlyList<PciDevice> AttachedFunctions => [.. _functions.OfType<PciDevice>()];

    // ---- mechanism #1 ----

    public void PortRead(ushort offset, Span<byte> data)
    {
        if (offset < 4)
        {
            if (offset == 0 && data.Length == 4)
                BinaryPrimitives.WriteUInt32LittleEndian(data, Volatile.Read(ref _configAddress));
            else if (offset == 1 && data.Length == 1 && ResetControl != null)
                ResetControl.PortRead(0, data);
            else
                data.Fill(0xFF);
            return;
        }
        var address = Volatile.Read(ref _configAddress);
        var register = (int)(address & 0xFC) + (offset - 4);
        if ((address & ConfigAddressEnable) == 0 || (offset - 4) + data.Length > 4
            || FindForAccess((byte)(address >> 16), (int)(address >> 11) & 31, (int)(address >> 8) & 7) is not { } f)
        {
            // No enable bit or no function: the transaction master-aborts and reads all ones (§3.2.2.3.2).
            data.Fill(0xFF);
            return;
        }
        f.ConfigRead(register, data);
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        if (offset < 4)
        {
            if (offset == 0 && data.Length == 4)
                Volatile.Write(ref _configAddress, BinaryPrimitives.ReadUInt32LittleEndian(data) & ConfigAddressWritable);
            else if (offset == 1 && data.Length == 1)
                ResetControl?.PortWrite(0, data);
            return;
        }
        var address = Volatile.Read(ref _configAddress);
        if ((address & ConfigAddressEnable) == 0 || (offset - 4) + data.Length > 4
            || FindForAccess((byte)(address >> 16), (int)(address >> 11) & 31, (int)(address >> 8) & 7) is not { } f)
        {
            return;
        }
        f.ConfigWrite((int)(address & 0xFC) + (offset - 4), data);
    }

    /// <summary>CONFIG_ADDRESS as the guest last wrote it.</summary>
    public uint ConfigAddress => Volatile.Read(ref _configAddress);

    // ---- ECAM ----

    public void MmioRead(ulong offset, Span<byte> data)
    {
        if (data.Length == 8)
        {
            // A quadword splits into two dword configuration reads.
            MmioRead(offset, data[..4]);
            MmioRead(offset + 4, data[4..]);
            return;
        }
        var register = (int)(offset & 0xFFF);
        if ((register & 3) + data.Length > 4 || EcamFunction(offset) is not { } f)
        {
            data.Fill(0xFF);
            return;
        }
        f.ConfigRead(register, data);
    }

    public void MmioWrite(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.Length == 8)
        {
            MmioWrite(offset, data[..4]);
            MmioWrite(offset + 4, data[4..]);
            return;
        }
        var register = (int)(offset & 0xFFF);
        if ((register & 3) + data.Length > 4 || EcamFunction(offset) is not { } f)
            return;
        f.ConfigWrite(register, data);
    }

    /// <summary>PCI Express Base 4.0 §7.2.2, Table 7-1: address bits 27:20 bus, 19:15 device, 14:12 function.</summary>
    private PciDevice? EcamFunction(ulong offset) =>
        FindForAccess((byte)(offset >> 20), (int)(offset >> 15) & 31, (int)(offset >> 12) & 7);

    private PciDevice? FindForAccess(byte bus, int device, int function)
    {
        // Only bus 0 exists: there are no PCI-to-PCI bridges behind the host bridge.
        return bus == 0 ? _functions[device * Functions + function] : null;
    }

    // ---- BAR placement ----

    internal bool TryMapBar(PciBar bar, ulong address, string owner)
    {
        try
        {
            if (bar.Kind == PciBarKind.Io)
                _pio.Register((ushort)address, (ushort)bar.Size, bar.Window, $"{owner} BAR{bar.Index}");
            else
                _mmio.Register(address, bar.Size, bar.Window, $"{owner} BAR{bar.Index}");
            return true;
        }
        catch (BusConflictException)
        {
            return false;
        }
    }

    internal void UnmapBar(PciBar bar, ulong address)
    {
        if (bar.Kind == PciBarKind.Io)
            _pio.Unregister((ushort)address);
        else
            _mmio.Unregister(address);
    }

    /// <summary>Programs every BAR the way firmware would for a guest booted without firmware:
    /// I/O BARs from <paramref name="ioBase"/>, 32-bit memory BARs in the 32-bit window
    /// (<see cref="MemoryLayout.Pci32MmioBase"/> up to the ECAM window), 64-bit memory BARs above RAM
    /// (<see cref="MemoryLayout.Pci64MmioBase"/>), largest first so each is naturally aligned; then
    /// enables I/O and memory decoding on each function that has such BARs.</summary>
    /// <remarks>Linux keeps firmware-assigned BARs that fit its host bridge windows and assigns any
    /// it finds unassigned or conflicting, so this is a convenience that also makes the result
    /// match the ACPI _CRS the firmware tables describe.</remarks>
    /// <exception cref="InvalidOperationException">The BARs do not fit their windows.</exception>
    public void AssignBars(MemoryLayout layout, ushort ioBase = 0xC000, ushort ioLimit = 0xFFFF)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var bars = new List<(PciDevice Function, PciBar Bar)>();
        foreach (var f in AttachedFunctions)
        {
            for (var i = 0; i < 6; i++)
            {
                if (f.GetBar(i) is { } b)
                    bars.Add((f, b));
            }
        }
        bars.Sort((a, b) => b.Bar.Size.CompareTo(a.Bar.Size));
        Span<ulong> next = [ioBase, MemoryLayout.Pci32MmioBase, layout.Pci64MmioBase];
        const ulong mem64Limit = 1UL << 46;
        foreach (var (f, bar) in bars)
        {
            var window = (int)bar.Kind;
            var limit = bar.Kind switch { PciBarKind.Io => (ulong)ioLimit + 1, PciBarKind.Memory32 => MemoryLayout.PcieEcamBase, _ => mem64Limit };
            var at = (next[window] + bar.Size - 1) & ~(bar.Size - 1);
            if (at + bar.Size > limit)
                throw new InvalidOperationException($"{f.Name} at {f.Address}: BAR{bar.Index} (0x{bar.Size:X} bytes) does not fit the {bar.Kind} window");
            next[window] = at + bar.Size;
            var reg = PciHeader.Bar0 + 4 * bar.Index;
            f.ConfigWriteDword(reg, (uint)at);
            if (bar.Kind == PciBarKind.Memory64)
                f.ConfigWriteDword(reg + 4, (uint)(at >> 32));
        }
        Span<byte> c = stackalloc byte[2];
        foreach (var f in AttachedFunctions)
        {
            var command = (ushort)0;
            for (var i = 0; i < 6; i++)
            {
                if (f.GetBar(i) is { } b)
                    command |= (ushort)(b.Kind == PciBarKind.Io ? PciCommand.IoSpace : PciCommand.MemorySpace);
            }
            if (command != 0)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(c, (ushort)((ushort)f.Command | command));
                f.ConfigWrite(PciHeader.Command, c);
            }
        }
    }

    /// <summary>Power-on state of the host bridge's decoder: CONFIG_ADDRESS zero. Each function is
    /// reset by its own lifecycle (<see cref="PciDevice.Reset"/>), which also unmaps its BARs.</summary>
    public void Reset() => Volatile.Write(ref _configAddress, 0);
}

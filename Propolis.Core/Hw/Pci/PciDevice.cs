using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Intr;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Pci;

/// <summary>A PCI function: its configuration space (256 bytes conventional plus the PCI Express
/// extended space up to 4 KiB), BARs, capabilities, and INTx/MSI/MSI-X signalling.</summary>
/// <remarks>
/// <para>Configuration space is decoded the way the bus delivers it: as aligned dwords with byte
/// enables (PCI Local Bus 3.0 §3.2.2.3.2). Registers are described by <see cref="ConfigRegister"/>
/// tables (the type 0 header, each capability); a write changes only the bits the table marks
/// writable, and clears the RW1C bits written as one. BAR registers are decoded from each BAR's
/// kind and size; device-specific registers (<see cref="AddCustomConfig"/>) go to the subclass.</para>
/// <para>A subclass declares its BARs, capabilities and INTx use in its constructor, before the
/// function is attached to a <see cref="PciBus"/>. When the guest programs a BAR and enables
/// decoding in the command register, the BAR is mapped on the port I/O or MMIO bus and accesses to
/// it reach <see cref="BarRead"/>/<see cref="BarWrite"/> (MSI-X table and PBA accesses are handled
/// here). Config accesses are serialised by one lock per function; BAR accesses are not.</para>
/// </remarks>
public abstract partial class PciDevice
{
    private const int BarCount = 6;

    private readonly byte[] _config = new byte[PciHeader.ExtendedSize];
    private readonly byte[] _writeMask = new byte[PciHeader.ExtendedSize];
    private readonly byte[] _rw1cMask = new byte[PciHeader.ExtendedSize];
    private byte[]? _resetConfig;
    private readonly PciBar?[] _bars = new PciBar?[BarCount];
    private readonly List<(int Offset, int Length)> _customRegions = [];
    private readonly List<(int Offset, int Length)> _capabilities = [];
    private readonly Lock _lock = new();
    private int _nextCapability = PciHeader.Size;
    private int _lastCapability;
    private bool _usesIntx;
    private bool _intxAsserted;
    private bool _intxDriven;
    private IIrqLine? _intxLine;
    private PciBus? _bus;
    private ILogger _logger = NullLogger.Instance;

    protected PciDevice(PciIdentity identity, bool multiFunction = false)
    {
        foreach (var r in PciHeader.Table)
        {
            DefineRegister(0, r);
        }
        Identity = identity;
        Span<byte> c = _config;
        BinaryPrimitives.WriteUInt16LittleEndian(c[PciHeader.VendorId..], identity.VendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(c[PciHeader.DeviceId..], identity.DeviceId);
        c[PciHeader.RevisionId] = identity.Revision;
        c[PciHeader.ProgIf] = identity.ProgIf;
        c[PciHeader.Subclass] = identity.Subclass;
        c[PciHeader.ClassCode] = identity.ClassCode;
        c[PciHeader.HeaderType] = (byte)(multiFunction ? 0x80 : 0x00);
        BinaryPrimitives.WriteUInt16LittleEndian(c[PciHeader.SubsystemVendorId..], identity.SubsystemVendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(c[PciHeader.SubsystemId..], identity.SubsystemId);
    }

    public PciIdentity Identity { get; }

    /// <summary>Where the function sits, once attached.</summary>
    public PciAddress? Address { get; private set; }

    /// <summary>The BAR with number <paramref name="index"/>, or null (also for the upper half of a 64-bit BAR).</summary>
    public PciBar? GetBar(int index) => (uint)index < BarCount ? _bars[index] : null;

    public MsiCapability? Msi { get; private set; }
    public MsixCapability? Msix { get; private set; }

    /// <summary>The INTx pin the bus assigned (<see cref="PciInterruptPin.None"/> if the function uses none).</summary>
    public PciInterruptPin InterruptPin => (PciInterruptPin)_config[PciHeader.InterruptPin];

    public PciCommand Command
    {
        get
        {
            lock (_lock)
            {
                return (PciCommand)BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(PciHeader.Command));
            }
        }
    }

    /// <summary>Human-readable name for logs and bus conflict errors.</summary>
    public virtual string Name => $"pci-{Identity.VendorId:x4}:{Identity.DeviceId:x4}";

    // ---- declaration (constructor time) ----

    /// <summary>Declares BAR <paramref name="index"/> (a 64-bit BAR also takes <paramref name="index"/> + 1).
    /// <paramref name="size"/> is a power of two: at least 4 bytes and at most 256 for I/O (§6.2.5.1),
    /// at least 16 bytes for memory.</summary>
    protected PciBar DefineBar(int index, PciBarKind kind, ulong size, bool prefetchable = false)
    {
        ThrowIfAttached();
        var slots = kind == PciBarKind.Memory64 ? 2 : 1;
        if (index < 0 || index + slots > BarCount || _bars[index] != null || (slots == 2 && _bars[index + 1] != null) || IsUpperHalf(index))
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, "BAR slot is out of range or already used");
        }
        var min = kind == PciBarKind.Io ? 4UL : 16UL;
        var max = kind switch { PciBarKind.Io => 256UL, PciBarKind.Memory32 => 1UL << 31, _ => 1UL << 62 };
        if (!ulong.IsPow2(size) || size < min || size > max)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, $"a {kind} BAR must be a power of two in [{min}, {max}]");
        }
        if (kind == PciBarKind.Io && prefetchable)
        {
            throw new ArgumentException("an I/O BAR cannot be prefetchable", nameof(prefetchable));
        }
        var bar = new PciBar(this, index, kind, size, prefetchable);
        _bars[index] = bar;
        return bar;
    }

    /// <summary>Declares that the function signals INTx; the bus chooses the pin and routing.</summary>
    protected void UseIntx()
    {
        ThrowIfAttached();
        _usesIntx = true;
    }

    /// <summary>Declares plain device-specific registers (storage with the given write masks and no
    /// side effects) in the device-specific area; they read zero until written.</summary>
    protected void DefineDeviceRegisters(ReadOnlySpan<ConfigRegister> registers)
    {
        ThrowIfAttached();
        foreach (var r in registers)
        {
            if (r.Offset < PciHeader.Size || r.Width is < 1 or > 4 || r.Offset + r.Width > PciHeader.ExtendedSize)
                throw new ArgumentOutOfRangeException(nameof(registers), $"register {r.Name} at 0x{r.Offset:X} is outside the device-specific area");
            DefineRegister(0, r);
        }
    }

    /// <summary>Sends configuration accesses to dwords [<paramref name="offset"/>, +<paramref name="length"/>)
    /// to <see cref="CustomConfigRead"/> and <see cref="CustomConfigWrite"/>.</summary>
    protected void AddCustomConfig(int offset, int length)
    {
        ThrowIfAttached();
        if (offset < PciHeader.Size || length <= 0 || offset % 4 != 0 || length % 4 != 0 || offset + length > PciHeader.ExtendedSize
            || Overlaps(_capabilities, offset, length) || Overlaps(_customRegions, offset, length))
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"custom config region 0x{offset:X}+0x{length:X} is unaligned, outside the device-specific area or overlapping");
        }
        _customRegions.Add((offset, length));
    }

    /// <summary>Adds an MSI capability with <paramref name="vectors"/> (1–32, a power of two) vectors,
    /// 64-bit addresses and per-vector masking (§6.8.1).</summary>
    protected MsiCapability AddMsi(int vectors)
    {
        if (Msi != null)
            throw new InvalidOperationException("the function already has an MSI capability");
        var offset = AddCapability(PciCapabilityId.Msi, MsiCapability.Layout);
        Msi = new MsiCapability(this, offset, vectors);
        return Msi;
    }

    /// <summary>Adds an MSI-X capability (§6.8.2) with <paramref name="vectors"/> (1–2048) table
    /// entries; the table and PBA live in memory BARs already declared, at 8-byte-aligned offsets.</summary>
    protected MsixCapability AddMsix(int vectors, int tableBar, uint tableOffset, int pbaBar, uint pbaOffset)
    {
        if (Msix != null)
            throw new InvalidOperationException("the function already has an MSI-X capability");
        if (vectors < 1 || vectors > 2048)
            throw new ArgumentOutOfRangeException(nameof(vectors), vectors, "MSI-X supports 1 to 2048 vectors");
        CheckMsixStructure(tableBar, tableOffset, (ulong)vectors * MsixCapability.EntrySize, "table");
        CheckMsixStructure(pbaBar, pbaOffset, (ulong)(vectors + 63) / 64 * 8, "PBA");
        var offset = AddCapability(PciCapabilityId.Msix, MsixCapability.Layout);
        Msix = new MsixCapability(this, offset, vectors, tableBar, tableOffset, pbaBar, pbaOffset);
        return Msix;
    }

    private void CheckMsixStructure(int bar, uint offset, ulong length, string what)
    {
        var b = GetBar(bar);
        if (b == null || b.Kind == PciBarKind.Io || offset % 8 != 0 || offset + length > b.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(bar), $"MSI-X {what} at BAR {bar}+0x{offset:X} (0x{length:X} bytes) does not fit a memory BAR");
        }
    }

    /// <summary>Adds a vendor-specific capability (ID 09h, PCI Local Bus 3.0 §6.7 and Appendix H):
    /// <paramref name="body"/> is everything after the ID and next-pointer bytes (for a virtio
    /// <c>virtio_pci_cap</c>: cap_len, cfg_type, bar, ...). The body is read-only to the guest.
    /// Returns the capability's offset in configuration space.</summary>
    /// <param name="writable">Registers of the capability the guest may write (offsets from the
    /// capability's start, as for MSI); everything else is read-only.</param>
    /// <param name="customDwords">Offsets (from the capability's start, dword aligned) of dwords
    /// handled by <see cref="CustomConfigRead"/>/<see cref="CustomConfigWrite"/>, such as a data
    /// window (virtio's VIRTIO_PCI_CAP_PCI_CFG).</param>
    protected int AddVendorCapability(ReadOnlySpan<byte> body, ReadOnlySpan<ConfigRegister> writable = default, ReadOnlySpan<int> customDwords = default)
    {
        if (body.Length < 1 || body.Length > PciHeader.ConventionalSize - PciHeader.Size - 2)
            throw new ArgumentOutOfRangeException(nameof(body), body.Length, "a vendor-specific capability body is 1 to 190 bytes");
        var offset = AddCapability(PciCapabilityId.VendorSpecific, writable, 2 + body.Length);
        body.CopyTo(_config.AsSpan(offset + 2));
        foreach (var d in customDwords)
        {
            if (d < 4 || d % 4 != 0 || d + 4 > 2 + body.Length)
                throw new ArgumentOutOfRangeException(nameof(customDwords), d, "a custom dword must be an aligned dword inside the capability, after its header");
            _customRegions.Add((offset + d, 4));
        }
        return offset;
    }

    /// <summary>Places a capability structure in the chain; <paramref name="layout"/> offsets are relative
    /// to the capability and exclude the ID and next-pointer bytes, which this method writes.</summary>
    private int AddCapability(byte id, ReadOnlySpan<ConfigRegister> layout, int minLength = 2)
    {
        ThrowIfAttached();
        var length = minLength;
        foreach (var r in layout)
            length = Math.Max(length, r.Offset + r.Width);
        var offset = _nextCapability;
        while (Overlaps(_customRegions, offset, length))
        {
            offset += 4;
        }
        if (offset + length > PciHeader.ConventionalSize)
            throw new InvalidOperationException("no room for another capability in conventional configuration space");
        _config[offset] = id;
        foreach (var r in layout)
            DefineRegister(offset, r);
        if (_lastCapability == 0)
            _config[PciHeader.CapabilitiesPointer] = (byte)offset;
        else
            _config[_lastCapability + 1] = (byte)offset;
        _config[PciHeader.Status] |= (byte)PciStatus.CapabilitiesList;
        _lastCapability = offset;
        _capabilities.Add((offset, length));
        _nextCapability = (offset + length + 3) & ~3;
        return offset;
    }

    private void DefineRegister(int baseOffset, ConfigRegister r)
    {
        for (var i = 0; i < r.Width && i < 4; i++)
        {
            _writeMask[baseOffset + r.Offset + i] = (byte)(r.WriteMask >> (8 * i));
            _rw1cMask[baseOffset + r.Offset + i] = (byte)(r.Rw1cMask >> (8 * i));
        }
    }

    private static bool Overlaps(List<(int Offset, int Length)> regions, int offset, int length)
    {
        foreach (var (o, l) in regions)
        {
            if (offset < o + l && o < offset + length)
                return true;
        }
        return false;
    }

    private bool IsUpperHalf(int index) => index > 0 && _bars[index - 1]?.Kind == PciBarKind.Memory64;

    private void ThrowIfAttached()
    {
        if (_resetConfig != null)
            throw new InvalidOperationException("the function's layout is fixed once it is attached to a bus");
    }

    // ---- attachment ----

    internal void Attach(PciBus bus, PciAddress address, PciInterruptPin pin, IIrqLine? line, ILogger logger)
    {
        if (_bus != null)
            throw new InvalidOperationException($"{Name} is already attached at {Address}");
        _bus = bus;
        Address = address;
        _logger = logger;
        if (_usesIntx)
        {
            _config[PciHeader.InterruptPin] = (byte)pin;
            _intxLine = line;
        }
        _resetConfig = (byte[])_config.Clone();
    }

    internal bool UsesIntx => _usesIntx;

    internal IMsiSink? MsiSink => _bus?.MsiSink;

    /// <summary>The bus's ioeventfd registrar, once attached (null when there is none).</summary>
    protected IIoEventRegistrar? IoEvents => _bus?.IoEvents;

    // ---- configuration access ----

    /// <summary>A configuration read of 1, 2 or 4 bytes at <paramref name="offset"/> (0–0xFFF).
    /// Out-of-range or dword-crossing parts read as all ones.</summary>
    public void ConfigRead(int offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (var i = 0; i < data.Length;)
            {
                var off = offset + i;
                if ((uint)off >= PciHeader.ExtendedSize)
                {
                    data[i..].Fill(0xFF);
                    return;
                }
                var dword = ReadDwordLocked(off & ~3);
                for (var b = off & 3; b < 4 && i < data.Length; b++, i++)
                {
                    data[i] = (byte)(dword >> (8 * b));
                }
            }
        }
    }

    /// <summary>A configuration write of 1, 2 or 4 bytes at <paramref name="offset"/> (0–0xFFF).</summary>
    public void ConfigWrite(int offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (var i = 0; i < data.Length;)
            {
                var off = offset + i;
                if ((uint)off >= PciHeader.ExtendedSize)
                    return;
                uint value = 0, mask = 0;
                for (var b = off & 3; b < 4 && i < data.Length; b++, i++)
                {
                    value |= (uint)data[i] << (8 * b);
                    mask |= 0xFFu << (8 * b);
                }
                WriteDwordLocked(off & ~3, value, mask);
            }
        }
    }

    public uint ConfigReadDword(int offset)
    {
        Span<byte> b = stackalloc byte[4];
        ConfigRead(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void ConfigWriteDword(int offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        ConfigWrite(offset, b);
    }

    private uint ReadDwordLocked(int offset)
    {
        if (offset >= PciHeader.Bar0 && offset < PciHeader.BarEnd)
            return ReadBarRegister((offset - PciHeader.Bar0) / 4);
        if (InCustomRegion(offset))
            return CustomConfigRead(offset);
        return BinaryPrimitives.ReadUInt32LittleEndian(_config.AsSpan(offset));
    }

    private void WriteDwordLocked(int offset, uint value, uint mask)
    {
        if (offset >= PciHeader.Bar0 && offset < PciHeader.BarEnd)
        {
            var index = (offset - PciHeader.Bar0) / 4;
            WriteBarRegister(index, (ReadBarRegister(index) & ~mask) | (value & mask));
            return;
        }
        if (InCustomRegion(offset))
        {
            CustomConfigWrite(offset, value, mask);
            return;
        }
        var oldCommand = (PciCommand)BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(PciHeader.Command));
        for (var b = 0; b < 4; b++)
        {
            if (((mask >> (8 * b)) & 0xFF) == 0)
                continue;
            var i = offset + b;
            var v = (byte)(value >> (8 * b));
            var cur = _config[i];
            cur = (byte)((cur & ~_writeMask[i]) | (v & _writeMask[i]));
            cur &= (byte)~(v & _rw1cMask[i]);
            _config[i] = cur;
        }
        if (offset == PciHeader.Command)
        {
            var newCommand = (PciCommand)BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(PciHeader.Command));
            if (newCommand != oldCommand)
                OnCommandChangedLocked(oldCommand, newCommand);
        }
        Msi?.AfterConfigWrite(offset);
        Msix?.AfterConfigWrite(offset);
    }

    private bool InCustomRegion(int offset)
    {
        foreach (var (o, l) in _customRegions)
        {
            if (offset >= o && offset < o + l)
                return true;
        }
        return false;
    }

    /// <summary>Config space bytes for the capabilities (read under the config lock).</summary>
    internal Span<byte> ConfigBytes => _config;

    internal Lock ConfigLock => _lock;

    /// <summary>Reads a device-specific dword (see <see cref="AddCustomConfig"/>); called under the config lock.</summary>
    protected virtual uint CustomConfigRead(int offset) => 0;

    /// <summary>Writes the bytes of a device-specific dword selected by <paramref name="byteMask"/>
    /// (0xFF per enabled byte); called under the config lock.</summary>
    protected virtual void CustomConfigWrite(int offset, uint value, uint byteMask)
    {
    }

    // ---- BARs ----

    private uint ReadBarRegister(int index)
    {
        var bar = _bars[index];
        if (bar != null)
        {
            return (uint)(bar.Address & ~(bar.Size - 1)) & (bar.Kind == PciBarKind.Io ? ~3u : ~0xFu) | bar.TypeBits;
        }
        if (IsUpperHalf(index))
        {
            return (uint)(_bars[index - 1]!.Address >> 32);
        }
        return 0;
    }

    private void WriteBarRegister(int index, uint value)
    {
        PciBar? bar = _bars[index];
        ulong address;
        if (bar != null)
        {
            var low = bar.Kind == PciBarKind.Io ? value & ~3u : value & ~0xFu;
            address = (bar.Address & 0xFFFF_FFFF_0000_0000UL) | low;
        }
        else if (IsUpperHalf(index))
        {
            bar = _bars[index - 1]!;
            address = (bar.Address & 0xFFFF_FFFFUL) | ((ulong)value << 32);
        }
        else
        {
            return; // unimplemented BAR: hardwired zero (§6.2.5.1)
        }
        address &= ~(bar.Size - 1);
        if (bar.Kind != PciBarKind.Memory64)
            address &= 0xFFFF_FFFFUL;
        bar.Address = address;
        UpdateBarMappingLocked(bar, CommandLocked);
    }

    private PciCommand CommandLocked => (PciCommand)BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(PciHeader.Command));

    private void OnCommandChangedLocked(PciCommand oldCommand, PciCommand newCommand)
    {
        if (((oldCommand ^ newCommand) & (PciCommand.IoSpace | PciCommand.MemorySpace)) != 0)
        {
            foreach (var bar in _bars)
            {
                if (bar != null)
                    UpdateBarMappingLocked(bar, newCommand);
            }
        }
        if (((oldCommand ^ newCommand) & PciCommand.InterruptDisable) != 0)
            UpdateIntxLocked();
    }

    /// <summary>Maps the BAR where it is programmed when its decode is enabled, and unmaps it
    /// otherwise (§6.2.2: the IO Space and Memory Space bits gate decoding).</summary>
    private void UpdateBarMappingLocked(PciBar bar, PciCommand command)
    {
        var bus = _bus;
        if (bus == null)
            return;
        var enabled = bar.Kind == PciBarKind.Io ? (command & PciCommand.IoSpace) != 0 : (command & PciCommand.MemorySpace) != 0;
        ulong? want = null;
        if (enabled && bar.Address != 0)
        {
            var fits = bar.Kind == PciBarKind.Io ? bar.Address + bar.Size <= 0x1_0000 : bar.Address + bar.Size > bar.Address;
            if (fits)
                want = bar.Address;
        }
        if (bar.MappedAt == want)
            return;
        var previous = bar.MappedAt;
        if (bar.MappedAt is { } old)
        {
            bus.UnmapBar(bar, old);
            bar.MappedAt = null;
        }
        if (want is { } at)
        {
            if (bus.TryMapBar(bar, at, Name))
                bar.MappedAt = at;
            else
                LogBarConflict(Name, bar.Index, at, bar.Size);
        }
        if (previous != bar.MappedAt)
            OnBarMappingChanged(bar, previous, bar.MappedAt);
    }

    /// <summary>A BAR started or stopped being decoded, or moved (<paramref name="oldAddress"/> and
    /// <paramref name="newAddress"/> are null when not decoded). Called under the config lock; a
    /// device that has the hypervisor watch addresses inside the BAR (ioeventfd doorbells) moves
    /// those registrations here.</summary>
    protected virtual void OnBarMappingChanged(PciBar bar, ulong? oldAddress, ulong? newAddress)
    {
    }

    internal void DispatchBarRead(int index, ulong offset, Span<byte> data)
    {
        if (Msix != null && Msix.TryRead(index, offset, data))
            return;
        BarRead(index, offset, data);
    }

    internal void DispatchBarWrite(int index, ulong offset, ReadOnlySpan<byte> data)
    {
        if (Msix != null && Msix.TryWrite(index, offset, data))
            return;
        BarWrite(index, offset, data);
    }

    /// <summary>A guest read of a mapped BAR (offset from the BAR's base). Same rules as
    /// <see cref="IMmioHandler"/>: no blocking, no allocation, no exception for guest values.</summary>
    protected virtual void BarRead(int bar, ulong offset, Span<byte> data) => data.Fill(0xFF);

    protected virtual void BarWrite(int bar, ulong offset, ReadOnlySpan<byte> data)
    {
    }

    // ---- INTx ----

    /// <summary>Drives the function's INTx level (a level-triggered, shared line). The Interrupt
    /// Status bit follows the request; the line follows it unless Interrupt Disable is set (§6.2.2, §6.2.3).</summary>
    protected void SetIntx(bool asserted)
    {
        lock (_lock)
        {
            _intxAsserted = asserted;
            UpdateIntxLocked();
        }
    }

    private void UpdateIntxLocked()
    {
        if (_intxAsserted)
            _config[PciHeader.Status] |= (byte)PciStatus.InterruptStatus;
        else
            _config[PciHeader.Status] &= unchecked((byte)~PciStatus.InterruptStatus);
        var drive = _intxAsserted && (CommandLocked & PciCommand.InterruptDisable) == 0;
        if (drive != _intxDriven)
        {
            _intxDriven = drive;
            _intxLine?.SetLevel(drive);
        }
    }

    // ---- lifecycle ----

    /// <summary>Returns the function to its power-on state: BARs unprogrammed and unmapped, command
    /// register clear, MSI and MSI-X disabled, INTx deasserted; then <see cref="OnReset"/>.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            if (_resetConfig != null)
            {
                var pin = _config[PciHeader.InterruptPin];
                _resetConfig.CopyTo(_config, 0);
                _config[PciHeader.InterruptPin] = pin;
            }
            foreach (var bar in _bars)
            {
                if (bar == null)
                    continue;
                bar.Address = 0;
                UpdateBarMappingLocked(bar, 0);
            }
            _intxAsserted = false;
            UpdateIntxLocked();
            // MSI state lives in the config bytes just restored; MSI-X keeps its table outside them.
            Msix?.Reset();
            OnReset();
        }
    }

    /// <summary>Device-specific reset, called under the config lock at the end of <see cref="Reset"/>.</summary>
    protected virtual void OnReset()
    {
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Device}: BAR {Bar} programmed at 0x{Address:X} (+0x{Size:X}) overlaps another device; not decoded")]
    private partial void LogBarConflict(string device, int bar, ulong address, ulong size);
}

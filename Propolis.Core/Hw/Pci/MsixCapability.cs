using System.Buffers.Binary;
using Propolis.Core.Vmm;

namespace Propolis.Core.Hw.Pci;

/// <summary>The MSI-X capability, table and Pending Bit Array (PCI Local Bus 3.0 §6.8.2).</summary>
/// <remarks>The table and PBA live in the function's memory BARs; <see cref="PciDevice"/> routes
/// accesses to them here before the device sees the rest of the BAR. Delivery takes one lock, no
/// allocation: safe to call from any thread.</remarks>
public sealed class MsixCapability
{
    public const int MessageControl = 0x02;
    public const int TableOffsetBir = 0x04;
    public const int PbaOffsetBir = 0x08;
    public const int Length = 0x0C;

    /// <summary>§6.8.2.3: Table Size is read-only; Function Mask and MSI-X Enable are writable.</summary>
    internal static readonly ConfigRegister[] Layout =
    [
        new("Message Control", MessageControl, 2, 0xC000),
        new("Table Offset/Table BIR", TableOffsetBir, 4, 0),
        new("PBA Offset/PBA BIR", PbaOffsetBir, 4, 0),
    ];

    /// <summary>§6.8.2.6–9: an entry is Message Address, Message Upper Address, Message Data and
    /// Vector Control, one dword each.</summary>
    public const int EntrySize = 16;
    private const int EntryAddress = 0x0;
    private const int EntryUpperAddress = 0x4;
    private const int EntryData = 0x8;
    private const int EntryVectorControl = 0xC;
    private const uint VectorControlMask = 1;

    private const ushort ControlFunctionMask = 1 << 14;
    private const ushort ControlEnable = 1 << 15;

    private readonly PciDevice _device;
    private readonly Lock _lock = new();
    private readonly uint[] _table;
    private readonly ulong[] _pba;
    private readonly IMsiRoute?[] _routes;
    /// <summary>Vectors whose irqfd was handed out (<see cref="AcquireIrqFd"/>): their routes follow the table eagerly.</summary>
    private readonly bool[] _external;
    private bool _anyExternal;
    private bool _enabled;
    private bool _functionMasked;

    internal MsixCapability(PciDevice device, int offset, int vectors, int tableBar, uint tableOffset, int pbaBar, uint pbaOffset)
    {
        _device = device;
        Offset = offset;
        Vectors = vectors;
        TableBar = tableBar;
        TableOffset = tableOffset;
        PbaBar = pbaBar;
        PbaOffset = pbaOffset;
        _table = new uint[vectors * 4];
        _pba = new ulong[(vectors + 63) / 64];
        _routes = new IMsiRoute?[vectors];
        _external = new bool[vectors];
        var config = device.ConfigBytes;
        BinaryPrimitives.WriteUInt16LittleEndian(config[(offset + MessageControl)..], (ushort)(vectors - 1));
        BinaryPrimitives.WriteUInt32LittleEndian(config[(offset + TableOffsetBir)..], tableOffset | (uint)tableBar);
        BinaryPrimitives.WriteUInt32LittleEndian(config[(offset + PbaOffsetBir)..], pbaOffset | (uint)pbaBar);
        Reset();
    }

    public int Offset { get; }
    public int Vectors { get; }
    public int TableBar { get; }
    public uint TableOffset { get; }
    public int PbaBar { get; }
    public uint PbaOffset { get; }

    private ulong TableLength => (ulong)Vectors * EntrySize;
    private ulong PbaLength => (ulong)_pba.Length * 8;

    public bool Enabled { get { lock (_lock) return _enabled; } }
    public bool FunctionMasked { get { lock (_lock) return _functionMasked; } }

    public bool IsPending(int vector)
    {
        lock (_lock)
            return (uint)vector < (uint)Vectors && (_pba[vector >> 6] & (1UL << (vector & 63))) != 0;
    }

    /// <summary>Signals <paramref name="vector"/>. If MSI-X is enabled the message is sent, or its
    /// pending bit set while the vector or the function is masked (§6.8.2.9). Returns false when
    /// MSI-X is disabled or the vector is out of range.</summary>
    public bool Notify(int vector)
    {
        lock (_lock)
        {
            if (!_enabled || (uint)vector >= (uint)Vectors)
                return false;
            if (_functionMasked || (_table[vector * 4 + 3] & VectorControlMask) != 0)
            {
                _pba[vector >> 6] |= 1UL << (vector & 63);
                return true;
            }
            Send(vector);
            return true;
        }
    }

    private void Send(int vector)
    {
        var e = vector * 4;
        var address = ((ulong)_table[e + 1] << 32) | _table[e];
        var data = _table[e + 2];
        var sink = _device.MsiSink;
        if (sink is IMsiRouteSource source)
        {
            // irqfd: one eventfd write; the route is (re)programmed only when the message changed.
            var route = _routes[vector] ??= source.CreateMsiRoute();
            if (route.Signal(address, data))
                return;
        }
        sink?.SignalMsi(address, data);
    }

    /// <summary>The eventfd of <paramref name="vector"/>'s irqfd route, for a producer outside this
    /// process's threads (vhost's call eventfd) that raises the vector by writing it. From this
    /// call on the route follows the table entry as the guest writes it: a new message
    /// reprograms the route at once, and while the vector is masked (its entry, the function
    /// mask, or MSI-X disabled, §6.8.2.9) the irqfd is detached from its GSI so that writes wait
    /// in the eventfd and are delivered when it is unmasked (standing in for the pending bit,
    /// which does not show them). Null if the machine's MSI sink has no irqfd routes or the
    /// vector is out of range.</summary>
    public EventFd? AcquireIrqFd(int vector)
    {
        lock (_lock)
        {
            if ((uint)vector >= (uint)Vectors || _device.MsiSink is not IMsiRouteSource source)
                return null;
            var route = _routes[vector] ??= source.CreateMsiRoute();
            var fd = route.IrqFd;
            if (fd is null)
                return null;
            _external[vector] = true;
            _anyExternal = true;
            UpdateRouteLocked(vector);
            return fd;
        }
    }

    private void UpdateExternalRoutesLocked()
    {
        if (!_anyExternal)
            return;
        for (var v = 0; v < Vectors; v++)
        {
            if (_external[v])
                UpdateRouteLocked(v);
        }
    }

    private void UpdateRouteLocked(int vector)
    {
        var e = vector * 4;
        var masked = !_enabled || _functionMasked || (_table[e + 3] & VectorControlMask) != 0;
        _routes[vector]!.Update(((ulong)_table[e + 1] << 32) | _table[e], _table[e + 2], masked);
    }

    /// <summary>Sends every pending vector that is no longer masked, clearing its pending bit.</summary>
    private void DeliverPendingLocked()
    {
        if (!_enabled || _functionMasked)
            return;
        for (var w = 0; w < _pba.Length; w++)
        {
            var bits = _pba[w];
            while (bits != 0)
            {
                var b = System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                var v = w * 64 + b;
                if ((_table[v * 4 + 3] & VectorControlMask) == 0)
                {
                    _pba[w] &= ~(1UL << b);
                    Send(v);
                }
            }
        }
    }

    /// <summary>Called under the config lock after a write to the dword at <paramref name="offset"/>.</summary>
    internal void AfterConfigWrite(int offset)
    {
        if (offset < Offset || offset >= Offset + Length)
            return;
        var control = BinaryPrimitives.ReadUInt16LittleEndian(_device.ConfigBytes[(Offset + MessageControl)..]);
        lock (_lock)
        {
            _enabled = (control & ControlEnable) != 0;
            _functionMasked = (control & ControlFunctionMask) != 0;
            UpdateExternalRoutesLocked();
            DeliverPendingLocked();
        }
    }

    internal bool TryRead(int bar, ulong offset, Span<byte> data)
    {
        if (bar == TableBar && offset - TableOffset < TableLength)
        {
            lock (_lock)
                ReadWords(_table, offset - TableOffset, data);
            return true;
        }
        if (bar == PbaBar && offset - PbaOffset < PbaLength)
        {
            Span<uint> words = stackalloc uint[2];
            lock (_lock)
            {
                var rel = offset - PbaOffset;
                var q = _pba[(int)(rel / 8)];
                words[0] = (uint)q;
                words[1] = (uint)(q >> 32);
                ReadWords(words, rel % 8, data);
            }
            return true;
        }
        return false;
    }

    internal bool TryWrite(int bar, ulong offset, ReadOnlySpan<byte> data)
    {
        if (bar == TableBar && offset - TableOffset < TableLength)
        {
            lock (_lock)
            {
                var rel = offset - TableOffset;
                for (var i = 0; i < data.Length && rel + (ulong)i < TableLength;)
                {
                    var pos = rel + (ulong)i;
                    var word = (int)(pos / 4);
                    var current = _table[word];
                    for (var b = (int)(pos % 4); b < 4 && i < data.Length; b++, i++)
                    {
                        current = (current & ~(0xFFu << (8 * b))) | ((uint)data[i] << (8 * b));
                    }
                    _table[word] = (word % 4) switch
                    {
                        EntryAddress / 4 => current & ~3u,            // §6.8.2.6: dword aligned
                        EntryVectorControl / 4 => current & VectorControlMask, // §6.8.2.9: other bits reserved
                        _ => current,
                    };
                }
                UpdateExternalRoutesLocked();
                DeliverPendingLocked();
            }
            return true;
        }
        // §6.8.2.10: the PBA is read-only; writes are ignored.
        return bar == PbaBar && offset - PbaOffset < PbaLength;
    }

    private static void ReadWords(ReadOnlySpan<uint> words, ulong offset, Span<byte> data)
    {
        for (var i = 0; i < data.Length; i++)
        {
            var pos = offset + (ulong)i;
            var w = pos / 4;
            data[i] = w < (ulong)words.Length ? (byte)(words[(int)w] >> (int)(8 * (pos % 4))) : (byte)0;
        }
    }

    /// <summary>The table entry of <paramref name="vector"/>: (address, data, masked).</summary>
    public (ulong Address, uint Data, bool Masked) GetEntry(int vector)
    {
        lock (_lock)
        {
            var e = vector * 4;
            return (((ulong)_table[e + EntryUpperAddress / 4] << 32) | _table[e + EntryAddress / 4], _table[e + EntryData / 4],
                (_table[e + EntryVectorControl / 4] & VectorControlMask) != 0);
        }
    }

    /// <summary>§6.8.2.9: every vector masked, nothing pending, MSI-X disabled.</summary>
    internal void Reset()
    {
        lock (_lock)
        {
            Array.Clear(_table);
            Array.Clear(_pba);
            for (var v = 0; v < Vectors; v++)
                _table[v * 4 + 3] = VectorControlMask;
            _enabled = false;
            _functionMasked = false;
            UpdateExternalRoutesLocked();
        }
    }
}

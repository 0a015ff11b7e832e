using System.Buffers.Binary;
using System.Collections.Frozen;
using Propolis.Core.Buses;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.FwCfg;

/// <summary>QEMU's firmware configuration device on x86 (QEMU docs/specs/fw_cfg.rst): a 16-bit
/// selector register and an 8-bit data register sharing ports 0x510–0x511, and the DMA address
/// register at 0x514 (high 32 bits) and 0x518 (low 32 bits, whose write starts the transfer),
/// big-endian.</summary>
/// <remarks>Built by <see cref="FwCfgBuilder"/>; its items are read-only. Registered as one
/// 12-port range at <see cref="BasePort"/>. Guest-supplied selectors, lengths and addresses are
/// checked: an unknown selector reads as zeros, a DMA access whose buffer is not RAM completes
/// with <see cref="FwCfgDmaControl.Error"/>, and a DMA descriptor that is not in RAM is dropped.
/// Port accesses allocate nothing.</remarks>
public sealed class FwCfgDevice : IPortIoHandler
{
    /// <summary>The selector/data ports on x86 (QEMU FW_CFG_IO_BASE).</summary>
    public const ushort BasePort = 0x510;

    /// <summary>Ports claimed from <see cref="BasePort"/>: selector/data 0x510–0x511, 0x512–0x513
    /// unused, DMA address 0x514–0x51B.</summary>
    public const ushort PortCount = 12;

    // Offsets from BasePort (docs/specs/fw_cfg.rst, "x86, x86_64 Register Locations").
    internal const ushort SelectorOffset = 0;  // 16-bit accesses
    internal const ushort DataOffset = 1;      // 8-bit accesses
    internal const ushort DmaHighOffset = 4;   // BE32, address bits 63:32
    internal const ushort DmaLowOffset = 8;    // BE32, address bits 31:0; writing starts the transfer

    /// <summary>FWCfgDmaAccess (docs/specs/fw_cfg.rst, "DMA interface"): all fields big-endian.</summary>
    internal static class DmaAccess
    {
        public const int Control = 0;  // BE32
        public const int Length = Control + 4;  // BE32
        public const int Address = Length + 4;  // BE64
        public const int Size = Address + 8;
    }

    /// <summary>What reads of the DMA address register return: "QEMU CFG" (fw_cfg.rst).</summary>
    private static ReadOnlySpan<byte> DmaSignature => "QEMU CFG"u8;

    private const ushort NoItem = 0xFFFF;

    private readonly FrozenDictionary<ushort, byte[]> _items;
    private readonly GuestMemory _memory;
    private readonly Lock _lock = new();

    private ushort _selector = NoItem;
    private byte[] _current = [];
    private uint _offset;
    private uint _dmaHigh;
    private uint _dmaLow;

    internal FwCfgDevice(FrozenDictionary<ushort, byte[]> items, GuestMemory memory)
    {
        _items = items;
        _memory = memory;
    }

    /// <summary>The bytes of the item with key <paramref name="selector"/>, if there is one.</summary>
    public bool TryGetItem(ushort selector, out ReadOnlyMemory<byte> contents)
    {
        if (_items.TryGetValue(Key(selector), out var bytes))
        {
            contents = bytes;
            return true;
        }
        contents = default;
        return false;
    }

    /// <summary>Claims <see cref="BasePort"/>..+<see cref="PortCount"/>.</summary>
    public void Register(PortIoRegistration register)
    {
        ArgumentNullException.ThrowIfNull(register);
        register(BasePort, PortCount, this, "fw_cfg");
    }

    /// <summary>Power-on state: nothing selected, DMA address zero.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            Select(NoItem);
            _dmaHigh = 0;
            _dmaLow = 0;
        }
    }

    public void PortRead(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            if (offset <= DataOffset)
            {
                // QEMU fw_cfg_comb_read: any read of 0x510–0x511 reads the data register. Each
                // byte of a wider access is the next byte of the item.
                for (int i = 0; i < data.Length; i++)
                {
                    data[i] = NextByte();
                }
                return;
            }
            if (offset >= DmaHighOffset && offset + data.Length <= DmaHighOffset + DmaSignature.Length)
            {
                DmaSignature.Slice(offset - DmaHighOffset, data.Length).CopyTo(data);
                return;
            }
            data.Clear();
        }
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (offset <= DataOffset)
            {
                // QEMU fw_cfg_comb_write: a 16-bit write selects, an 8-bit write is a data write,
                // which the read-only items ignore.
                if (data.Length == 2)
                {
                    Select(BinaryPrimitives.ReadUInt16LittleEndian(data));
                }
                return;
            }
            if (data.Length != 4)
            {
                return;
            }
            if (offset == DmaHighOffset)
            {
                _dmaHigh = BinaryPrimitives.ReadUInt32BigEndian(data);
            }
            else if (offset == DmaLowOffset)
            {
                _dmaLow = BinaryPrimitives.ReadUInt32BigEndian(data);
                var address = ((ulong)_dmaHigh << 32) | _dmaLow;
                // QEMU fw_cfg_dma_transfer: the address register is cleared when the transfer starts.
                _dmaHigh = 0;
                _dmaLow = 0;
                DmaTransfer(address);
            }
        }
    }

    private static ushort Key(ushort selector) => (ushort)(selector & ~FwCfgSelector.WriteChannel);

    private void Select(ushort selector)
    {
        _selector = Key(selector);
        _offset = 0;
        _current = _items.TryGetValue(_selector, out var bytes) ? bytes : [];
    }

    private byte NextByte()
    {
        if (_offset < (uint)_current.Length)
        {
            return _current[_offset++];
        }
        return 0;
    }

    /// <summary>Runs the FWCfgDmaAccess at <paramref name="address"/> and writes its control
    /// word back: zero on success, <see cref="FwCfgDmaControl.Error"/> otherwise.</summary>
    private void DmaTransfer(ulong address)
    {
        Span<byte> access = stackalloc byte[DmaAccess.Size];
        if (!_memory.TryRead(address, access))
        {
            // Nowhere to report the error: the guest polls a descriptor it did not give us.
            return;
        }
        var control = BinaryPrimitives.ReadUInt32BigEndian(access[DmaAccess.Control..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(access[DmaAccess.Length..]);
        var buffer = BinaryPrimitives.ReadUInt64BigEndian(access[DmaAccess.Address..]);

        var ok = Execute(control, length, buffer);
        _ = _memory.TryWriteUInt32(address + DmaAccess.Control, ok ? 0u : BinaryPrimitives.ReverseEndianness((uint)FwCfgDmaControl.Error));
    }

    private bool Execute(uint control, uint length, ulong buffer)
    {
        var flags = (FwCfgDmaControl)(control & 0xFFFF);
        const FwCfgDmaControl known = FwCfgDmaControl.Error | FwCfgDmaControl.Read | FwCfgDmaControl.Skip
            | FwCfgDmaControl.Select | FwCfgDmaControl.Write;
        if ((flags & ~known) != 0)
        {
            return false;
        }
        if ((flags & FwCfgDmaControl.Select) != 0)
        {
            Select((ushort)(control >> 16));
        }
        // Precedence per fw_cfg.rst: READ, else WRITE, else SKIP.
        if ((flags & FwCfgDmaControl.Read) != 0)
        {
            if (length > int.MaxValue || !_memory.TryGetSpan(buffer, (int)length, out var destination))
            {
                return false;
            }
            var available = _offset < (uint)_current.Length ? _current.AsSpan((int)_offset) : [];
            var copied = Math.Min(available.Length, destination.Length);
            available[..copied].CopyTo(destination);
            // Bytes past the end of the item read as zero (QEMU fw_cfg_dma_transfer).
            destination[copied..].Clear();
            _offset += (uint)copied;
            return true;
        }
        if ((flags & FwCfgDmaControl.Write) != 0)
        {
            // No item is writable (QEMU: "the write is refused" for read-only items).
            return false;
        }
        if ((flags & FwCfgDmaControl.Skip) != 0)
        {
            _offset = (uint)Math.Min((ulong)_offset + length, uint.MaxValue);
        }
        return true;
    }
}

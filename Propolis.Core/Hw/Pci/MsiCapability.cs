using System.Buffers.Binary;

namespace Propolis.Core.Hw.Pci;

/// <summary>The MSI capability with 64-bit message address and per-vector masking
/// (PCI Local Bus 3.0 §6.8.1, Figure 6-9, the fourth layout).</summary>
public sealed class MsiCapability
{
    public const int MessageControl = 0x02;
    public const int MessageAddress = 0x04;
    public const int MessageUpperAddress = 0x08;
    public const int MessageData = 0x0C;
    public const int MaskBits = 0x10;
    public const int PendingBits = 0x14;
    public const int Length = 0x18;

    private const ushort ControlEnable = 1 << 0;
    private const ushort ControlAddress64 = 1 << 7;
    private const ushort ControlPerVectorMasking = 1 << 8;

    /// <summary>§6.8.1.3: MSI Enable and Multiple Message Enable are writable; Multiple Message
    /// Capable, 64-bit Address Capable and Per-vector Masking Capable are read-only.
    /// §6.8.1.7: mask bits beyond the vector count are read-only zero (fixed up per instance).</summary>
    internal static readonly ConfigRegister[] Layout =
    [
        new("Message Control", MessageControl, 2, 0x0071),
        new("Message Address", MessageAddress, 4, 0xFFFF_FFFC),
        new("Message Upper Address", MessageUpperAddress, 4, 0xFFFF_FFFF),
        new("Message Data", MessageData, 2, 0xFFFF),
        new("Mask Bits", MaskBits, 4, 0xFFFF_FFFF),
        new("Pending Bits", PendingBits, 4, 0),
    ];

    private readonly PciDevice _device;

    internal MsiCapability(PciDevice device, int offset, int vectors)
    {
        if (vectors < 1 || vectors > 32 || !int.IsPow2(vectors))
            throw new ArgumentOutOfRangeException(nameof(vectors), vectors, "MSI supports 1, 2, 4, 8, 16 or 32 vectors");
        _device = device;
        Offset = offset;
        Vectors = vectors;
        var config = device.ConfigBytes;
        var control = (ushort)((int.Log2(vectors) << 1) | ControlAddress64 | ControlPerVectorMasking);
        BinaryPrimitives.WriteUInt16LittleEndian(config[(offset + MessageControl)..], control);
        _validMask = vectors == 32 ? uint.MaxValue : (1u << vectors) - 1;
    }

    private readonly uint _validMask;

    /// <summary>Offset of the capability in configuration space.</summary>
    public int Offset { get; }

    /// <summary>Vectors the function requests (Multiple Message Capable).</summary>
    public int Vectors { get; }

    public bool Enabled
    {
        get { lock (_device.ConfigLock) return (Control & ControlEnable) != 0; }
    }

    private ushort Control => BinaryPrimitives.ReadUInt16LittleEndian(_device.ConfigBytes[(Offset + MessageControl)..]);

    /// <summary>Vectors the guest allocated (Multiple Message Enable, capped at the capable count).</summary>
    private int EnabledVectors => Math.Min(1 << ((Control >> 4) & 7), Vectors);

    private uint Read32(int rel) => BinaryPrimitives.ReadUInt32LittleEndian(_device.ConfigBytes[(Offset + rel)..]);

    private void Write32(int rel, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_device.ConfigBytes[(Offset + rel)..], value);

    /// <summary>Signals <paramref name="vector"/>: sent if MSI is enabled and the vector unmasked,
    /// recorded as pending if masked (§6.8.1.7). Returns false if MSI is disabled or the vector
    /// was not allocated by the guest (the caller falls back to INTx).</summary>
    public bool Notify(int vector)
    {
        lock (_device.ConfigLock)
        {
            if ((Control & ControlEnable) == 0 || (uint)vector >= (uint)EnabledVectors)
                return false;
            var bit = 1u << vector;
            if ((Read32(MaskBits) & bit) != 0)
            {
                Write32(PendingBits, Read32(PendingBits) | bit);
                return true;
            }
            Send(vector);
            return true;
        }
    }

    private void Send(int vector)
    {
        var address = ((ulong)Read32(MessageUpperAddress) << 32) | Read32(MessageAddress);
        var data = BinaryPrimitives.ReadUInt16LittleEndian(_device.ConfigBytes[(Offset + MessageData)..]);
        // §6.8.1.6: with several vectors enabled the function modifies the low bits of the data.
        var n = (uint)EnabledVectors;
        _device.MsiSink?.SignalMsi(address, (data & ~(n - 1)) | (uint)vector);
    }

    /// <summary>Called under the config lock after a write to the dword at <paramref name="offset"/>.</summary>
    internal void AfterConfigWrite(int offset)
    {
        if (offset < Offset || offset >= Offset + Length)
            return;
        Write32(MaskBits, Read32(MaskBits) & _validMask);
        if ((Control & ControlEnable) == 0)
            return;
        // A vector unmasked while pending is sent now (§6.8.1.7).
        var deliverable = Read32(PendingBits) & ~Read32(MaskBits);
        for (var v = 0; deliverable != 0 && v < EnabledVectors; v++)
        {
            var bit = 1u << v;
            if ((deliverable & bit) == 0)
                continue;
            deliverable &= ~bit;
            Write32(PendingBits, Read32(PendingBits) & ~bit);
            Send(v);
        }
    }
}

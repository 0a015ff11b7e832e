using System.Buffers.Binary;

namespace Propolis.Core.Vmm;

/// <summary>Local APIC register page facts (Intel SDM Vol. 3A §10.4.1, Table 10-1).</summary>
public static class LocalApic
{
    public const int LvtLint0 = 0x350;
    public const int LvtLint1 = 0x360;

    /// <summary>LVT delivery mode field, bits 10:8 (Intel SDM Vol. 3A §10.5.1).</summary>
    private const uint DeliveryModeMask = 0x7u << 8;
    public const uint DeliveryModeNmi = 0x4u << 8;
    public const uint DeliveryModeExtInt = 0x7u << 8;

    /// <summary>In a 1 KiB APIC register page, LINT0 to ExtINT and LINT1 to NMI, other bits kept.</summary>
    public static void SetVirtualWire(Span<byte> registerPage)
    {
        Set(registerPage, LvtLint0, DeliveryModeExtInt);
        Set(registerPage, LvtLint1, DeliveryModeNmi);

        static void Set(Span<byte> page, int offset, uint mode)
        {
            var value = BinaryPrimitives.ReadUInt32LittleEndian(page[offset..]);
            BinaryPrimitives.WriteUInt32LittleEndian(page[offset..], (value & ~DeliveryModeMask) | mode);
        }
    }
}

namespace Propolis.Core.Hw.Chipset;

/// <summary>PCI IDs of the emulated chipset functions (propolis lib/propolis/src/hw/ids.rs).</summary>
public static class PciIds
{
    public const ushort VendorIntel = 0x8086;

    /// <summary>Oxide's PCI-SIG vendor ID, used as the subsystem vendor of emulated parts.</summary>
    public const ushort VendorOxide = 0x01DE;

    public const ushort I440FxHostBridge = 0x1237;
    public const ushort Piix3Isa = 0x7000;
    public const ushort Piix4Pm = 0x7113;

    public const ushort I440FxHostBridgeSubsystem = 0xFFFE;
    public const ushort Piix3IsaSubsystem = 0xFFFD;
    public const ushort Piix4PmSubsystem = 0xFFFC;

    /// <summary>Base class 06h (bridge) and its sub-classes (PCI Code and ID Assignment §1).</summary>
    public const byte ClassBridge = 0x06;
    public const byte SubclassHostBridge = 0x00;
    public const byte SubclassIsaBridge = 0x01;
    public const byte SubclassOtherBridge = 0x80;
}

using Propolis.Core.Hw.Pci;

namespace Propolis.Core.Hw.Chipset;

/// <summary>The 82441FX PCI and memory controller (PMC) as function 00:00.0: identity only, plus
/// its programmable attribute map (PAM) and SMRAM registers as plain storage.</summary>
/// <remarks>Guest RAM below 1 MiB is always RAM here, so the PAM attributes that firmware programs to
/// shadow its ROM have no effect; storing them lets firmware that reads them back (SeaBIOS checks
/// PAM0 before shadowing) see what it wrote. propolis ignores these writes.</remarks>
public sealed class I440FxHostBridge : PciDevice
{
    /// <summary>440FX datasheet §3.2: PAM0 (0x59, bits 5:4 only) to PAM6 (0x5F); SMRAM (0x72).</summary>
    private static readonly ConfigRegister[] DeviceRegisters =
    [
        new("PAM0", 0x59, 1, 0x30),
        new("PAM1", 0x5A, 1, 0x33),
        new("PAM2", 0x5B, 1, 0x33),
        new("PAM3", 0x5C, 1, 0x33),
        new("PAM4", 0x5D, 1, 0x33),
        new("PAM5", 0x5E, 1, 0x33),
        new("PAM6", 0x5F, 1, 0x33),
        new("SMRAM", 0x72, 1, 0x78),
    ];

    public I440FxHostBridge()
        : base(new PciIdentity(PciIds.VendorIntel, PciIds.I440FxHostBridge, PciIds.ClassBridge, PciIds.SubclassHostBridge,
            SubsystemVendorId: PciIds.VendorOxide, SubsystemId: PciIds.I440FxHostBridgeSubsystem))
    {
        DefineDeviceRegisters(DeviceRegisters);
    }

    public override string Name => "i440fx-host-bridge";
}

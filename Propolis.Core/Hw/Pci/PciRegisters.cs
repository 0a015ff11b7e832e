namespace Propolis.Core.Hw.Pci;

/// <summary>One register of configuration space: where it is, how wide, which bits software may
/// write and which bits are cleared by writing one (RW1C). Bits in neither mask are read-only.</summary>
public readonly record struct ConfigRegister(string Name, int Offset, int Width, uint WriteMask, uint Rw1cMask = 0);

/// <summary>The type 0 configuration header (PCI Local Bus 3.0 §6.1, Figure 6-1), described once.
/// BARs (0x10–0x27) are listed for completeness but decoded by <see cref="PciDevice"/> itself,
/// since their write mask depends on the BAR's size.</summary>
public static class PciHeader
{
    public const int VendorId = 0x00;
    public const int DeviceId = 0x02;
    public const int Command = 0x04;
    public const int Status = 0x06;
    public const int RevisionId = 0x08;
    public const int ProgIf = 0x09;
    public const int Subclass = 0x0A;
    public const int ClassCode = 0x0B;
    public const int CacheLineSize = 0x0C;
    public const int LatencyTimer = 0x0D;
    public const int HeaderType = 0x0E;
    public const int Bist = 0x0F;
    public const int Bar0 = 0x10;
    public const int BarEnd = 0x28;
    public const int CardbusCisPointer = 0x28;
    public const int SubsystemVendorId = 0x2C;
    public const int SubsystemId = 0x2E;
    public const int ExpansionRomBase = 0x30;
    public const int CapabilitiesPointer = 0x34;
    public const int InterruptLine = 0x3C;
    public const int InterruptPin = 0x3D;
    public const int MinGrant = 0x3E;
    public const int MaxLatency = 0x3F;

    /// <summary>End of the type 0 header; capabilities and device-specific registers follow.</summary>
    public const int Size = 0x40;

    /// <summary>Conventional configuration space (reachable through mechanism #1).</summary>
    public const int ConventionalSize = 0x100;

    /// <summary>PCI Express extended configuration space (reachable through ECAM).</summary>
    public const int ExtendedSize = 0x1000;

    /// <summary>§6.2.2: command bits this model implements as writable.</summary>
    public const uint CommandWriteMask = (uint)(PciCommand.IoSpace | PciCommand.MemorySpace | PciCommand.BusMaster
        | PciCommand.ParityErrorResponse | PciCommand.SerrEnable | PciCommand.InterruptDisable);

    /// <summary>§6.2.3: the error bits of the status register are RW1C.</summary>
    public const uint StatusRw1cMask = (uint)(PciStatus.MasterDataParityError | PciStatus.SignaledTargetAbort
        | PciStatus.ReceivedTargetAbort | PciStatus.ReceivedMasterAbort | PciStatus.SignaledSystemError
        | PciStatus.DetectedParityError);

    public static readonly ConfigRegister[] Table =
    [
        new("Vendor ID", VendorId, 2, 0),
        new("Device ID", DeviceId, 2, 0),
        new("Command", Command, 2, CommandWriteMask),
        new("Status", Status, 2, 0, StatusRw1cMask),
        new("Revision ID", RevisionId, 1, 0),
        new("Programming Interface", ProgIf, 1, 0),
        new("Sub-Class", Subclass, 1, 0),
        new("Base Class", ClassCode, 1, 0),
        new("Cache Line Size", CacheLineSize, 1, 0xFF),
        new("Latency Timer", LatencyTimer, 1, 0xFF),
        new("Header Type", HeaderType, 1, 0),
        new("BIST", Bist, 1, 0),
        new("Base Address Registers", Bar0, 24, 0),
        new("CardBus CIS Pointer", CardbusCisPointer, 4, 0),
        new("Subsystem Vendor ID", SubsystemVendorId, 2, 0),
        new("Subsystem ID", SubsystemId, 2, 0),
        // No expansion ROM: the register reads zero and ignores writes (§6.2.5.2).
        new("Expansion ROM Base Address", ExpansionRomBase, 4, 0),
        new("Capabilities Pointer", CapabilitiesPointer, 1, 0),
        new("Interrupt Line", InterruptLine, 1, 0xFF),
        new("Interrupt Pin", InterruptPin, 1, 0),
        new("Min_Gnt", MinGrant, 1, 0),
        new("Max_Lat", MaxLatency, 1, 0),
    ];
}

/// <summary>Command register bits (PCI Local Bus 3.0 §6.2.2).</summary>
[Flags]
public enum PciCommand : ushort
{
    IoSpace = 1 << 0,
    MemorySpace = 1 << 1,
    BusMaster = 1 << 2,
    ParityErrorResponse = 1 << 6,
    SerrEnable = 1 << 8,
    InterruptDisable = 1 << 10,
}

/// <summary>Status register bits (PCI Local Bus 3.0 §6.2.3).</summary>
[Flags]
public enum PciStatus : ushort
{
    InterruptStatus = 1 << 3,
    CapabilitiesList = 1 << 4,
    MasterDataParityError = 1 << 8,
    SignaledTargetAbort = 1 << 11,
    ReceivedTargetAbort = 1 << 12,
    ReceivedMasterAbort = 1 << 13,
    SignaledSystemError = 1 << 14,
    DetectedParityError = 1 << 15,
}

/// <summary>INTx pins as the Interrupt Pin register encodes them (§6.2.4).</summary>
public enum PciInterruptPin : byte
{
    None = 0,
    IntA = 1,
    IntB = 2,
    IntC = 3,
    IntD = 4,
}

/// <summary>The kind of a Base Address Register (§6.2.5.1).</summary>
public enum PciBarKind
{
    /// <summary>I/O space; bit 0 reads 1.</summary>
    Io,
    /// <summary>Memory space anywhere in the 32-bit address space (type 00).</summary>
    Memory32,
    /// <summary>Memory space anywhere in the 64-bit address space (type 10); uses two BAR slots.</summary>
    Memory64,
}

/// <summary>The identity registers of a function.</summary>
public readonly record struct PciIdentity(
    ushort VendorId,
    ushort DeviceId,
    byte ClassCode,
    byte Subclass,
    byte ProgIf = 0,
    byte Revision = 0,
    ushort SubsystemVendorId = 0,
    ushort SubsystemId = 0);

/// <summary>Bus/device/function numbers of a function (§3.2.2.3.2).</summary>
public readonly record struct PciAddress(byte Bus, byte Device, byte Function)
{
    public override string ToString() => $"{Bus:x2}:{Device:x2}.{Function}";
}

/// <summary>Capability IDs (PCI Code and ID Assignment Specification §2).</summary>
public static class PciCapabilityId
{
    public const byte Msi = 0x05;
    public const byte VendorSpecific = 0x09;
    public const byte Msix = 0x11;
}

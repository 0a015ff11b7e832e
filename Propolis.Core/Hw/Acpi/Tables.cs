using System.Buffers.Binary;

namespace Propolis.Core.Hw.Acpi;

/// <summary>Root System Description Pointer, revision 2 (ACPI 6.4 §5.2.5.3, Table 5.3).</summary>
public static class Rsdp
{
    public const int Signature = 0;          // "RSD PTR "
    public const int Checksum = 8;           // u8, over the first 20 bytes
    public const int OemId = 9;              // char[6]
    public const int Revision = 15;          // u8, 2
    public const int RsdtAddress = 16;       // u32
    public const int Length = 20;            // u32, 36
    public const int XsdtAddress = 24;       // u64
    public const int ExtendedChecksum = 32;  // u8, over all 36 bytes
    public const int Size = 36;
    public const int V1Size = 20;

    /// <summary>The RSDP with <paramref name="xsdtAddress"/> and both checksums zero (for the loader to fill).</summary>
    public static byte[] Build(ulong xsdtAddress)
    {
        var t = new byte[Size];
        "RSD PTR "u8.CopyTo(t);
        SdtHeader.Ascii(t.AsSpan(OemId, 6), SdtHeader.DefaultOemId);
        t[Revision] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(Length), Size);
        BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(XsdtAddress), xsdtAddress);
        return t;
    }
}

/// <summary>Extended System Description Table (ACPI 6.4 §5.2.8): the header, then LE64 table addresses.</summary>
public static class Xsdt
{
    public const int Entries = SdtHeader.Size;

    public static byte[] Build(IReadOnlyList<ulong> tableAddresses)
    {
        var t = new byte[Entries + 8 * tableAddresses.Count];
        SdtHeader.Write(t, "XSDT", 1);
        for (int i = 0; i < tableAddresses.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(Entries + 8 * i), tableAddresses[i]);
        }
        return t;
    }
}

/// <summary>Firmware ACPI Control Structure, version 2 (ACPI 6.4 §5.2.10, Table 5.14). Must be 64-byte aligned.</summary>
public static class Facs
{
    public const int Signature = 0;              // "FACS"
    public const int Length = 4;                 // u32, 64
    public const int HardwareSignature = 8;      // u32
    public const int FirmwareWakingVector = 12;  // u32
    public const int GlobalLock = 16;            // u32
    public const int Flags = 20;                 // u32
    public const int XFirmwareWakingVector = 24; // u64
    public const int Version = 32;               // u8, 2
    public const int OspmFlags = 36;             // u32
    public const int Size = 64;

    public static byte[] Build()
    {
        var t = new byte[Size];
        "FACS"u8.CopyTo(t);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(Length), Size);
        t[Version] = 2;
        return t;
    }
}

/// <summary>Fixed ACPI Description Table, revision 6 (ACPI 6.4 §5.2.9, Table 5.9): 276 bytes.</summary>
public static class Fadt
{
    public const int FirmwareCtrl = 36;   // u32, FACS address
    public const int Dsdt = 40;           // u32
    public const int PreferredPmProfile = 45; // u8
    public const int SciInt = 46;         // u16
    public const int SmiCmd = 48;         // u32
    public const int AcpiEnable = 52;     // u8
    public const int AcpiDisable = 53;    // u8
    public const int Pm1aEvtBlk = 56;     // u32
    public const int Pm1bEvtBlk = 60;     // u32
    public const int Pm1aCntBlk = 64;     // u32
    public const int Pm1bCntBlk = 68;     // u32
    public const int Pm2CntBlk = 72;      // u32
    public const int PmTmrBlk = 76;       // u32
    public const int Gpe0Blk = 80;        // u32
    public const int Gpe1Blk = 84;        // u32
    public const int Pm1EvtLen = 88;      // u8
    public const int Pm1CntLen = 89;      // u8
    public const int Pm2CntLen = 90;      // u8
    public const int PmTmrLen = 91;       // u8
    public const int Gpe0BlkLen = 92;     // u8
    public const int Gpe1BlkLen = 93;     // u8
    public const int PLvl2Lat = 96;       // u16
    public const int PLvl3Lat = 98;       // u16
    public const int Century = 108;       // u8
    public const int IapcBootArch = 109;  // u16
    public const int Flags = 112;         // u32
    public const int ResetReg = 116;      // GAS
    public const int ResetValue = 128;    // u8
    public const int ArmBootArch = 129;   // u16
    public const int MinorVersion = 131;  // u8
    public const int XFirmwareCtrl = 132; // u64
    public const int XDsdt = 140;         // u64
    public const int XPm1aEvtBlk = 148;   // GAS
    public const int XPm1bEvtBlk = 160;   // GAS
    public const int XPm1aCntBlk = 172;   // GAS
    public const int XPm1bCntBlk = 184;   // GAS
    public const int XPm2CntBlk = 196;    // GAS
    public const int XPmTmrBlk = 208;     // GAS
    public const int XGpe0Blk = 220;      // GAS
    public const int XGpe1Blk = 232;      // GAS
    public const int SleepControlReg = 244; // GAS
    public const int SleepStatusReg = 256;  // GAS
    public const int HypervisorVendorIdentity = 268; // u64
    public const int Size = 276;

    public const byte Revision = 6;

    /// <summary>Fixed feature flags (§5.2.9, Table 5.10).</summary>
    [Flags]
    public enum FeatureFlags : uint
    {
        Wbinvd = 1 << 0,
        ProcC1 = 1 << 2,
        PwrButton = 1 << 4,   // set: the power button is a control method device, not fixed
        SlpButton = 1 << 5,   // set: no fixed-feature sleep button
        RtcS4 = 1 << 7,
        TmrValExt = 1 << 8,
        ResetRegSup = 1 << 10,
    }

    /// <summary>IA-PC boot architecture flags (§5.2.9.3, Table 5.11).</summary>
    [Flags]
    public enum IapcBootArchFlags : ushort
    {
        LegacyDevices = 1 << 0,
        Has8042 = 1 << 1,
        VgaNotPresent = 1 << 2,
    }

    /// <summary>PM1 event block, PM1 control block and PM timer in the PIIX4 PM block at
    /// <see cref="AcpiPlatform.PmBase"/> (offsets 0, 4, 8, as propolis's Piix3PM decodes them).</summary>
    public const int Pm1EvtOffset = 0;
    public const int Pm1CntOffset = 4;
    public const int PmTmrOffset = 8;

    /// <summary>The FADT with <paramref name="facsAddress"/> and <paramref name="dsdtAddress"/>
    /// (the 32-bit FIRMWARE_CTRL, DSDT and X_DSDT fields) and a zero checksum.</summary>
    /// <remarks>Following propolis: not hardware-reduced, a full PM1a/PM timer block, GPE0 at
    /// 0xAFE0, SMI_CMD 0xB2 with ACPI_ENABLE 0xF1 / ACPI_DISABLE 0xF0 (the chipset sets SCI_EN on
    /// the enable write), C2/C3 reported absent.</remarks>
    public static byte[] Build(AcpiPlatform p, uint facsAddress, ulong dsdtAddress)
    {
        var t = new byte[Size];
        SdtHeader.Write(t, "FACP", Revision);
        var s = t.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s[FirmwareCtrl..], facsAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[Dsdt..], checked((uint)dsdtAddress));
        BinaryPrimitives.WriteUInt16LittleEndian(s[SciInt..], p.SciIrq);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SmiCmd..], p.SmiCommandPort);
        s[AcpiEnable] = p.SmiCommandPort == 0 ? (byte)0 : p.AcpiEnable;
        s[AcpiDisable] = p.SmiCommandPort == 0 ? (byte)0 : p.AcpiDisable;
        BinaryPrimitives.WriteUInt32LittleEndian(s[Pm1aEvtBlk..], (uint)(p.PmBase + Pm1EvtOffset));
        BinaryPrimitives.WriteUInt32LittleEndian(s[Pm1aCntBlk..], (uint)(p.PmBase + Pm1CntOffset));
        BinaryPrimitives.WriteUInt32LittleEndian(s[PmTmrBlk..], (uint)(p.PmBase + PmTmrOffset));
        s[Pm1EvtLen] = 4;
        s[Pm1CntLen] = 2;
        s[PmTmrLen] = 4;
        if (p.Gpe0BlockLength != 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[Gpe0Blk..], p.Gpe0Block);
            s[Gpe0BlkLen] = p.Gpe0BlockLength;
        }
        // "A value > 100 indicates the system does not support a C2 state"; > 1000 for C3.
        BinaryPrimitives.WriteUInt16LittleEndian(s[PLvl2Lat..], 101);
        BinaryPrimitives.WriteUInt16LittleEndian(s[PLvl3Lat..], 1001);
        var arch = IapcBootArchFlags.VgaNotPresent
            | (p.Ps2Keyboard || p.Rtc || p.SerialPorts.Count > 0 ? IapcBootArchFlags.LegacyDevices : 0)
            | (p.Ps2Keyboard ? IapcBootArchFlags.Has8042 : 0);
        BinaryPrimitives.WriteUInt16LittleEndian(s[IapcBootArch..], (ushort)arch);
        var flags = FeatureFlags.Wbinvd | FeatureFlags.ProcC1 | FeatureFlags.SlpButton | FeatureFlags.RtcS4
            | FeatureFlags.ResetRegSup | (p.PmTimer32Bit ? FeatureFlags.TmrValExt : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(s[Flags..], (uint)flags);
        Gas.WriteIo(s.Slice(ResetReg, Gas.Size), p.ResetPort, 8);
        s[ResetValue] = p.ResetValue;
        s[MinorVersion] = 0; // ACPI 6.0
        BinaryPrimitives.WriteUInt64LittleEndian(s[XDsdt..], dsdtAddress);
        Gas.WriteIo(s.Slice(XPm1aEvtBlk, Gas.Size), (ushort)(p.PmBase + Pm1EvtOffset), 32);
        Gas.WriteIo(s.Slice(XPm1aCntBlk, Gas.Size), (ushort)(p.PmBase + Pm1CntOffset), 16);
        Gas.WriteIo(s.Slice(XPmTmrBlk, Gas.Size), (ushort)(p.PmBase + PmTmrOffset), 32);
        if (p.Gpe0BlockLength != 0)
        {
            Gas.WriteIo(s.Slice(XGpe0Blk, Gas.Size), p.Gpe0Block, (byte)(p.Gpe0BlockLength * 8));
        }
        return t;
    }
}

/// <summary>Multiple APIC Description Table (ACPI 6.4 §5.2.12).</summary>
public static class Madt
{
    public const int LocalInterruptControllerAddress = 36; // u32
    public const int Flags = 40;                           // u32
    public const int Structures = 44;

    public const byte Revision = 4;
    public const uint PcatCompat = 1;

    // Interrupt controller structure types (Table 5.21) and lengths.
    public const byte ProcessorLocalApic = 0;      // §5.2.12.2, 8 bytes
    public const byte IoApic = 1;                  // §5.2.12.3, 12 bytes
    public const byte InterruptSourceOverride = 2; // §5.2.12.5, 10 bytes
    public const byte LocalApicNmi = 4;            // §5.2.12.7, 6 bytes

    /// <summary>MPS INTI flags (Table 5.26): polarity bits 1–0 (1 active-high, 3 active-low),
    /// trigger mode bits 3–2 (1 edge, 3 level); 0 conforms to the bus.</summary>
    public const ushort LevelActiveHigh = 0b11_01;

    /// <summary>One local APIC per vCPU (UID = APIC ID = index), the I/O APIC with GSI base 0,
    /// IRQ0 → GSI2 (the PIT on I/O APIC pin 2, as KVM routes it), the SCI and the PCI link
    /// IRQs level-triggered active-high, and LINT1 as NMI on every processor.</summary>
    public static byte[] Build(AcpiPlatform p)
    {
        var levelIrqs = new SortedSet<byte>(p.PciLinkIrqs) { p.SciIrq };
        var t = new byte[Structures + 8 * p.CpuCount + 12 + 10 * (1 + levelIrqs.Count) + 6];
        SdtHeader.Write(t, "APIC", Revision);
        var s = t.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s[LocalInterruptControllerAddress..], p.LocalApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[Flags..], PcatCompat);
        var e = s[Structures..];
        for (int i = 0; i < p.CpuCount; i++)
        {
            e[0] = ProcessorLocalApic;
            e[1] = 8;
            e[2] = (byte)i;  // ACPI processor UID
            e[3] = (byte)i;  // APIC ID
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 1); // Enabled
            e = e[8..];
        }
        e[0] = IoApic;
        e[1] = 12;
        e[2] = p.IoApicId;
        BinaryPrimitives.WriteUInt32LittleEndian(e[4..], p.IoApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(e[8..], 0); // GSI base
        e = e[12..];
        WriteOverride(ref e, irq: 0, gsi: 2, flags: 0);
        foreach (var irq in levelIrqs)
        {
            WriteOverride(ref e, irq, irq, LevelActiveHigh);
        }
        e[0] = LocalApicNmi;
        e[1] = 6;
        e[2] = 0xFF; // all processors
        BinaryPrimitives.WriteUInt16LittleEndian(e[3..], 0);
        e[5] = 1;    // LINT1
        return t;
    }

    private static void WriteOverride(ref Span<byte> e, byte irq, uint gsi, ushort flags)
    {
        e[0] = InterruptSourceOverride;
        e[1] = 10;
        e[2] = 0; // bus: ISA
        e[3] = irq;
        BinaryPrimitives.WriteUInt32LittleEndian(e[4..], gsi);
        BinaryPrimitives.WriteUInt16LittleEndian(e[8..], flags);
        e = e[10..];
    }
}

/// <summary>PCI Express memory-mapped configuration table (PCI Firmware Specification 3.2 §4.1.2).</summary>
public static class Mcfg
{
    public const int Allocations = SdtHeader.Size + 8; // 8 reserved bytes
    public const int AllocationSize = 16; // u64 base, u16 segment, u8 start bus, u8 end bus, u32 reserved

    public static byte[] Build(AddressWindow ecam)
    {
        var t = new byte[Allocations + AllocationSize];
        SdtHeader.Write(t, "MCFG", 1);
        var a = t.AsSpan(Allocations);
        BinaryPrimitives.WriteUInt64LittleEndian(a, ecam.Base);
        BinaryPrimitives.WriteUInt16LittleEndian(a[8..], 0);
        a[10] = 0;
        a[11] = (byte)((ecam.Size >> 20) - 1);
        return t;
    }
}

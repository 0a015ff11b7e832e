namespace Propolis.Core.Hw.Acpi;

/// <summary>Interrupt pins a PCI device uses (PCI Local Bus 3.0 §6.2.4, Interrupt Pin register).</summary>
[Flags]
public enum PciIntxPins : byte
{
    None = 0,
    IntA = 1 << 0,
    IntB = 1 << 1,
    IntC = 1 << 2,
    IntD = 1 << 3,
    All = IntA | IntB | IntC | IntD,
}

/// <summary>A device on bus 0 whose INTx pins are routed through the PIIX link devices.</summary>
public readonly record struct PciInterruptSlot(byte Device, PciIntxPins Pins);

/// <summary>A legacy serial port the DSDT describes (PNP0501).</summary>
public readonly record struct AcpiSerialPort(ushort BasePort, byte Irq);

/// <summary>A guest-physical address window [Base, Base + Size); Size 0 means none.</summary>
public readonly record struct AddressWindow(ulong Base, ulong Size)
{
    public ulong Last => Base + Size - 1;
}

/// <summary>What the ACPI tables describe: plain values the machine knows, nothing from the
/// configuration file.</summary>
public sealed record AcpiPlatform
{
    /// <summary>vCPUs, with APIC IDs and ACPI processor UIDs 0..CpuCount-1.</summary>
    public required int CpuCount { get; init; }

    /// <summary>Base of the PIIX4 power-management I/O block: PM1a_EVT at +0 (4 bytes),
    /// PM1a_CNT at +4 (2 bytes), PM_TMR at +8 (4 bytes), as propolis lays it out.</summary>
    public ushort PmBase { get; init; } = 0xB000;

    /// <summary>Whether the PM timer counts 32 bits (FADT TMR_VAL_EXT) rather than 24.</summary>
    public bool PmTimer32Bit { get; init; } = true;

    /// <summary>The ISA IRQ (= GSI) of the SCI: level-triggered, active-high.</summary>
    public byte SciIrq { get; init; } = 9;

    /// <summary>The reset register (FADT RESET_REG, I/O space) and the value written to it:
    /// the PIIX3 reset control register, hard reset | system reset.</summary>
    public ushort ResetPort { get; init; } = 0xCF9;

    public byte ResetValue { get; init; } = 0x06;

    public uint LocalApicAddress { get; init; } = 0xFEE0_0000;

    public uint IoApicAddress { get; init; } = 0xFEC0_0000;

    /// <summary>The I/O APIC's ID (KVM's in-kernel I/O APIC resets to 0, as QEMU advertises).</summary>
    public byte IoApicId { get; init; }

    /// <summary>The PCIe ECAM window for bus 0 onward (MCFG); Size 0 for none. A multiple of 1 MiB.</summary>
    public AddressWindow Ecam { get; init; }

    /// <summary>The 32-bit PCI memory window the root bridge decodes (its _CRS).</summary>
    public required AddressWindow Pci32Window { get; init; }

    /// <summary>The 64-bit PCI memory window above RAM; Size 0 for none.</summary>
    public AddressWindow Pci64Window { get; init; }

    /// <summary>The ISA IRQs a PCI interrupt link may be steered to (the links' _PRS; propolis:
    /// 5, 10, 11). Each, and the SCI, is level-triggered, active-high and shareable. The link
    /// devices read and write the PIIX3 PIRQ route control registers (00:01.0, 0x60–0x63), so the
    /// IRQ a link uses is whatever the firmware or the OS programmed there.</summary>
    public IReadOnlyList<byte> PciLinkIrqs { get; init; } = [5, 10, 11];

    /// <summary>FADT SMI_CMD, ACPI_ENABLE, ACPI_DISABLE: the PIIX4 APM control port, whose
    /// ACPI_ENABLE write sets PM1_CNT.SCI_EN (propolis and our chipset: 0xB2, 0xF1, 0xF0). Port 0
    /// declares a machine that is always in ACPI mode.</summary>
    public ushort SmiCommandPort { get; init; } = 0xB2;

    public byte AcpiEnable { get; init; } = 0xF1;

    public byte AcpiDisable { get; init; } = 0xF0;

    /// <summary>FADT GPE0_BLK (GPE0_STS then GPE0_EN), where propolis and QEMU's PIIX4 put it; length 0 for none.</summary>
    public ushort Gpe0Block { get; init; } = 0xAFE0;

    public byte Gpe0BlockLength { get; init; } = 4;

    /// <summary>Devices on bus 0 whose INTx pins the _PRT routes.</summary>
    public IReadOnlyList<PciInterruptSlot> PciSlots { get; init; } = [];

    /// <summary>Serial ports present (COM1 0x3F8/IRQ 4, COM2 0x2F8/IRQ 3, …), described in order as
    /// COM1, COM2, ….</summary>
    public IReadOnlyList<AcpiSerialPort> SerialPorts { get; init; } = [];

    /// <summary>Whether an i8042 keyboard controller decodes 0x60/0x64 (IRQ 1).</summary>
    public bool Ps2Keyboard { get; init; } = true;

    /// <summary>Whether the MC146818 RTC decodes 0x70–0x71 (IRQ 8).</summary>
    public bool Rtc { get; init; } = true;

    /// <summary>The I/O port of QEMU's pvpanic ISA device (0x505), described as ACPI device
    /// QEMU0001 so that the guest's pvpanic driver finds it; null when there is none.</summary>
    public ushort? PvPanicPort { get; init; }

    internal void Validate()
    {
        if (CpuCount is < 1 or > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(CpuCount), CpuCount, "the MADT describes 1 to 255 vCPUs with xAPIC entries");
        }
        if (PciLinkIrqs.Count == 0 || PciLinkIrqs.Any(i => i > 15))
        {
            throw new ArgumentException("PciLinkIrqs must list ISA IRQs (0–15)", nameof(PciLinkIrqs));
        }
        if (SciIrq > 15)
        {
            throw new ArgumentOutOfRangeException(nameof(SciIrq), SciIrq, "the SCI is an ISA IRQ (0–15)");
        }
        if (Ecam.Size % (1UL << 20) != 0 || Ecam.Size > 256UL << 20 || (Ecam.Size != 0 && Ecam.Last > uint.MaxValue))
        {
            throw new ArgumentException("the ECAM window is 1 MiB per bus, at most 256 buses, below 4 GiB", nameof(Ecam));
        }
        if (Pci32Window.Size == 0 || Pci32Window.Last > uint.MaxValue)
        {
            throw new ArgumentException("the 32-bit PCI window must be non-empty and below 4 GiB", nameof(Pci32Window));
        }
        if (PciSlots.Any(s => s.Device > 31) || PciSlots.Select(s => s.Device).Distinct().Count() != PciSlots.Count)
        {
            throw new ArgumentException("PCI slots are distinct device numbers 0–31", nameof(PciSlots));
        }
        if (SerialPorts.Count > 4 || SerialPorts.Any(p => p.Irq > 15))
        {
            throw new ArgumentException("at most four serial ports, on ISA IRQs", nameof(SerialPorts));
        }
    }
}

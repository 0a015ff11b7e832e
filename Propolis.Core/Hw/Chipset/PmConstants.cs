namespace Propolis.Core.Hw.Chipset;

/// <summary>The ACPI fixed-hardware resources the PIIX4 power-management function decodes, in one
/// place for the FADT and DSDT to reference. Values follow propolis (lib/propolis/src/firmware/acpi
/// fadt.rs, dsdt.rs, mod.rs and hw/chipset/i440fx.rs).</summary>
public static class PmConstants
{
    /// <summary>PMBA (PIIX4 function 3, config 0x40): the 64-byte PM I/O block.</summary>
    public const ushort PmBase = 0xB000;
    public const ushort PmBaseLength = 0x40;

    /// <summary>FADT PM1a_EVT_BLK: PM1_STS (2 bytes) then PM1_EN (2 bytes). ACPI 6.5 §4.8.3.1.</summary>
    public const ushort Pm1aEventBlock = PmBase + 0x00;
    public const byte Pm1EventLength = 4;

    /// <summary>FADT PM1a_CNT_BLK: PM1_CNT (2 bytes). ACPI 6.5 §4.8.3.2.</summary>
    public const ushort Pm1aControlBlock = PmBase + 0x04;
    public const byte Pm1ControlLength = 2;

    /// <summary>FADT PM_TMR_BLK: the 32-bit ACPI PM timer (FADT flag TMR_VAL_EXT set). ACPI 6.5 §4.8.3.3.</summary>
    public const ushort PmTimerBlock = PmBase + 0x08;
    public const byte PmTimerLength = 4;

    /// <summary>The PM timer runs at 3.579545 MHz (ACPI 6.5 §4.8.3.3).</summary>
    public const long PmTimerFrequency = 3_579_545;

    /// <summary>FADT GPE0_BLK: GPE0_STS (2 bytes) then GPE0_EN (2 bytes), where propolis and QEMU's
    /// PIIX4 put it (QEMU piix4_acpi_system_hot_add_init).</summary>
    public const ushort Gpe0Block = 0xAFE0;
    public const byte Gpe0BlockLength = 4;

    /// <summary>FADT SMI_CMD: the PIIX4 APM control port (APMC). ACPI 6.5 §4.8.2.1.</summary>
    public const ushort SmiCommandPort = 0xB2;

    /// <summary>FADT ACPI_ENABLE / ACPI_DISABLE: written to <see cref="SmiCommandPort"/> to hand the
    /// fixed hardware to the OS (sets PM1_CNT.SCI_EN) or take it back.</summary>
    public const byte AcpiEnable = 0xF1;
    public const byte AcpiDisable = 0xF0;

    /// <summary>FADT SCI_INT: the SCI is ISA IRQ 9, level-triggered, active high (the MADT needs an
    /// interrupt source override for IRQ 9: level, active high).</summary>
    public const byte SciIrq = 9;

    /// <summary>DSDT \_S5 and \_S0 packages: the PM1_CNT.SLP_TYP values (PIIX4 datasheet §7.2.3
    /// SUS_TYP: 000 soft off, 101 working).</summary>
    public const byte SlpTypS5 = 0;
    public const byte SlpTypS0 = 5;

    /// <summary>FADT RESET_REG (system I/O, 8 bits) and RESET_VALUE: the PIIX reset control
    /// register, value 0x06 (SRST | RCPU: hard reset).</summary>
    public const ushort ResetRegister = 0xCF9;
    public const byte ResetValue = 0x06;
}

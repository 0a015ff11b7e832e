using System.Globalization;

namespace Propolis.Core.Hw.Acpi;

/// <summary>The Differentiated System Description Table (ACPI 6.4 §5.2.11.1): the header, then
/// the AML definition block describing the i440FX/PIIX3 machine.</summary>
/// <remarks>
/// Modelled on propolis's DSDT (lib/propolis/src/firmware/acpi/dsdt.rs), simplified to static
/// values: the root bridge's _CRS carries the PCI windows directly (propolis patches them at
/// boot from an SSDT "FWDT" region, which this table therefore does not need). The link devices
/// read and write the PIIX3 PIRQ route control registers, as propolis's do.
/// <code>
/// Name (_S0, Package { 5, 0, 0, 0 })   // PM1a_CNT.SLP_TYP values, as propolis's Piix3PM
/// Name (_S5, Package { 0, 0, 0, 0 })
/// Scope (\_SB) {
///   Device (C000) { Name (_HID, "ACPI0007") Name (_UID, 0) } …   // one per vCPU
///   Device (PCI0) {
///     Name (_HID, EisaId ("PNP0A03")) Name (_ADR, 0) Name (_BBN, 0) Name (_UID, 0)
///     Name (_CRS, ResourceTemplate { WordBusNumber, IO 0xCF8/8, DWordIO 0–0xCF7,
///                                    DWordIO 0xD00–0xFFFF, VGA window, 32-bit window, 64-bit window })
///     Name (_PRT, Package { Package { slot &lt;&lt; 16 | 0xFFFF, pin, \_SB.PCI0.LPC.LNKx, 0 } … })
///     Device (LPC) { Name (_ADR, 0x00010000)
///       PRR0/PIRA–PIRD, PSTA, PCRS, PPRS; Device (LNKA) … Device (LNKD)   // PNP0C0F over PIRQRC[A:D]
///       Device (RTC) Device (KBD) Device (COM1) … } }
///   Device (MRES) { Name (_HID, EisaId ("PNP0C02")) … }  // the ECAM window and the PM block
/// }
/// </code>
/// The _PRT swizzle is propolis's (and PIIX3's): pin P (0 = INTA) of device D goes to link
/// (D + P + 3) mod 4, so device 1 INTA is LNKA and device 2 INTA is LNKB.
/// </remarks>
public static class Dsdt
{
    public const byte Revision = 2;

    /// <summary>PIIX3 function 0 (the PCI-to-ISA bridge) at device 1.</summary>
    public const uint LpcAddress = 0x0001_0000;

    /// <summary>_STA: present, enabled, not shown in UI, functioning (ACPI 6.4 §6.3.7).</summary>
    public const byte LinkStatus = 0x0B;

    private static readonly string[] LinkNames = ["LNKA", "LNKB", "LNKC", "LNKD"];

    /// <summary>The link device (0 = LNKA … 3 = LNKD) pin <paramref name="pin"/> (0 = INTA) of
    /// device <paramref name="device"/> is wired to.</summary>
    public static int LinkFor(byte device, int pin) => (device + pin + 3) % 4;

    public static byte[] Build(AcpiPlatform p)
    {
        var aml = BuildDefinitionBlock(p);
        var t = new byte[SdtHeader.Size + aml.Length];
        SdtHeader.Write(t, "DSDT", Revision);
        aml.CopyTo(t, SdtHeader.Size);
        return t;
    }

    /// <summary>The AML after the header.</summary>
    public static byte[] BuildDefinitionBlock(AcpiPlatform p)
    {
        var w = new AmlWriter();
        SleepState(w, "_S0_", 5);
        SleepState(w, "_S5_", 0);
        w.Scope("\\_SB_", sb =>
        {
            for (int i = 0; i < p.CpuCount; i++)
            {
                sb.Device(string.Create(CultureInfo.InvariantCulture, $"C{i:X3}"), cpu => cpu
                    .Name("_HID", v => v.String("ACPI0007"))
                    .Name("_UID", v => v.Integer((ulong)i)));
            }
            sb.Device("PCI0", pci =>
            {
                pci.Name("_HID", v => v.EisaId("PNP0A03"))
                    .Name("_ADR", v => v.Integer(0))
                    .Name("_BBN", v => v.Integer(0))
                    .Name("_UID", v => v.Integer(0))
                    .Name("_CRS", v => v.ResourceTemplate(rt => RootBridgeResources(rt, p)))
                    .Name("_PRT", v => v.Package(RoutingEntries(p)));
                pci.Device("LPC_", lpc =>
                {
                    lpc.Name("_ADR", v => v.Integer(LpcAddress));
                    LinkSupport(lpc, p);
                    for (int i = 0; i < 4; i++)
                    {
                        LinkDevice(lpc, i);
                    }
                    if (p.Rtc)
                    {
                        lpc.Device("RTC_", d => d
                            .Name("_HID", v => v.EisaId("PNP0B00"))
                            .Name("_CRS", v => v.ResourceTemplate(rt => rt.Io(0x70, 2).IrqNoFlags(8))));
                    }
                    if (p.Ps2Keyboard)
                    {
                        lpc.Device("KBD_", d => d
                            .Name("_HID", v => v.EisaId("PNP0303"))
                            .Name("_CRS", v => v.ResourceTemplate(rt => rt.Io(0x60, 1).Io(0x64, 1).IrqNoFlags(1))));
                    }
                    for (int i = 0; i < p.SerialPorts.Count; i++)
                    {
                        var port = p.SerialPorts[i];
                        var uid = (ulong)(i + 1);
                        lpc.Device(string.Create(CultureInfo.InvariantCulture, $"COM{i + 1}"), d => d
                            .Name("_HID", v => v.EisaId("PNP0501"))
                            .Name("_UID", v => v.Integer(uid))
                            .Name("_CRS", v => v.ResourceTemplate(rt => rt.Io(port.BasePort, 8).IrqNoFlags(port.Irq))));
                    }
                    if (p.PvPanicPort is { } pvpanic)
                    {
                        // QEMU docs/specs/pvpanic.rst: the ISA device is ACPI "QEMU0001" with one I/O port
                        // (Linux drivers/misc/pvpanic/pvpanic-mmio.c binds to it).
                        lpc.Device("PEVT", d => d
                            .Name("_HID", v => v.String("QEMU0001"))
                            .Name("_CRS", v => v.ResourceTemplate(rt => rt.Io(pvpanic, 1))));
                    }
                });
            });
            if (p.Ecam.Size != 0)
            {
                // Motherboard resources (PNP0C02): Linux uses the MCFG window only if it is
                // reserved here ("MMCONFIG ... not reserved in ACPI motherboard resources"; PCI
                // Firmware Specification 3.2 §4.1.2). The PIIX4 PM block (64 ports) is claimed too.
                sb.Device("MRES", d => d
                    .Name("_HID", v => v.EisaId("PNP0C02"))
                    .Name("_UID", v => v.Integer(0))
                    .Name("_CRS", v => v.ResourceTemplate(rt => rt
                        .Memory32Fixed((uint)p.Ecam.Base, (uint)p.Ecam.Size)
                        .Io(p.PmBase, PmBlockLength))));
            }
        });
        return w.ToArray();
    }

    /// <summary>Ports of the PIIX4 power-management I/O space (82371AB datasheet §3.4.2.1, PMBA: 64 bytes).</summary>
    public const byte PmBlockLength = 0x40;

    /// <summary>\_Sx (ACPI 6.4 §7.4.2): PM1a_CNT.SLP_TYP, PM1b_CNT.SLP_TYP, two reserved.</summary>
    private static void SleepState(AmlWriter w, string name, byte slpTyp) =>
        w.Name(name, v => v.Package(e => e.Integer(slpTyp), e => e.Integer(0), e => e.Integer(0), e => e.Integer(0)));

    /// <summary>The root bridge's decoded ranges (PCI Firmware Specification 3.2 §4.1.3, propolis's CRES/CR64).</summary>
    private static void RootBridgeResources(ResourceTemplateWriter rt, AcpiPlatform p)
    {
        var lastBus = p.Ecam.Size == 0 ? (ushort)0xFF : (ushort)((p.Ecam.Size >> 20) - 1);
        rt.WordBusNumber(0, lastBus)
            .Io(0xCF8, 8)                                  // the configuration mechanism #1 ports
            .DWordIo(0x0000, 0x0CF7)
            .DWordIo(0x0D00, 0xFFFF)
            .DWordMemory(0x000A_0000, 0x000B_FFFF, cacheable: true) // legacy VGA window
            .DWordMemory((uint)p.Pci32Window.Base, (uint)p.Pci32Window.Last, cacheable: false);
        if (p.Pci64Window.Size != 0)
        {
            rt.QWordMemory(p.Pci64Window.Base, p.Pci64Window.Last, cacheable: true);
        }
    }

    /// <summary>_PRT entries (ACPI 6.4 §6.2.13): { Address (device in the high word, any
    /// function), Pin, Source (the link device), Source Index 0 }.</summary>
    private static Action<AmlWriter>[] RoutingEntries(AcpiPlatform p)
    {
        var entries = new List<Action<AmlWriter>>();
        foreach (var slot in p.PciSlots.OrderBy(s => s.Device))
        {
            for (int pin = 0; pin < 4; pin++)
            {
                if (((int)slot.Pins & (1 << pin)) == 0)
                {
                    continue;
                }
                var address = ((ulong)slot.Device << 16) | 0xFFFF;
                var link = "\\_SB_.PCI0.LPC_." + LinkNames[LinkFor(slot.Device, pin)];
                var pinNumber = (ulong)pin;
                entries.Add(e => e.Package(
                    x => x.Integer(address),
                    x => x.Integer(pinNumber),
                    x => x.NameString(link),
                    x => x.Integer(0)));
            }
        }
        return entries.ToArray();
    }

    /// <summary>PIRQRC[A:D] (82371SB §2.2.10): bit 7 disables routing, bits 3–0 the ISA IRQ.</summary>
    public const byte PirqRouteControl = 0x60;
    public const byte PirqDisable = 0x80;

    /// <summary>Byte offset of the first interrupt number in an Interrupt descriptor (§6.4.3.6).</summary>
    private const ulong InterruptListOffset = 5;

    /// <summary>What the four link devices share, as propolis writes it (dsdt.rs, PciRootBridgeLpc):
    /// the PIRQ route control registers as fields of a PCI_Config region of 00:01.0, PSTA and
    /// PCRS methods that turn a register value into _STA and _CRS, and PPRS, the IRQs a link may use.
    /// <code>
    /// OperationRegion (PRR0, PCI_Config, 0x60, 0x04)
    /// Field (PRR0, AnyAcc, NoLock, Preserve) { PIRA, 8, PIRB, 8, PIRC, 8, PIRD, 8 }
    /// Method (PSTA, 1) { If (And (Arg0, 0x80)) { Return (0x09) } Else { Return (0x0B) } }
    /// Method (PCRS, 1, Serialized) {
    ///   Name (BUF0, ResourceTemplate () { Interrupt (, Level, ActiveHigh, Shared) { 0 } })
    ///   CreateDWordField (BUF0, 0x05, IRQW)
    ///   If (LNot (And (Arg0, 0x80))) { Store (Arg0, IRQW) }
    ///   Return (BUF0) }
    /// Name (PPRS, ResourceTemplate () { Interrupt (, Level, ActiveHigh, Shared) { 5, 10, 11 } })
    /// </code></summary>
    private static void LinkSupport(AmlWriter lpc, AcpiPlatform p)
    {
        lpc.PciConfigRegion("PRR0", PirqRouteControl, 4)
            .Field("PRR0", ("PIRA", 8), ("PIRB", 8), ("PIRC", 8), ("PIRD", 8))
            .Method("PSTA", 1, serialized: false, m => m
                .If(c => c.And(x => x.Arg0(), x => x.Integer(PirqDisable)), t => t.Return(r => r.Integer(0x09)))
                .Else(e => e.Return(r => r.Integer(LinkStatus))))
            .Method("PCRS", 1, serialized: true, m => m
                .Name("BUF0", v => v.ResourceTemplate(rt => rt.Interrupt(levelTriggered: true, activeLow: false, shared: true, 0)))
                .CreateDWordField(b => b.NameString("BUF0"), InterruptListOffset, "IRQW")
                .If(c => c.LNot(n => n.And(x => x.Arg0(), x => x.Integer(PirqDisable))), t => t.Store(x => x.Arg0(), "IRQW"))
                .Return(r => r.NameString("BUF0")))
            .Name("PPRS", v => v.ResourceTemplate(rt =>
                rt.Interrupt(levelTriggered: true, activeLow: false, shared: true, p.PciLinkIrqs.Select(i => (uint)i).ToArray())));
    }

    /// <summary>A PCI interrupt link (PNP0C0F, ACPI 6.4 §6.2.13.1) over its PIRQ register.
    /// <code>
    /// Device (LNKA) {
    ///   Name (_HID, EisaId ("PNP0C0F")) Name (_UID, 1)
    ///   Method (_STA) { Return (PSTA (PIRA)) }
    ///   Method (_DIS) { Or (PIRA, 0x80, PIRA) }
    ///   Method (_CRS) { Return (PCRS (PIRA)) }
    ///   Method (_PRS) { Return (PPRS) }
    ///   Method (_SRS, 1) { CreateDWordField (Arg0, 0x05, IRQW) Store (IRQW, PIRA) } }
    /// </code></summary>
    private static void LinkDevice(AmlWriter lpc, int index)
    {
        var pir = "PIR" + LinkNames[index][3];
        lpc.Device(LinkNames[index], d => d
            .Name("_HID", v => v.EisaId("PNP0C0F"))
            .Name("_UID", v => v.Integer((ulong)(index + 1)))
            .Method("_STA", 0, serialized: false, m => m.Return(r => r.Call("PSTA", a => a.NameString(pir))))
            .Method("_DIS", 0, serialized: false, m => m.Or(a => a.NameString(pir), b => b.Integer(PirqDisable), pir))
            .Method("_CRS", 0, serialized: false, m => m.Return(r => r.Call("PCRS", a => a.NameString(pir))))
            .Method("_PRS", 0, serialized: false, m => m.Return(r => r.NameString("PPRS")))
            .Method("_SRS", 1, serialized: false, m => m
                .CreateDWordField(b => b.Arg0(), InterruptListOffset, "IRQW")
                .Store(x => x.NameString("IRQW"), pir)));
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Chipset;

/// <summary>Options for <see cref="I440FxChipset"/>.</summary>
/// <param name="EnableEcam">Decode the PCI Express ECAM window at 0xE000_0000 (propolis enable_pcie).</param>
public readonly record struct I440FxOptions(bool EnableEcam = true);

/// <summary>The i440FX/PIIX chipset propolis emulates, built and attached in one place: PCI bus 0
/// with its configuration mechanisms, the host bridge at 00:00.0, the PIIX3 ISA bridge and PCI
/// interrupt router at 00:01.0, the PIIX4 power management function at 00:01.3, the reset control
/// register (0xCF9), port 0x92 and the POST code port.</summary>
/// <remarks>
/// Wiring, in order: <see cref="Create"/>; attach PCI functions with <see cref="AttachPci"/> (INTx is
/// routed through the PIRQ links as they attach); for a boot without firmware, call
/// <see cref="PrepareForDirectBoot"/> once every function is attached. <see cref="Reset"/> on a
/// machine reset, <see cref="Dispose"/> at teardown.
/// </remarks>
public sealed class I440FxChipset : IDisposable
{
    public static readonly PciAddress HostBridgeAddress = new(0, 0, 0);
    public static readonly PciAddress LpcAddress = new(0, 1, 0);
    public static readonly PciAddress PmAddress = new(0, 1, 3);

    /// <summary>The PIRQ routes SeaBIOS programs (PIRQA–D → IRQ 10, 10, 11, 11), used for direct boot.</summary>
    private static readonly byte[] DirectBootRoutes = [10, 10, 11, 11];

    private I440FxChipset(PciBus bus, I440FxHostBridge hostBridge, Piix3Lpc lpc, Piix4PowerManagement pm,
        ResetControl resetControl, FastA20Port fastA20, PostCodePort postCode)
    {
        Bus = bus;
        HostBridge = hostBridge;
        Lpc = lpc;
        PowerManagement = pm;
        ResetControl = resetControl;
        FastA20 = fastA20;
        PostCode = postCode;
    }

    public PciBus Bus { get; }
    public I440FxHostBridge HostBridge { get; }
    public Piix3Lpc Lpc { get; }
    public Piix4PowerManagement PowerManagement { get; }
    public ResetControl ResetControl { get; }
    public FastA20Port FastA20 { get; }
    public PostCodePort PostCode { get; }

    /// <summary>Builds the chipset and claims its ports (0xCF8–0xCFF, 0x80, 0x92, 0xB2–0xB3, PMBASE,
    /// GPE0) and, with <see cref="I440FxOptions.EnableEcam"/>, the ECAM window.</summary>
    public static I440FxChipset Create(I440FxOptions options, PortIoBus pio, MmioBus mmio, IsaIrqLines irqs, IMsiSink msi,
        IMachineControl control, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(pio);
        ArgumentNullException.ThrowIfNull(mmio);
        ArgumentNullException.ThrowIfNull(irqs);
        ArgumentNullException.ThrowIfNull(control);
        var lf = loggerFactory ?? NullLoggerFactory.Instance;
        var bus = new PciBus(pio, mmio, msi, lf.CreateLogger<PciBus>());
        var hb = new I440FxHostBridge();
        var lpc = new Piix3Lpc(irqs, lf.CreateLogger<Piix3Lpc>());
        var pm = new Piix4PowerManagement(irqs, control, time, lf.CreateLogger<Piix4PowerManagement>());
        var rc = new ResetControl(control, lf.CreateLogger<ResetControl>());
        var a20 = new FastA20Port(control, lf.CreateLogger<FastA20Port>());
        var post = new PostCodePort(lf.CreateLogger<PostCodePort>());

        bus.IntxRouter = lpc;
        bus.ResetControl = rc;
        bus.AttachConfigAccess(pio.Register, options.EnableEcam);
        bus.Attach(hb, HostBridgeAddress.Device, HostBridgeAddress.Function);
        bus.Attach(lpc, LpcAddress.Device, LpcAddress.Function);
        bus.Attach(pm, PmAddress.Device, PmAddress.Function);
        pm.AttachPorts(pio.Register);
        pio.Register(FastA20Port.Port, 1, a20, "port-92");
        pio.Register(PostCodePort.Port, 1, post, "post-code");
        return new I440FxChipset(bus, hb, lpc, pm, rc, a20, post);
    }

    /// <summary>Attaches a PCI function at 00:<paramref name="device"/>.<paramref name="function"/>.</summary>
    public void AttachPci(PciDevice pciFunction, byte device, byte function) => Bus.Attach(pciFunction, device, function);

    /// <summary>Does what firmware would before handing over to an OS, for a kernel booted directly:
    /// assigns every BAR (<see cref="PciBus.AssignBars"/>), routes PIRQA–D to IRQs 10, 10, 11, 11, and
    /// writes each INTx function's Interrupt Line register (which Linux uses when it finds no
    /// other routing information).</summary>
    public void PrepareForDirectBoot(MemoryLayout layout)
    {
        Bus.AssignBars(layout);
        for (var link = 0; link < Piix3Lpc.LinkCount; link++)
            Lpc.SetRoute(link, DirectBootRoutes[link]);
        Span<byte> line = stackalloc byte[1];
        foreach (var f in Bus.AttachedFunctions)
        {
            if (f.InterruptPin == PciInterruptPin.None || f.Address is not { } a || f == PowerManagement)
                continue;
            line[0] = DirectBootRoutes[Piix3Lpc.LinkFor(a.Device, f.InterruptPin)];
            f.ConfigWrite(PciHeader.InterruptLine, line);
        }
    }

    /// <summary>Machine reset of the chipset: CONFIG_ADDRESS, its own three functions (PIRQ routes
    /// disabled, PM registers cleared, ACPI mode off), the reset control register and the POST code.
    /// Functions attached with <see cref="AttachPci"/> are reset by their own lifecycle.</summary>
    public void Reset()
    {
        Bus.Reset();
        HostBridge.Reset();
        Lpc.Reset();
        PowerManagement.Reset();
        ResetControl.Reset();
        PostCode.Reset();
    }

    public void Dispose() => PowerManagement.Dispose();
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Intr;

namespace Propolis.Core.Hw.Chipset;

/// <summary>The 82371SB (PIIX3) PCI-to-ISA bridge, function 00:01.0, and its PCI interrupt router:
/// the four PIRQ links whose route control registers (0x60–0x63) steer them onto ISA IRQs.</summary>
/// <remarks>
/// <para>82371SB datasheet §2.2.10, PIRQRC[A:D]: bit 7 disables routing, bits 3:0 select the IRQ;
/// default 80h. IRQs 3–7, 9–12, 14 and 15 are accepted (the set propolis and the ACPI _PRS allow);
/// any other value leaves the link unrouted.</para>
/// <para>INTx assignment follows propolis (i440fx.rs route_lintr): function f uses pin
/// ((f + 1) mod 4) + 1, and pin p (1 = INTA) of device d goes to link (d + p + 2) mod 4, so the
/// links rotate D, A, B, C for INTA of devices 0, 1, 2, 3 as on QEMU's PIIX.</para>
/// </remarks>
public sealed partial class Piix3Lpc : PciDevice, IPciIntxRouter
{
    public const int PirqRouteControl = 0x60;
    public const int LinkCount = 4;
    private const byte RouteDisable = 0x80;
    private const byte RouteIrqMask = 0x0F;

    private readonly PirqLink[] _links;
    private readonly byte[] _routes = new byte[LinkCount];
    private readonly ILogger _log;

    public Piix3Lpc(IsaIrqLines irqs, ILogger<Piix3Lpc>? logger = null)
        : base(new PciIdentity(PciIds.VendorIntel, PciIds.Piix3Isa, PciIds.ClassBridge, PciIds.SubclassIsaBridge,
            SubsystemVendorId: PciIds.VendorOxide, SubsystemId: PciIds.Piix3IsaSubsystem), multiFunction: true)
    {
        ArgumentNullException.ThrowIfNull(irqs);
        _log = (ILogger?)logger ?? NullLogger.Instance;
        _links = [new PirqLink(irqs), new PirqLink(irqs), new PirqLink(irqs), new PirqLink(irqs)];
        AddCustomConfig(PirqRouteControl, LinkCount);
        _routes.AsSpan().Fill(RouteDisable);
    }

    public override string Name => "piix3-lpc";

    /// <summary>The INTx pin propolis gives function <paramref name="function"/>.</summary>
    public static PciInterruptPin PinForFunction(int function) => (PciInterruptPin)((function + 1) % 4 + 1);

    /// <summary>The PIRQ link (0 = PIRQA) that <paramref name="pin"/> of device <paramref name="device"/> drives.</summary>
    public static int LinkFor(int device, PciInterruptPin pin) => (device + (int)pin + 2) % 4;

    /// <summary>ISA IRQs a PIRQ link may be routed to.</summary>
    public static bool IsRoutableIrq(int irq) => irq is >= 3 and <= 7 or >= 9 and <= 12 or 14 or 15;

    /// <summary>The same set as a bit mask (bit n = IRQ n), for the link devices' _PRS in the DSDT.</summary>
    public const ushort RoutableIrqMask = 0b1101_1110_1111_1000;

    public (PciInterruptPin Pin, IIrqLine Line) RouteIntx(PciAddress address)
    {
        var pin = PinForFunction(address.Function);
        return (pin, _links[LinkFor(address.Device, pin)].AddInput());
    }

    /// <summary>The ISA IRQ link <paramref name="link"/> is routed to, or null.</summary>
    public int? RoutedIrq(int link)
    {
        lock (ConfigLock)
            return Decode(_routes[link]);
    }

    private static int? Decode(byte route) =>
        (route & RouteDisable) == 0 && IsRoutableIrq(route & RouteIrqMask) ? route & RouteIrqMask : null;

    /// <summary>Programs link <paramref name="link"/> as firmware would (used for direct kernel boot).</summary>
    public void SetRoute(int link, byte value)
    {
        lock (ConfigLock)
            WriteRoute(link, value);
    }

    protected override uint CustomConfigRead(int offset) =>
        (uint)(_routes[0] | _routes[1] << 8 | _routes[2] << 16 | _routes[3] << 24);

    protected override void CustomConfigWrite(int offset, uint value, uint byteMask)
    {
        for (var i = 0; i < LinkCount; i++)
        {
            if (((byteMask >> (8 * i)) & 0xFF) != 0)
                WriteRoute(i, (byte)(value >> (8 * i)));
        }
    }

    private void WriteRoute(int link, byte value)
    {
        if (_routes[link] == value)
            return;
        _routes[link] = value;
        var irq = Decode(value);
        if (irq == null && (value & RouteDisable) == 0)
            LogUnroutable((char)('A' + link), value);
        _links[link].Retarget(irq);
    }

    protected override void OnReset()
    {
        for (var i = 0; i < LinkCount; i++)
            WriteRoute(i, RouteDisable);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "PIRQ{Link} routed to 0x{Value:X2}, which names no routable IRQ; link left unrouted")]
    private partial void LogUnroutable(char link, byte value);

    /// <summary>One PIRQ link: a wired OR of the INTx inputs of the functions on it, driving (through
    /// a <see cref="SharedIrqLine"/> source) whichever ISA IRQ the route register selects.</summary>
    private sealed class PirqLink(IsaIrqLines irqs)
    {
        private readonly Lock _lock = new();
        private readonly IIrqLine?[] _sources = new IIrqLine?[IsaIrqLines.Count];
        private IIrqLine? _target;
        private int _asserted;

        public IIrqLine AddInput() => new Input(this);

        public void Retarget(int? irq)
        {
            lock (_lock)
            {
                var next = irq is { } i ? _sources[i] ??= irqs.AddSource(i) : null;
                if (next == _target)
                    return;
                if (_asserted > 0)
                {
                    _target?.SetLevel(false);
                    next?.SetLevel(true);
                }
                _target = next;
            }
        }

        private void Set(Input input, bool asserted)
        {
            lock (_lock)
            {
                if (input.Asserted == asserted)
                    return;
                input.Asserted = asserted;
                var before = _asserted;
                _asserted += asserted ? 1 : -1;
                if (before == 0 || _asserted == 0)
                    _target?.SetLevel(_asserted != 0);
            }
        }

        private void Pulse()
        {
            lock (_lock)
            {
                if (_asserted == 0)
                    _target?.Pulse();
            }
        }

        public uint Gsi
        {
            get { lock (_lock) return _target?.Gsi ?? uint.MaxValue; }
        }

        private sealed class Input(PirqLink link) : IIrqLine
        {
            public bool Asserted; // guarded by link._lock

            public uint Gsi => link.Gsi;

            public void SetLevel(bool asserted) => link.Set(this, asserted);

            public void Pulse() => link.Pulse();
        }
    }
}

using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Lifecycle;
using Propolis.Core.Memory;
using Propolis.Core.Net;
using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;

namespace Propolis.Standalone.Machine;

/// <summary><c>pci-virtio-viona</c> on Linux: a virtio-net PCI function whose frames go to the TAP
/// interface named by <c>vnic</c> (attached if it exists, created for the VM's life if not).</summary>
internal sealed class VirtioNetDevice : ILifecycle, IDisposable
{
    /// <summary>Queue pairs offered at most: one per vCPU up to this.</summary>
    public const int MaxQueuePairs = 8;

    private readonly ILogger _logger;
    private bool _disposed;

    private VirtioNetDevice(string name, TapDevice tap, PciVirtioNet pci, ILogger logger)
    {
        Name = name;
        Tap = tap;
        Pci = pci;
        _logger = logger;
    }

    public string Name { get; }

    public TapDevice Tap { get; }

    public PciVirtioNet Pci { get; }

    /// <summary>The MAC a device gets without a <c>mac</c> key: stable for a VM name and device
    /// name (a SHA-256 of both), locally administered (bit 1 of the first byte) and unicast (bit 0 clear).</summary>
    public static byte[] DeriveMac(string vmName, string deviceName)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"propolis-standalone\0{vmName}\0{deviceName}"));
        var mac = hash[..6];
        mac[0] = (byte)((mac[0] & 0xFC) | 0x02);
        return mac;
    }

    /// <summary>Opens the TAP and builds the PCI function.</summary>
    /// <exception cref="MachineException">The TAP cannot be used; the message says how to fix it.</exception>
    public static VirtioNetDevice Create(Spec.VirtioNetSpec spec, string vmName, int cpus, GuestMemory memory, ILoggerFactory loggerFactory)
    {
        var c = spec.Config;
        var logger = loggerFactory.CreateLogger($"virtio-net {c.Name}");
        var pairs = Math.Clamp(cpus, 1, MaxQueuePairs);
        TapDevice tap;
        try
        {
            tap = TapDevice.Open(c.Vnic, pairs, logger);
        }
        catch (NetBackendException e)
        {
            throw new MachineException($"[dev.{c.Name}] vnic = \"{c.Vnic}\": {e.Message}");
        }
        try
        {
            var mac = c.Mac ?? DeriveMac(vmName, c.Name);
            var options = new VirtioNetOptions
            {
                RxQueueSize = (ushort)c.RxQueueSize,
                TxQueueSize = (ushort)c.TxQueueSize,
                MaxQueuePairs = Math.Min(pairs, tap.QueueCount),
                Mac = mac,
            };
            var pci = new PciVirtioNet(memory, tap, options, logger);
            logger.LogInformation("{Tap}, mac {Mac}, mtu {Mtu}, {Pairs} queue pair(s); packet I/O runs in this process's threads (vhost-net is not used by this build)",
                tap.Description, Values.FormatMac(mac), tap.Mtu, options.MaxQueuePairs);
            return new VirtioNetDevice(c.Name, tap, pci, logger);
        }
        catch
        {
            tap.Dispose();
            throw;
        }
    }

    /// <summary>The <see cref="PciDeviceFactory"/> case for <c>pci-virtio-viona</c>: the function,
    /// and this object in the machine's lifecycle (pause/resume of the packet threads; halt
    /// closes the TAP).</summary>
    public static PciFunctionParts Build(PciDeviceContext context, Spec.VirtioNetSpec spec)
    {
        var board = context.Board ?? throw new InvalidOperationException("virtio-net needs the board (VM name, vCPUs)");
        var device = Create(spec, board.Name, board.Cpus, context.Memory, context.LoggerFactory);
        return new PciFunctionParts(device.Pci, [device]);
    }

    public void Pause() => Pci.Net.Pause();

    public void Resume() => Pci.Net.Resume();

    /// <summary>Stops the packet threads and closes the TAP: one this process created disappears,
    /// one it found is left as it was.</summary>
    public void Halt() => Dispose();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Pci.Dispose();
        Tap.Dispose();
        _logger.LogDebug("stopped: {Tx} frames sent, {Rx} received, {Dropped} dropped, {Bad} malformed chains",
            Pci.Net.TxFrames, Pci.Net.RxFrames, Pci.Net.RxDropped, Pci.Net.MalformedChains);
    }
}

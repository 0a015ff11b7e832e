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
/// interface named by <c>vnic</c> (attached if it exists, created for the VM's life if not), moved
/// by the kernel's vhost-net or by this process's packet threads as the <c>vhost</c> key says.</summary>
internal sealed class VirtioNetDevice : ILifecycle, IDisposable
{
    /// <summary>Queue pairs offered at most: one per vCPU up to this.</summary>
    public const int MaxQueuePairs = 8;

    private readonly ILogger _logger;
    private bool _disposed;

    private VirtioNetDevice(string name, TapDevice tap, VhostNet? vhost, PciVirtioNet pci, ILogger logger)
    {
        Name = name;
        Tap = tap;
        Vhost = vhost;
        Pci = pci;
        _logger = logger;
    }

    public string Name { get; }

    public TapDevice Tap { get; }

    public PciVirtioNet Pci { get; }

    /// <summary>The vhost-net descriptors, when the <c>vhost</c> key and the host allow them.</summary>
    public VhostNet? Vhost { get; }

    /// <summary>vhost-net for <paramref name="pairs"/> queue pairs as <c>vhost</c> asks: null with
    /// <c>vhost = false</c>, or when it is absent and /dev/vhost-net cannot be used (logged once, at
    /// Information, with the reason).</summary>
    /// <exception cref="MachineException"><c>vhost = true</c> and vhost-net cannot be used: the
    /// message names /dev/vhost-net and what to do.</exception>
    internal static VhostNet? OpenVhost(VirtioNetDeviceConfig c, GuestMemory memory, int pairs, ILogger logger)
    {
        if (c.Vhost == VhostNetMode.Off)
        {
            return null;
        }
        try
        {
            return VhostNet.Open(memory, pairs, logger);
        }
        catch (NetBackendException e) when (c.Vhost == VhostNetMode.Required)
        {
            throw new MachineException($"[dev.{c.Name}] vhost = true: {e.Message} (or remove `vhost = true` to let this process move the packets)");
        }
        catch (NetBackendException e)
        {
            logger.LogInformation("vhost-net not used: {Reason}; the userspace packet threads move the frames (`vhost = false` skips trying)", e.Message);
            return null;
        }
    }

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
        VhostNet? vhost = null;
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
            vhost = OpenVhost(c, memory, options.MaxQueuePairs, logger);
            var pci = new PciVirtioNet(memory, tap, options, logger);
            if (vhost is not null)
            {
                pci.AttachVhost(vhost, tap);
            }
            logger.LogInformation("{Tap}, mac {Mac}, mtu {Mtu}, {Pairs} queue pair(s); {Path}",
                tap.Description, Values.FormatMac(mac), tap.Mtu, options.MaxQueuePairs,
                vhost is not null ? "vhost-net moves the packets once the driver starts the device"
                    : c.Vhost == VhostNetMode.Off ? "the userspace packet threads move the frames (vhost = false)" : "the userspace packet threads move the frames");
            return new VirtioNetDevice(c.Name, tap, vhost, pci, logger);
        }
        catch
        {
            vhost?.Dispose();
            tap.Dispose();
            throw;
        }
    }

    /// <summary>The <see cref="PciDeviceFactory"/> case for <c>pci-virtio-viona</c>: the function,
    /// and this object in the machine's lifecycle (pause/resume of the packet threads and of
    /// vhost-net; halt closes vhost-net and the TAP).</summary>
    public static PciFunctionParts Build(PciDeviceContext context, Spec.VirtioNetSpec spec)
    {
        var board = context.Board ?? throw new InvalidOperationException("virtio-net needs the board (VM name, vCPUs)");
        var device = Create(spec, board.Name, board.Cpus, context.Memory, context.LoggerFactory);
        return new PciFunctionParts(device.Pci, [device]);
    }

    public void Pause() => Pci.Net.Pause();

    public void Resume() => Pci.Net.Resume();

    /// <summary>Takes the queues back from vhost-net, stops the packet threads and closes vhost-net
    /// and the TAP: one this process created disappears, one it found is left as it was.</summary>
    public void Halt() => Dispose();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Pci.Dispose();
        Vhost?.Dispose();
        Tap.Dispose();
        _logger.LogDebug("stopped: {Tx} frames sent, {Rx} received, {Dropped} dropped, {Bad} malformed chains",
            Pci.Net.TxFrames, Pci.Net.RxFrames, Pci.Net.RxDropped, Pci.Net.MalformedChains);
    }
}

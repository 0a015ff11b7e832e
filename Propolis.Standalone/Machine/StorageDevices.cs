using System.Text;
using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Core.Hw.Nvme;
using Propolis.Core.Hw.Pci;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Lifecycle;
using Propolis.Core.Memory;
using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;
using VirtioBlockDeviceSpec = Propolis.Standalone.Spec.VirtioBlockSpec;

namespace Propolis.Standalone.Machine;

/// <summary>The disks of a <see cref="MachineSpec"/>: for every <c>pci-nvme</c> and
/// <c>pci-virtio-block</c> slot, its block backend (file, mem-async, crucible, crucible-mem, cloudinit) and
/// the PCI function in front of it, ready to be attached to bus 0 at the slot's device/function.</summary>
/// <remarks>Each disk is one lifecycle participant: Start starts the backend's workers, Pause
/// drains the requests in flight (the guest sees them complete before the machine stops),
/// Reset resets the function, Halt stops the backend — draining, then flushing it unless
/// skip_flush — and releases it. So a SIGINT teardown, which pauses and halts every device,
/// leaves every write the guest saw complete in the backing file.</remarks>
internal sealed partial class StorageDevices : IDisposable
{
    /// <summary>Most virtio-blk request queues: one per vCPU up to this (VIRTIO_BLK_F_MQ, as
    /// QEMU's virtio-blk-pci does); Linux then gives each a blk-mq hardware queue.</summary>
    public const int MaxVirtioBlockQueues = 16;

    private readonly List<Disk> _disks = [];

    private StorageDevices()
    {
    }

    /// <summary>The PCI functions with the slot each goes in, in slot order.</summary>
    public IReadOnlyList<(PciPath Path, PciDevice Function)> Functions => [.. _disks.Select(d => (d.Path, d.Function))];

    /// <summary>One lifecycle participant per disk, in slot order.</summary>
    public IReadOnlyList<ILifecycle> Lifecycles => _disks;

    /// <summary>Backends and functions for every disk slot of <paramref name="spec"/>.</summary>
    /// <exception cref="MachineException">A backend cannot be opened or built (the message names the block_dev).</exception>
    public static StorageDevices Create(MachineSpec spec, GuestMemory memory, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(memory);
        var result = new StorageDevices();
        try
        {
            foreach (var slot in spec.PciSlots)
            {
                switch (slot.Device)
                {
                    case NvmeSpec n:
                        result._disks.Add(CreateNvme(slot.Path, n, spec.CloudInit, memory, loggerFactory));
                        break;
                    case VirtioBlockDeviceSpec b:
                        result._disks.Add(CreateVirtioBlock(slot.Path, b, spec.CloudInit, spec.Board.Cpus, memory, loggerFactory));
                        break;
                }
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>The <see cref="PciDeviceFactory"/> builder for a disk slot: the function, and the
    /// disk's lifecycle (backend workers, drain on pause, flush and stop on halt) after it.</summary>
    /// <exception cref="MachineException">The backend cannot be built.</exception>
    public static PciFunctionParts CreateParts(PciDeviceContext ctx)
    {
        var disk = ctx.Slot.Device switch
        {
            NvmeSpec n => CreateNvme(ctx.Slot.Path, n, ctx.CloudInit, ctx.Memory, ctx.LoggerFactory),
            VirtioBlockDeviceSpec b => CreateVirtioBlock(ctx.Slot.Path, b, ctx.CloudInit, ctx.Board?.Cpus ?? 1, ctx.Memory, ctx.LoggerFactory),
            _ => throw new InvalidOperationException($"{PciDeviceFactory.Describe(ctx.Slot.Device)} is not a disk"),
        };
        disk.ResetsFunction = false;   // the machine resets the function itself
        return new PciFunctionParts(disk.Function, [disk]);
    }

    private static Disk CreateNvme(PciPath path, NvmeSpec n, CloudInitConfig? cloudInit, GuestMemory memory, ILoggerFactory lf)
    {
        var logger = lf.CreateLogger($"nvme.{n.Name}");
        var backend = CreateBackend(n.Backend, cloudInit, lf);
        try
        {
            var adapter = new BlockBackendAdapter(backend, memory, logger);
            var function = new NvmePciFunction(memory, adapter, new NvmeControllerOptions { SerialNumber = AsciiSerial(n.Serial) }, logger);
            LogDisk(logger, n.Name, "pci-nvme", path.ToString(), n.Backend.Name, backend.Kind, backend.Info.SizeInBytes, backend.Info.BlockSize, backend.Info.ReadOnly);
            return new Disk(n.Name, path, function, n.Backend, backend);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>A virtio-blk function with a request queue per vCPU (at most <see cref="MaxVirtioBlockQueues"/>).</summary>
    private static Disk CreateVirtioBlock(PciPath path, VirtioBlockDeviceSpec b, CloudInitConfig? cloudInit, int cpus, GuestMemory memory, ILoggerFactory lf)
    {
        var logger = lf.CreateLogger($"virtio-block.{b.Name}");
        var backend = CreateBackend(b.Backend, cloudInit, lf);
        try
        {
            // GET_ID answers the block_dev name, as the NVMe serial does (20 bytes at most).
            var options = new VirtioBlockOptions
            {
                Serial = AsciiSerial(NvmeSpec.SerialFor(b.Backend.Name)),
                NumQueues = Math.Clamp(cpus, 1, MaxVirtioBlockQueues),
            };
            var function = new PciVirtioBlock(memory, backend, options, logger);
            LogDisk(logger, b.Name, "pci-virtio-block", path.ToString(), b.Backend.Name, backend.Kind, backend.Info.SizeInBytes, backend.Info.BlockSize, backend.Info.ReadOnly);
            LogQueues(logger, b.Name, options.NumQueues, cpus);
            return new Disk(b.Name, path, function, b.Backend, backend);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>The serial as printable ASCII (Identify Controller SN, virtio-blk GET_ID): other
    /// characters of a block_dev name become '_'.</summary>
    internal static string AsciiSerial(string serial)
    {
        var sb = new StringBuilder(serial.Length);
        foreach (var c in serial)
            sb.Append(c is >= ' ' and <= '~' ? c : '_');
        var s = sb.ToString();
        return s.Length > 20 ? s[..20] : s;
    }

    /// <exception cref="MachineException">The backend cannot be built.</exception>
    internal static IBlockBackend CreateBackend(BlockDevConfig config, CloudInitConfig? cloudInit, ILoggerFactory lf)
    {
        var logger = lf.CreateLogger($"block.{config.Name}");
        var options = new BlockBackendOptions
        {
            BlockSize = (uint)config.BlockSize,
            ReadOnly = config.ReadOnly,
            SkipFlush = config.SkipFlush,
        };
        try
        {
            return config switch
            {
                FileBlockDev f => FileBackend.Open(f.Path, options with { Workers = f.Workers }, logger),
                MemAsyncBlockDev m => MemoryBackend.Create(MemoryBackend.MemAsyncKind, (ulong)m.Size, options with { Workers = m.Workers }, logger),
                CrucibleBlockDev c => CrucibleDisks.Create(c, lf),
                CrucibleMemBlockDev c => MemoryBackend.Create(MemoryBackend.CrucibleMemKind, (ulong)c.Size, options with { Workers = FileBlockDev.DefaultWorkers }, logger),
                CloudInitBlockDev => CloudInitDisk.Create(
                    ReadSource(cloudInit?.UserData, config.Name, "user-data") ?? "",
                    ReadSource(cloudInit?.MetaData, config.Name, "meta-data") ?? "",
                    ReadSource(cloudInit?.NetworkConfig, config.Name, "network-config"),
                    workers: 1, logger),
                _ => throw new MachineException($"[block_dev.{config.Name}]: block_dev type \"{config.Type}\" is not supported by this build yet"),
            };
        }
        catch (BlockBackendException e)
        {
            throw new MachineException($"[block_dev.{config.Name}]: {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw new MachineException($"[block_dev.{config.Name}]: {e.Message}");
        }
    }

    private static string? ReadSource(CloudInitSource? source, string blockDev, string item)
    {
        switch (source)
        {
            case null:
                return null;
            case CloudInitSource.Inline i:
                return i.Text;
            case CloudInitSource.FromFile f:
                try
                {
                    return File.ReadAllText(f.Path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new MachineException($"[block_dev.{blockDev}]: cannot read the cloud-init {item} file {f.Path}: {Values.DescribeIoError(e)}");
                }
            default:
                return null;
        }
    }

    public void Dispose()
    {
        foreach (var d in _disks)
            d.Halt();
    }

    /// <summary>One disk: its function and backend, driven by the instance. (The management API
    /// finds the machine's Crucible volumes among the machine's devices through these.)</summary>
    internal sealed class Disk(string name, PciPath path, PciDevice function, BlockDevConfig blockDev, IBlockBackend backend) : ILifecycle
    {
        private int _halted;

        public string Name => name;
        public PciPath Path => path;
        public PciDevice Function => function;
        public BlockDevConfig BlockDev => blockDev;
        public IBlockBackend Backend => backend;

        public void Start() => backend.Start();

        public void Pause() => backend.Pause();

        public void Resume() => backend.Resume();

        /// <summary>Off when the machine resets the PCI function through its own lifecycle entry.</summary>
        public bool ResetsFunction { get; set; } = true;

        public void Reset()
        {
            if (ResetsFunction)
                function.Reset();
        }

        public void Halt()
        {
            if (Interlocked.Exchange(ref _halted, 1) != 0)
                return;
            // Drains, flushes (unless skip_flush) and joins the workers; then the doorbell threads go.
            backend.Stop();
            (function as IDisposable)?.Dispose();
            backend.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "[dev.{Device}] {Queues} request queue(s) for {Cpus} vCPU(s) (VIRTIO_BLK_F_MQ when more than one)")]
    private static partial void LogQueues(ILogger logger, string device, int queues, int cpus);

    [LoggerMessage(Level = LogLevel.Information, Message = "[dev.{Device}] {Driver} at {Path}: block_dev {BlockDev} ({Kind}, {Size} bytes in {BlockSize}-byte blocks, read-only {ReadOnly})")]
    private static partial void LogDisk(ILogger logger, string device, string driver, string path, string blockDev, string kind, ulong size, uint blockSize, bool readOnly);
}

using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Hw.Nvme;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using Propolis.Standalone.Machine;
using Propolis.Standalone.Spec;
using Propolis.Standalone.Tests.Config;
using VirtioBlockSpec = Propolis.Core.Hw.Virtio.VirtioBlockSpec;

namespace Propolis.Standalone.Tests.Machine;

/// <summary>The disks a configuration describes, built: the function in each slot, the
/// backend behind it, and teardown flushing what the guest wrote.</summary>
public sealed class StorageDevicesTests : IDisposable
{
    private readonly ConfigFixture _f = new();
    private readonly GuestMemory _memory = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 1 << 20)]));

    public void Dispose()
    {
        _memory.Dispose();
        _f.Dispose();
    }

    private MachineSpec Spec(string devices, int cpus = 1) => MachineSpec.From(_f.Load($$"""
        [main]
        name = "vm"
        cpus = {{cpus}}
        memory = 256
        kernel = "vmlinuz"

        [cloudinit]
        user-data = "#cloud-config"
        meta-data = "instance-id: t"
        {{devices}}
        """), "ttya");

    [Fact]
    public void EveryDiskSlotGetsItsFunctionAndBackend()
    {
        _f.Write("vmlinuz", 16);
        var image = _f.Write("disk.raw", 1 << 20);
        var spec = Spec($$"""

            [block_dev.file0]
            type = "file"
            path = "{{image}}"
            workers = 2

            [block_dev.mem0]
            type = "mem-async"
            size = 2097152
            block_size = 4096

            [block_dev.cru0]
            type = "crucible-mem"
            size = 1048576

            [block_dev.seed]
            type = "cloudinit"

            [dev.a]
            driver = "pci-nvme"
            block_dev = "file0"
            pci-path = "0.4.0"

            [dev.b]
            driver = "pci-virtio-block"
            block_dev = "mem0"
            pci-path = "0.5.0"

            [dev.c]
            driver = "pci-nvme"
            block_dev = "cru0"
            pci-path = "0.6.0"

            [dev.d]
            driver = "pci-virtio-block"
            block_dev = "seed"
            pci-path = "0.7.0"
            """);
        using var disks = StorageDevices.Create(spec, _memory, NullLoggerFactory.Instance);
        var f = disks.Functions;
        Assert.Equal(["0.4.0", "0.5.0", "0.6.0", "0.7.0"], f.Select(x => x.Path.ToString()));
        Assert.IsType<NvmePciFunction>(f[0].Function);
        var vblk = Assert.IsType<PciVirtioBlock>(f[1].Function);
        Assert.IsType<NvmePciFunction>(f[2].Function);
        var seed = Assert.IsType<PciVirtioBlock>(f[3].Function);
        // virtio capacity is in 512-byte sectors; the cloud-init seed is read-only.
        Assert.Equal(2UL * 1024 * 1024 / 512, BitConverter.ToUInt64(Config(vblk, 0, 8)));
        Assert.Equal(4096u, BitConverter.ToUInt32(Config(vblk, VirtioBlockSpec.Config.BlkSize, 4)));
        Assert.NotEqual(0UL, seed.Block.DeviceFeatures & VirtioBlockSpec.FeatureRo);
        Assert.Equal(["a", "b", "c", "d"], disks.Lifecycles.Select(l => l.Name));
        foreach (var l in disks.Lifecycles) l.Start();
        foreach (var l in disks.Lifecycles) l.Pause();
        foreach (var l in disks.Lifecycles) l.Halt();
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(32, StorageDevices.MaxVirtioBlockQueues)]
    public void AVirtioBlockDiskHasARequestQueuePerVcpuUpToTheCap(int cpus, int queues)
    {
        _f.Write("vmlinuz", 16);
        var spec = Spec("""

            [block_dev.mem0]
            type = "mem-async"
            size = 1048576

            [dev.b]
            driver = "pci-virtio-block"
            block_dev = "mem0"
            pci-path = "0.5.0"
            """, cpus);
        using var disks = StorageDevices.Create(spec, _memory, NullLoggerFactory.Instance);
        var vblk = Assert.IsType<PciVirtioBlock>(disks.Functions[0].Function);
        Assert.Equal(queues, vblk.Block.Queues.Length);
        Assert.Equal(queues, BitConverter.ToUInt16(Config(vblk, VirtioBlockSpec.Config.NumQueues, 2)));
        Assert.Equal(queues > 1, (vblk.Block.DeviceFeatures & VirtioBlockSpec.FeatureMq) != 0);
        Assert.Equal(queues + 1, vblk.MsixVectors);
    }

    private static byte[] Config(PciVirtioBlock dev, int offset, int length)
    {
        var b = new byte[length];
        dev.Block.ReadConfig(offset, b);
        return b;
    }

    [Fact]
    public void ABackendThatCannotBeOpenedNamesItsBlockDev()
    {
        _f.Write("vmlinuz", 16);
        var image = _f.Write("disk.raw", 4096);
        var spec = Spec($$"""

            [block_dev.gone]
            type = "file"
            path = "{{image}}"

            [dev.a]
            driver = "pci-nvme"
            block_dev = "gone"
            pci-path = "0.4.0"
            """);
        File.Delete(image);
        var e = Assert.Throws<MachineException>(() => StorageDevices.Create(spec, _memory, NullLoggerFactory.Instance));
        Assert.StartsWith("[block_dev.gone]: cannot open disk image", e.Message);
    }

    [Theory]
    [InlineData("disk0", "disk0")]
    [InlineData("dísk", "d_sk")]
    [InlineData("abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrst")]
    public void SerialsArePrintableAscii(string name, string serial) => Assert.Equal(serial, StorageDevices.AsciiSerial(name));
}

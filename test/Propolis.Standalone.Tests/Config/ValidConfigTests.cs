using System.Net;
using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;

namespace Propolis.Standalone.Tests.Config;

public sealed class ValidConfigTests : IDisposable
{
    private readonly ConfigFixture _f = new();

    public void Dispose() => _f.Dispose();

    /// <summary>The configuration of docs/standalone-with-crucible.md, paths pointed at files
    /// that exist.</summary>
    internal static string SeedToml(ConfigFixture f) => $$"""
        [main]
        name = "testvm"
        cpus = 4
        bootrom = "{{f.PathOf("OVMF_CODE.fd")}}"
        memory = 2048

        [block_dev.ubuntu]
        type = "file"
        path = "{{f.PathOf("disk.raw")}}"

        [dev.block0]
        driver = "pci-nvme"
        block_dev = "ubuntu"
        pci-path = "0.4.0"

        [block_dev.my_crucible]
        type = "crucible"
        # these MUST match the region configuration downstairs
        block_size = 4096
        blocks_per_extent = 131072
        extent_count = 128
        targets = [
          "127.0.0.1:8810",
          "127.0.0.1:8820",
          "127.0.0.1:8830",
        ]
        generation = 5
        upstairs_id = "e4396bd0-ede1-48d7-ac14-3d2094dfba5b"

        # Create your own key (openssl rand -base64 32) Or use this.
        encryption_key = "tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0="

        [dev.block1]
        driver = "pci-nvme"
        block_dev = "my_crucible"
        pci-path = "0.5.0"

        [dev.net0]
        driver = "pci-virtio-viona"
        vnic = "vnic_prop0"
        pci-path = "0.6.0"
        """;

    internal static string SeedTree(ConfigFixture f) => $"""
        testvm: 4 vCPUs, 2048 MiB, bootrom {f.Dir}/OVMF_CODE.fd
        ├─ 0.0.0  i440fx host bridge (chipset)
        ├─ 0.1.0  piix3 lpc (chipset)  COM1 -> ./ttya
        ├─ 0.1.3  piix3 pm (chipset)
        ├─ 0.4.0  pci-nvme "block0" -> file "ubuntu" {f.Dir}/disk.raw (512 B blocks, 8 workers)
        ├─ 0.5.0  pci-nvme "block1" -> crucible "my_crucible" 127.0.0.1:8810 127.0.0.1:8820 127.0.0.1:8830 (4096 B blocks, 128 extents of 131072 blocks = 64 GiB, generation 5, upstairs e4396bd0-ede1-48d7-ac14-3d2094dfba5b, encrypted)
        └─ 0.6.0  pci-virtio-viona "net0" -> vnic vnic_prop0 (rx 2048, tx 256, tap, vhost-net if /dev/vhost-net opens, else packet I/O in-process)

        """.Replace("\r\n", "\n");

    [Fact]
    public void SeedConfigurationLoadsWithUpstreamDefaults()
    {
        var config = _f.Load(SeedToml(_f));

        Assert.Equal(_f.PathOf("vm.toml"), config.SourcePath);
        Assert.Equal("testvm", config.Main.Name);
        Assert.Equal(4, config.Main.Cpus);
        Assert.Equal(2048, config.Main.MemoryMiB);
        Assert.Equal(_f.PathOf("OVMF_CODE.fd"), config.Main.Bootrom);
        Assert.Equal(0, config.Main.ExitOnHalt);
        Assert.Null(config.Main.ExitOnReboot);

        var file = Assert.IsType<FileBlockDev>(config.FindBlockDev("ubuntu"));
        Assert.Equal((512, 8, false), (file.BlockSize, file.Workers, file.ReadOnly));

        var cru = Assert.IsType<CrucibleBlockDev>(config.FindBlockDev("my_crucible"));
        Assert.Equal(4096, cru.BlockSize);
        Assert.Equal(new[] { "127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8830" }, cru.Targets.Select(t => t.ToString()));
        Assert.Equal(Guid.Parse("e4396bd0-ede1-48d7-ac14-3d2094dfba5b"), cru.UpstairsId);
        Assert.Equal(32, cru.EncryptionKey!.Length);
        Assert.Equal(5UL, cru.Generation);

        var net = Assert.IsType<VirtioNetDeviceConfig>(config.FindDevice("net0"));
        Assert.Equal((2048, 256, true, (ushort)0), (net.RxQueueSize, net.TxQueueSize, net.TxCopyData, net.TxHeaderPad));
        Assert.Equal(new PciPath(0, 6, 0), net.Slot);
        Assert.Equal(VhostNetMode.Auto, net.Vhost);
    }

    [Fact]
    public void SeedTreeIsPinned()
    {
        var spec = MachineSpec.From(_f.Load(SeedToml(_f)), "./ttya");
        Assert.Equal(SeedTree(_f), SpecPrinter.Format(spec));
    }

    [Fact]
    public void RelativePathsResolveAgainstTheConfigDirectory()
    {
        _f.Write("sub/dir/placeholder", 0);
        var config = ConfigLoader.Load("""
            [main]
            name = "vm"
            cpus = 1
            memory = 64
            kernel = "../../vmlinuz"
            initrd = "../../initramfs.img"
            """, "vm.toml", _f.PathOf("sub/dir"));
        Assert.Equal(_f.PathOf("vmlinuz"), config.Main.Kernel);
        Assert.Equal(_f.PathOf("initramfs.img"), config.Main.Initrd);
    }

    [Fact]
    public void EveryOptionalFeatureLoadsAndPrints()
    {
        _f.WriteText("meta.yaml", "instance-id: x\n");
        var pki = Propolis.Crucible.Tests.Tls.TestPki.Create(_f.PathOf("pki"));
        var (certPem, keyPem) = pki.Issue("upstairs");
        File.Copy(certPem, _f.PathOf("cert.pem"), overwrite: true);
        File.Copy(keyPem, _f.PathOf("key.pem"), overwrite: true);
        File.Copy(pki.RootPem, _f.PathOf("ca.pem"), overwrite: true);
        var config = _f.Load("""
            [main]
            name = "full"
            cpus = 1
            memory = 4096
            bootrom = "OVMF_CODE.fd"
            bootrom_version = "edk2-2024"
            kernel = "vmlinuz"
            cmdline = "console=ttyS0"
            use_reservoir = true
            cpuid_profile = "zen"
            cpu_binding = "upper-half"
            exit_on_halt = 7
            exit_on_reboot = 8
            boot_order = ["vio", "nvme"]
            acpi_variant = "V0"

            [cpuid.zen]
            vendor = "amd"
            0 = [0x10, 0x68747541, 0x444d4163, 0x69746e65]
            0x7-0 = [0, 0, 0, 0]

            [block_dev.ci]
            type = "cloudinit"

            [block_dev.cru]
            type = "crucible"
            block_size = 512
            blocks_per_extent = 16
            extent_count = 2
            targets = ["[::1]:1", "[::1]:2", "10.0.0.1:3"]
            generation = 0
            lossy = true
            flush_timeout = 2.5
            cert_pem = "cert.pem"
            key_pem = "key.pem"
            root_cert_pem = "ca.pem"
            control_addr = "127.0.0.1:7777"
            read_only = true

            [block_dev.ram]
            type = "mem-async"
            size = 1048576
            workers = 2
            skip_flush = true

            [block_dev.cmem]
            type = "crucible-mem"
            size = 8192
            block_size = 4096

            [cloudinit]
            user-data = "#cloud-config\n"
            meta-data-path = "meta.yaml"

            [dev.nvme]
            driver = "pci-nvme"
            block_dev = "cru"
            pci-path = "0.5.0"

            [dev.vio]
            driver = "pci-virtio-block"
            block_dev = "ci"
            pci-path = "0.4.0"

            [dev.ramdisk]
            driver = "pci-virtio-block"
            block_dev = "ram"
            pci-path = "0.4.1"

            [dev.cmemdisk]
            driver = "pci-nvme"
            block_dev = "cmem"
            pci-path = "0.31.7"

            [dev.net]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "0.6.0"
            rx-queue-size = 1024
            tx-queue-size = 512
            tx_copy_data = false
            tx_header_pad = 2
            mac = "02:08:20:AC:E9:16"
            vhost = false

            [dev.vsock]
            driver = "pci-virtio-socket"
            pci-path = "0.7.0"
            guest_cid = 3
            port_mappings = [{ port = 22, addr = "127.0.0.1:2222" }]

            [dev.panic]
            driver = "qemu-pvpanic"
            enable_isa = true
            """);

        Assert.Equal(CpuBinding.UpperHalf, config.Main.CpuBinding);
        Assert.Equal((byte)8, config.Main.ExitOnReboot);
        var cpuid = config.CpuidProfile!;
        Assert.Equal(CpuVendor.Amd, cpuid.Vendor);
        Assert.Equal(new CpuidEntry(0, null, 0x10, 0x68747541, 0x444d4163, 0x69746e65), cpuid.Entries[0]);
        Assert.Equal(new CpuidEntry(7, 0, 0, 0, 0, 0), cpuid.Entries[1]);
        var cru = Assert.IsType<CrucibleBlockDev>(config.FindBlockDev("cru"));
        Assert.Equal(IPEndPoint.Parse("[::1]:1"), cru.Targets[0]);
        Assert.Equal(2.5, cru.FlushTimeoutSeconds);
        Assert.NotNull(cru.Tls);
        Assert.IsType<CloudInitSource.Inline>(config.CloudInit!.UserData);
        Assert.Equal(new CloudInitSource.FromFile(_f.PathOf("meta.yaml")), config.CloudInit.MetaData);
        Assert.Null(config.CloudInit.NetworkConfig);
        Assert.Equal(VhostNetMode.Off, Assert.IsType<VirtioNetDeviceConfig>(config.FindDevice("net")).Vhost);

        var spec = MachineSpec.From(config, "/run/vm/ttya");
        Assert.Equal(new[] { "vio", "nvme" }, spec.Board.BootOrder.Select(b => b.Name));
        Assert.Equal(BootDeviceKind.VirtioDisk, spec.Board.BootOrder[0].Kind);
        Assert.Equal(3L << 30, spec.Board.LowMemBytes);
        Assert.Equal(1L << 30, spec.Board.HighMemBytes);
        Assert.Equal($"""
            full: 1 vCPU, 4096 MiB, bootrom {_f.Dir}/OVMF_CODE.fd, kernel {_f.Dir}/vmlinuz
            │  bootrom version "edk2-2024"
            │  cmdline "console=ttyS0"
            │  boot order: vio (0.4.0), nvme (0.5.0)
            │  cpuid profile "zen": amd, 2 leaves
            │  vCPUs bound to the highest-numbered host CPUs
            │  exit code 7 on halt, 8 on reboot
            ├─ 0.0.0  i440fx host bridge (chipset)
            ├─ 0.1.0  piix3 lpc (chipset)  COM1 -> /run/vm/ttya
            ├─ 0.1.3  piix3 pm (chipset)
            ├─ 0.4.0  pci-virtio-block "vio" -> cloudinit "ci" user-data inline, meta-data {_f.Dir}/meta.yaml, network-config empty (512 B blocks)
            ├─ 0.4.1  pci-virtio-block "ramdisk" -> mem-async "ram" 1 MiB (512 B blocks, 2 workers, flushes skipped)
            ├─ 0.5.0  pci-nvme "nvme" -> crucible "cru" [::1]:1 [::1]:2 10.0.0.1:3 (512 B blocks, 2 extents of 16 blocks = 16 KiB, generation 0, tls, lossy, flush every 2.5 s, control 127.0.0.1:7777, read-only)
            ├─ 0.6.0  pci-virtio-viona "net" -> vnic tap0 (rx 1024, tx 512, tx_copy_data false: no effect on a TAP, tx_header_pad 2: no effect on a TAP, mac 02:08:20:ac:e9:16, tap, packet I/O in-process (vhost-net off))
            ├─ 0.7.0  pci-virtio-socket "vsock" guest cid 3, port 22 -> 127.0.0.1:2222
            ├─ 0.31.7 pci-nvme "cmemdisk" -> crucible-mem "cmem" 8 KiB (4096 B blocks)
            └─ isa    qemu-pvpanic "panic" port 0x505

            """.Replace("\r\n", "\n"), SpecPrinter.Format(spec));
    }

    [Fact]
    public void VhostTrueRequiresVhostNetAndCheckSaysSo()
    {
        var config = _f.Load("""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            kernel = "vmlinuz"

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "0.5.0"
            vhost = true
            """);

        Assert.Equal(VhostNetMode.Required, Assert.IsType<VirtioNetDeviceConfig>(config.FindDevice("net0")).Vhost);
        Assert.Contains("pci-virtio-viona \"net0\" -> vnic tap0 (rx 2048, tx 256, tap, vhost-net (required))",
            SpecPrinter.Format(MachineSpec.From(config, "./ttya")));
    }

    [Fact]
    public void WithoutAVhostKeyVhostNetIsUsedWhenItOpens()
    {
        var config = _f.Load("""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            kernel = "vmlinuz"

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "0.5.0"
            """);

        Assert.Equal(VhostNetMode.Auto, Assert.IsType<VirtioNetDeviceConfig>(config.FindDevice("net0")).Vhost);
        Assert.Contains("pci-virtio-viona \"net0\" -> vnic tap0 (rx 2048, tx 256, tap, vhost-net if /dev/vhost-net opens, else packet I/O in-process)",
            SpecPrinter.Format(MachineSpec.From(config, "./ttya")));
    }

    /// <summary>Walks up from the test binary to the repository root.</summary>
    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "propolis.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("propolis.sln not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void ExamplesPassOnceTheirFilesExist()
    {
        var examples = Directory.GetFiles(Path.Combine(RepoRoot(), "examples"), "*.toml");
        Assert.NotEmpty(examples);
        _f.Write("out/guest/vmlinuz", 4096);
        _f.Write("out/guest/initramfs.img", 4096);
        Directory.CreateDirectory(_f.PathOf("examples"));
        foreach (var example in examples)
        {
            var config = ConfigLoader.Load(File.ReadAllText(example), Path.GetFileName(example), _f.PathOf("examples"));
            Assert.Equal(_f.PathOf("out/guest/vmlinuz"), config.Main.Kernel);
        }
    }

    [Fact]
    public void StandaloneExampleBootsTheDemoGuestByKernel()
    {
        _f.Write("out/guest/vmlinuz", 4096);
        _f.Write("out/guest/initramfs.img", 4096);
        var text = File.ReadAllText(Path.Combine(RepoRoot(), "examples", "standalone.toml"));
        var config = ConfigLoader.Load(text, "standalone.toml", _f.PathOf("examples"));
        Assert.Equal((2, 512L), (config.Main.Cpus, config.Main.MemoryMiB));
        Assert.Equal(_f.PathOf("out/guest/initramfs.img"), config.Main.Initrd);
        Assert.StartsWith("console=ttyS0", config.Main.Cmdline);
        Assert.Null(config.Main.Bootrom);
        Assert.Empty(config.Devices);
    }

    [Fact]
    public void NvmeSerialIsTheBlockDevNameCutTo20Bytes()
    {
        Assert.Equal("ubuntu", NvmeSpec.SerialFor("ubuntu"));
        Assert.Equal("abcdefghijklmnopqrst", NvmeSpec.SerialFor("abcdefghijklmnopqrstuvwxyz"));
        // 19 ASCII bytes then a 2-byte character: cutting at 20 would split it.
        Assert.Equal("abcdefghijklmnopqrs", NvmeSpec.SerialFor("abcdefghijklmnopqrsé"));
    }
}

public sealed class ConfigWarningTests : IDisposable
{
    private readonly ConfigFixture _f = new();

    public void Dispose() => _f.Dispose();

    [Fact]
    public void ValidButIneffectiveSectionsAreNamed()
    {
        var config = _f.Load("""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            kernel = "vmlinuz"

            [block_dev.spare]
            type = "mem-async"
            size = 4096

            [cloudinit]
            user-data = "#cloud-config"

            [dev.panic]
            driver = "qemu-pvpanic"

            [cpuid.unused]
            vendor = "intel"
            """);
        Assert.Equal(new[]
        {
            "vm.toml:7:1: warning: block_dev 'spare' is not attached to any [dev.*] device; it is ignored",
            "vm.toml:11:1: warning: [cloudinit] is unused: no device is attached to a block_dev of type \"cloudinit\"",
            "vm.toml:14:1: warning: [dev.panic] has enable_isa = false, so no pvpanic device is created",
            "vm.toml:17:1: warning: [cpuid.unused] is not selected by [main] cpuid_profile; it is ignored",
        }, config.Warnings.Select(w => w.ToString()));
    }

    [Fact]
    public void VionaTransmitParametersWithoutLinuxCounterpartAreWarnedAbout()
    {
        var config = _f.Load("""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            kernel = "vmlinuz"

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "0.5.0"
            tx_copy_data = false
            tx_header_pad = 16
            """);
        Assert.Equal(new[]
        {
            "vm.toml:11:16: warning: tx_copy_data = false has no effect on Linux: a TAP write always copies the frame out of guest memory (viona's loaning of guest buffers does not exist here)",
            "vm.toml:12:17: warning: tx_header_pad = 16 has no effect on Linux: the kernel reserves its own headroom in the frames a TAP receives",
        }, config.Warnings.Select(w => w.ToString()));
    }

    [Fact]
    public void CheckPrintsWarningsOnStderrAndStillSucceeds()
    {
        var path = _f.WriteText("vm.toml", """
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            kernel = "vmlinuz"

            [block_dev.spare]
            type = "mem-async"
            size = 4096
            """);
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        int code = Cli.Run(new[] { path, "--check" }, stdout, stderr, _ => null,
            _ => Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal(0, code);
        Assert.Equal($"{path}:7:1: warning: block_dev 'spare' is not attached to any [dev.*] device; it is ignored\n", stderr.ToString());
        Assert.StartsWith("vm: 2 vCPUs, 512 MiB", stdout.ToString());
    }
}

namespace Propolis.Standalone.Tests.Config;

/// <summary>One test per class of mistake: each pins the exact FILE:LINE:COL: message a user
/// sees.</summary>
public sealed class ConfigErrorTests : IDisposable
{
    private readonly ConfigFixture _f = new();

    public void Dispose() => _f.Dispose();

    // Lines 1-5 of most tests.
    private const string Main = """
        [main]
        name = "vm"
        cpus = 2
        memory = 512
        kernel = "vmlinuz"

        """;

    [Fact]
    public void UnknownKeyNamesTheClosestValidKey()
    {
        Assert.Equal(new[] { "vm.toml:4:1: unknown key 'cpu' in [main]; did you mean 'cpus'?" }, _f.Errors("""
            [main]
            name = "vm"
            cpus = 2
            cpu = 2
            memory = 512
            kernel = "vmlinuz"
            """));
    }

    [Fact]
    public void UnknownKeyWithoutCloseMatchSaysSoPlainly()
    {
        Assert.Equal(new[] { "vm.toml:6:1: unknown key 'colour' in [main]" }, _f.Errors(Main + "colour = 3\n"));
    }

    [Fact]
    public void DashForUnderscoreIsSuggested()
    {
        Assert.Equal(new[] { "vm.toml:6:1: unknown key 'exit-on-halt' in [main]; did you mean 'exit_on_halt'?" },
            _f.Errors(Main + "exit-on-halt = 3\n"));
    }

    [Fact]
    public void UnknownSectionNamesTheClosestSection()
    {
        Assert.Equal(new[] { "vm.toml:7:2: unknown section [block_devs]; did you mean [block_dev]?" }, _f.Errors(Main + """

            [block_devs.disk]
            type = "file"
            """));
    }

    [Fact]
    public void KeyAboveTheMainHeaderIsPlaced()
    {
        Assert.Equal(new[] { "vm.toml:1:1: key 'cpus' is outside any section; it belongs in [main]" },
            _f.Errors("cpus = 4\n" + Main));
    }

    [Fact]
    public void WrongTypeNamesExpectedAndFound()
    {
        Assert.Equal(new[] { "vm.toml:3:8: 'cpus' must be an integer, found string" }, _f.Errors("""
            [main]
            name = "vm"
            cpus = "2"
            memory = 512
            kernel = "vmlinuz"
            """));
    }

    [Fact]
    public void OutOfRangeValueNamesTheRange()
    {
        Assert.Equal(new[]
        {
            "vm.toml:3:8: 'cpus' must be between 1 and 32, found 64",
            "vm.toml:4:10: 'memory' must be at least 1, found 0",
            "vm.toml:6:16: 'exit_on_halt' must be between 0 and 255, found 256",
        }, _f.Errors("""
            [main]
            name = "vm"
            cpus = 64
            memory = 0
            kernel = "vmlinuz"
            exit_on_halt = 256
            """));
    }

    [Fact]
    public void MissingRequiredKeyIsReportedAtTheHeader()
    {
        Assert.Equal(new[]
        {
            "vm.toml:2:1: missing required key 'name' in [main]",
            "vm.toml:2:1: missing required key 'memory' in [main] (guest memory in MiB)",
        }, _f.Errors("""
            # a VM
            [main]
            cpus = 2
            kernel = "vmlinuz"
            """));
    }

    [Fact]
    public void MissingMainSection()
    {
        Assert.Equal(new[] { "vm.toml:1:1: missing required section [main] (name, cpus, memory, and bootrom or kernel)" },
            _f.Errors("[cloudinit]\n"));
    }

    [Fact]
    public void NeitherBootromNorKernel()
    {
        Assert.Equal(new[] { "vm.toml:1:1: [main] needs 'bootrom' (UEFI firmware) or 'kernel' (direct kernel boot), or both" },
            _f.Errors("""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            """));
    }

    [Fact]
    public void InitrdAndCmdlineNeedAKernel()
    {
        Assert.Equal(new[]
        {
            "vm.toml:5:1: 'initrd' needs 'kernel' (it is loaded for direct kernel boot)",
            "vm.toml:6:1: 'cmdline' needs 'kernel' (it is passed to a directly booted kernel)",
        }, _f.Errors("""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            initrd = "initramfs.img"
            cmdline = "console=ttyS0"
            bootrom = "OVMF_CODE.fd"
            """));
    }

    [Fact]
    public void DanglingBlockDevReferenceNamesTheDefinedOnes()
    {
        Assert.Equal(new[] { "vm.toml:13:13: block_dev 'ubunto' is not defined; did you mean 'ubuntu'? (defined: 'ubuntu' and 'scratch')" },
            _f.Errors(Main + """

            [block_dev.ubuntu]
            type = "file"
            path = "disk.raw"

            [dev.block0]
            driver = "pci-nvme"
            block_dev = "ubunto"
            pci-path = "0.4.0"

            [block_dev.scratch]
            type = "mem-async"
            size = 1048576
            """));
    }

    [Fact]
    public void DanglingBootOrderAndCpuidProfile()
    {
        Assert.Equal(new[]
        {
            "vm.toml:6:17: cpuid_profile 'zen' is not defined; did you mean 'zen4'? (defined [cpuid.*] profiles: 'zen4')",
            "vm.toml:7:23: boot_order names device 'nett0', which is not defined; did you mean 'net0'? (defined [dev.*] devices: 'net0' and 'pvpanic')",
            "vm.toml:7:32: boot_order names 'pvpanic', a qemu-pvpanic device; only PCI devices can boot",
        }, _f.Errors(Main + """
            cpuid_profile = "zen"
            boot_order = ["net0", "nett0", "pvpanic"]

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "0.5.0"

            [dev.pvpanic]
            driver = "qemu-pvpanic"

            [cpuid.zen4]
            vendor = "amd"
            """));
    }

    [Fact]
    public void TwoDevicesOnOnePciSlot()
    {
        Assert.Equal(new[] { "vm.toml:23:12: pci-path 0.4.0 is already used by [dev.block0]" }, _f.Errors(Main + """

            [block_dev.a]
            type = "file"
            path = "disk.raw"

            [block_dev.b]
            type = "mem-async"
            size = 4096

            [dev.block0]
            driver = "pci-nvme"
            block_dev = "a"
            pci-path = "0.4.0"

            [dev.block1]
            driver = "pci-virtio-block"
            block_dev = "b"
            pci-path = "0.4.0"
            """));
    }

    [Fact]
    public void TwoDevicesOnOneBlockDev()
    {
        Assert.Equal(new[] { "vm.toml:18:13: block_dev 'a' is already attached to [dev.block0]; a block_dev backs one device" },
            _f.Errors(Main + """

            [block_dev.a]
            type = "file"
            path = "disk.raw"

            [dev.block0]
            driver = "pci-nvme"
            block_dev = "a"
            pci-path = "0.4.0"

            [dev.block1]
            driver = "pci-virtio-block"
            block_dev = "a"
            pci-path = "0.5.0"
            """));
    }

    [Theory]
    [InlineData("0.1.0", "pci-path 0.1.0 belongs to the chipset (the piix3 lpc and power management functions); use a device number from 2 to 31")]
    [InlineData("0.0.0", "pci-path 0.0.0 belongs to the chipset (the i440fx host bridge); use a device number from 2 to 31")]
    [InlineData("0.4", "'pci-path' must be \"bus.device.function\" in decimal, such as \"0.4.0\", found \"0.4\"")]
    [InlineData("0.x.0", "'pci-path' must be \"bus.device.function\" in decimal, such as \"0.4.0\", found \"0.x.0\"")]
    [InlineData("1.4.0", "pci-path 1.4.0: bus 1 does not exist; devices go on bus 0 (there are no PCI bridges)")]
    [InlineData("0.32.0", "pci-path 0.32.0: device must be from 0 to 31, found 32")]
    [InlineData("0.4.8", "pci-path 0.4.8: function must be from 0 to 7, found 8")]
    public void BadPciPath(string path, string message)
    {
        Assert.Equal(new[] { $"vm.toml:10:12: {message}" }, _f.Errors(Main + $"""

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "{path}"
            """));
    }

    private string[] BootromErrors(string file) => _f.Errors($"""
        [main]
        name = "vm"
        cpus = 2
        memory = 512
        bootrom = "{file}"
        """);

    [Fact]
    public void BootromMissing()
    {
        Assert.Equal(new[] { $"vm.toml:5:11: bootrom 'nope.fd' ({_f.PathOf("nope.fd")}) does not exist" }, BootromErrors("nope.fd"));
    }

    [Fact]
    public void BootromNotMultipleOf4KiB()
    {
        _f.Write("odd.fd", 5000);
        Assert.Equal(new[] { $"vm.toml:5:11: bootrom 'odd.fd' ({_f.PathOf("odd.fd")}) is 5000 bytes, not a multiple of 4 KiB" }, BootromErrors("odd.fd"));
    }

    [Fact]
    public void BootromLargerThan16MiB()
    {
        var big = _f.Write("big.fd", 0);
        using (var s = File.OpenWrite(big))
            s.SetLength(32L << 20);
        Assert.Equal(new[] { $"vm.toml:5:11: bootrom '{big}' is 32 MiB, larger than the 16 MiB ROM region" }, BootromErrors(big));
    }

    [Fact]
    public void BootromEmptyOrDirectory()
    {
        _f.Write("empty.fd", 0);
        Assert.Equal(new[] { $"vm.toml:5:11: bootrom 'empty.fd' ({_f.PathOf("empty.fd")}) is empty" }, BootromErrors("empty.fd"));
        Assert.Equal(new[] { $"vm.toml:5:11: bootrom '{_f.Dir}' is a directory" }, BootromErrors(_f.Dir));
    }

    [Fact]
    public void KernelAndInitrdMustExist()
    {
        Assert.Equal(new[]
        {
            $"vm.toml:5:10: kernel 'bzImage' ({_f.PathOf("bzImage")}) does not exist",
            $"vm.toml:6:10: initrd '{_f.Dir}' is a directory",
        }, _f.Errors($"""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            kernel = "bzImage"
            initrd = "{_f.Dir}"
            """));
    }

    [Fact]
    public void CrucibleNeedsThreeTargetsAValidUuidAndKey()
    {
        Assert.Equal(new[]
        {
            "vm.toml:7:1: missing required key 'block_size' in [block_dev.cru] (it must match the block size of the downstairs regions)",
            "vm.toml:11:11: 'targets' must list exactly 3 downstairs addresses, found 2",
            "vm.toml:11:30: 'targets': \"localhost:3820\" is not a socket address: 'localhost' is not an IPv4 address (host names are not resolved)",
            "vm.toml:12:15: 'upstairs_id' must be a UUID such as \"e4396bd0-ede1-48d7-ac14-3d2094dfba5b\", found \"not-a-uuid\"",
            "vm.toml:13:18: 'encryption_key' must decode to 32 bytes (256 bits), found 16 bytes",
            "vm.toml:14:16: 'control_addr': \"::1:9000\" is not a socket address: an IPv6 address must be in brackets: \"[addr]:port\"",
        }, _f.Errors(Main + """

            [block_dev.cru]
            type = "crucible"
            blocks_per_extent = 131072
            extent_count = 128
            targets = ["127.0.0.1:3810", "localhost:3820"]
            upstairs_id = "not-a-uuid"
            encryption_key = "AAAAAAAAAAAAAAAAAAAAAA=="
            control_addr = "::1:9000"
            generation = 1
            """));
    }

    [Fact]
    public void CrucibleBadBase64AndHalfTls()
    {
        _f.Write("cert.pem", 10);
        Assert.Equal(new[]
        {
            "vm.toml:14:18: 'encryption_key' must be base64 (create one with: openssl rand -base64 32)",
            "vm.toml:15:1: TLS needs 'cert_pem', 'key_pem' and 'root_cert_pem' together; missing 'key_pem', 'root_cert_pem'",
        }, _f.Errors(Main + """

            [block_dev.cru]
            type = "crucible"
            block_size = 4096
            blocks_per_extent = 16384
            extent_count = 512
            targets = ["127.0.0.1:3810", "127.0.0.1:3820", "[::1]:3830"]
            generation = 7
            encryption_key = "not base64!"
            cert_pem = "cert.pem"
            """));
    }

    [Fact]
    public void CrucibleTlsFilesAreCheckedAtTheirKeys()
    {
        var pki = Propolis.Crucible.Tests.Tls.TestPki.Create(_f.PathOf("pki"));
        var (cert, _) = pki.Issue("upstairs");
        var (_, otherKey) = pki.Issue("other");
        _f.WriteText("junk.pem", "not a certificate\n");
        string[] errors = _f.Errors(Main + $"""

            [block_dev.cru]
            type = "crucible"
            block_size = 4096
            blocks_per_extent = 16384
            extent_count = 512
            targets = ["127.0.0.1:3810", "127.0.0.1:3820", "127.0.0.1:3830"]
            generation = 7
            cert_pem = "junk.pem"
            key_pem = "{otherKey}"
            root_cert_pem = "{pki.RootPem}"

            [block_dev.cru2]
            type = "crucible"
            block_size = 4096
            blocks_per_extent = 16384
            extent_count = 512
            targets = ["127.0.0.1:4810", "127.0.0.1:4820", "127.0.0.1:4830"]
            generation = 7
            cert_pem = "{cert}"
            key_pem = "{otherKey}"
            root_cert_pem = "{pki.RootPem}"
            """);
        Assert.Equal(2, errors.Length);
        Assert.Equal($"vm.toml:14:12: cert_pem '{_f.PathOf("junk.pem")}' holds no PEM certificate (expected a 'BEGIN CERTIFICATE' block)", errors[0]);
        Assert.StartsWith($"vm.toml:26:11: key_pem '{otherKey}' cannot be used with the certificate in cert_pem '{cert}': ", errors[1]);
    }

    [Fact]
    public void KeyOfAnotherBlockDevTypeIsNamedAsSuch()
    {
        Assert.Equal(new[]
        {
            "vm.toml:10:1: key 'path' is not valid for block_dev type 'mem-async' (it belongs to type 'file')",
            "vm.toml:11:1: unknown key 'sise' in [block_dev.ram]; did you mean 'size'?",
        }, _f.Errors(Main + """

            [block_dev.ram]
            type = "mem-async"
            size = 1048576
            path = "disk.raw"
            sise = 2
            """));
    }

    [Fact]
    public void KeyOfAnotherDriverIsNamedAsSuch()
    {
        Assert.Equal(new[] { "vm.toml:10:1: key 'vnic' is not valid for driver 'qemu-pvpanic' (it belongs to 'pci-virtio-viona')" },
            _f.Errors(Main + """

            [dev.panic]
            driver = "qemu-pvpanic"
            enable_isa = true
            vnic = "tap0"
            """));
    }

    [Fact]
    public void UnknownTypeAndDriverSuggestTheClosest()
    {
        Assert.Equal(new[]
        {
            "vm.toml:8:8: unknown block_dev type \"fiel\"; did you mean \"file\"? (types: file, crucible, crucible-mem, mem-async, cloudinit)",
            "vm.toml:12:10: unknown driver \"pci-nvm\"; did you mean \"pci-nvme\"? (drivers: pci-nvme, pci-virtio-block, pci-virtio-viona, qemu-pvpanic, pci-virtio-socket)",
        }, _f.Errors(Main + """

            [block_dev.d]
            type = "fiel"
            path = "disk.raw"

            [dev.nvme0]
            driver = "pci-nvm"
            block_dev = "d"
            pci-path = "0.4.0"
            """));
    }

    [Fact]
    public void BlockSizeAndWorkersRanges()
    {
        Assert.Equal(new[]
        {
            "vm.toml:10:14: 'block_size' must be a power of two from 512 to 32768, found 1000",
            "vm.toml:11:11: 'workers' must be between 1 and 32, found 64",
            "vm.toml:15:8: 'size' must be a multiple of the block size (512), found 1000",
        }, _f.Errors(Main + """

            [block_dev.d]
            type = "file"
            path = "disk.raw"
            block_size = 1000
            workers = 64

            [block_dev.r]
            type = "crucible-mem"
            size = 1000
            """));
    }

    [Fact]
    public void NvmeRefusesBlockSizesItCannotServe()
    {
        _f.WriteText("disk.raw", "");
        Assert.Equal(new[]
        {
            "vm.toml:10:14: block_dev 'big' has block_size 8192, but [dev.nvme0] (pci-nvme) serves 512- or 4096-byte blocks only; set block_size = 512 or 4096",
        }, _f.Errors(Main + """

            [block_dev.big]
            type = "mem-async"
            size = 1048576
            block_size = 8192

            [block_dev.ok]
            type = "mem-async"
            size = 1048576
            block_size = 4096

            [dev.nvme0]
            driver = "pci-nvme"
            block_dev = "big"
            pci-path = "0.4.0"

            [dev.nvme1]
            driver = "pci-nvme"
            block_dev = "ok"
            pci-path = "0.5.0"

            [dev.vblk]
            driver = "pci-virtio-block"
            block_dev = "v"
            pci-path = "0.6.0"

            [block_dev.v]
            type = "mem-async"
            size = 1048576
            block_size = 8192
            """));
    }

    [Fact]
    public void CloudInitBothFormsAndMissingSection()
    {
        _f.WriteText("user-data.yaml", "#cloud-config\n");
        Assert.Equal(new[]
        {
            "vm.toml:9:1: 'user-data' and 'user-data-path' are both set; use one",
            $"vm.toml:10:18: meta-data file 'meta.yaml' ({_f.PathOf("meta.yaml")}) does not exist",
        }, _f.Errors(Main + """

            [cloudinit]
            user-data = "#cloud-config"
            user-data-path = "user-data.yaml"
            meta-data-path = "meta.yaml"
            """));

        Assert.Equal(new[] { "vm.toml:12:13: block_dev 'ci' has type \"cloudinit\" but there is no [cloudinit] section to fill it" },
            _f.Errors(Main + """

            [block_dev.ci]
            type = "cloudinit"

            [dev.ci0]
            driver = "pci-virtio-block"
            block_dev = "ci"
            pci-path = "0.7.0"
            """));
    }

    [Fact]
    public void CpuidProfileMistakes()
    {
        Assert.Equal(new[]
        {
            "vm.toml:2:10: 'vendor' must be \"amd\" or \"intel\", found \"via\"",
            "vm.toml:3:1: 'zz' is not a CPUID leaf: write the leaf in hex (\"0x7\" or \"7\"), or leaf and subleaf (\"7-0\")",
            "vm.toml:4:7: CPUID leaf '0x1' must be an array of four integers [eax, ebx, ecx, edx], found 3 items",
            "vm.toml:6:1: CPUID leaf 0x7 is set both with and without a subleaf (see 5:1); use one form",
            "vm.toml:7:6: CPUID register values must be integers from 0 to 0xffffffff, found -1",
            "vm.toml:9:1: CPUID leaf 0xd is already set at 8:1",
        }, _f.Errors("""
            [cpuid.p]
            vendor = "via"
            zz = [0, 0, 0, 0]
            0x1 = [1, 2, 3]
            7-0 = [0, 0, 0, 0]
            7 = [0, 0, 0, 0]
            8 = [-1, 0, 0, 0]
            d = [0, 0, 0, 0]
            0xD = [0, 0, 0, 0]

            """ + Main));
    }

    [Fact]
    public void VionaAndVsockOptions()
    {
        Assert.Equal(new[]
        {
            "vm.toml:11:17: 'rx-queue-size' must be a power of two, found 1000",
            "vm.toml:12:17: 'tx-queue-size' must be between 1 and 32768, found 65536",
            "vm.toml:13:7: 'mac' 03:00:00:00:00:01 is a multicast address; a NIC needs a unicast one (first byte even)",
            "vm.toml:18:13: 'guest_cid' must be between 3 and 4294967294, found 2",
            "vm.toml:19:67: vsock port 22 is mapped twice",
        }, _f.Errors(Main + """

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "0.5.0"
            rx-queue-size = 1000
            tx-queue-size = 65536
            mac = "03:00:00:00:00:01"

            [dev.vsock]
            driver = "pci-virtio-socket"
            pci-path = "0.6.0"
            guest_cid = 2
            port_mappings = [{ port = 22, addr = "127.0.0.1:2222" }, { port = 22, addr = "127.0.0.1:2223" }]
            """));
    }

    [Fact]
    public void VionaVhostIsABoolean()
    {
        Assert.Equal(new[] { "vm.toml:11:9: 'vhost' must be a boolean, found string" }, _f.Errors(Main + """

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "tap0"
            pci-path = "0.5.0"
            vhost = "auto"
            """));
    }

    [Fact]
    public void VionaVnicMustBeAnInterfaceName()
    {
        Assert.Equal(new[]
        {
            "vm.toml:9:8: 'vnic' names the TAP interface: an interface name has 1 to 15 characters, 'a-very-long-vnic-name' has 21",
            "vm.toml:14:8: 'vnic' names the TAP interface: 'tap/0' is not a valid interface name (ASCII without spaces, '/' or ':')",
        }, _f.Errors(Main + """

            [dev.net0]
            driver = "pci-virtio-viona"
            vnic = "a-very-long-vnic-name"
            pci-path = "0.5.0"

            [dev.net1]
            driver = "pci-virtio-viona"
            vnic = "tap/0"
            pci-path = "0.6.0"
            """));
    }

    [Fact]
    public void EveryErrorOfTheFileInOneRun()
    {
        Assert.Equal(new[]
        {
            "vm.toml:3:8: 'cpus' must be between 1 and 32, found 0",
            "vm.toml:6:1: unknown key 'memroy' in [main]; did you mean 'memory'?",
            "vm.toml:8:1: missing required key 'path' in [block_dev.d]",
            "vm.toml:13:13: block_dev 'e' is not defined; did you mean 'd'? (defined: 'd')",
            "vm.toml:14:12: pci-path 0.1.0 belongs to the chipset (the piix3 lpc and power management functions); use a device number from 2 to 31",
        }, _f.Errors("""
            [main]
            name = "vm"
            cpus = 0
            memory = 512
            kernel = "vmlinuz"
            memroy = 1

            [block_dev.d]
            type = "file"

            [dev.x]
            driver = "pci-nvme"
            block_dev = "e"
            pci-path = "0.1.0"
            """));
    }

    [Fact]
    public void TomlSyntaxErrorIsLocated()
    {
        var errors = _f.Errors("""
            [main]
            name = "vm"
            cpus = = 2
            """);
        Assert.Equal(new[] { "vm.toml:3:8: expected a value, found '='" }, errors);
    }

    [Fact]
    public void PathWithNulCharacter()
    {
        Assert.Equal(new[] { "vm.toml:5:10: 'kernel' contains a NUL character, which no path can" }, _f.Errors("""
            [main]
            name = "vm"
            cpus = 2
            memory = 512
            kernel = "vmlinuz\u0000"
            """));
    }

    [Fact]
    public void CrucibleRegionLargerThan2To63Bytes()
    {
        Assert.Equal(new[] { "vm.toml:11:16: the region (4294967295 extents of 4611686018427387904 blocks of 512 bytes) is larger than 2^63 bytes" },
            _f.Errors(Main + """

            [block_dev.cru]
            type = "crucible"
            block_size = 512
            blocks_per_extent = 4611686018427387904
            extent_count = 4294967295
            targets = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
            generation = 1
            """));
    }

    [Fact]
    public void SectionThatIsNotATable()
    {
        Assert.Equal(new[] { "vm.toml:7:9: 'dev.nvme0' must be a table ([dev.nvme0]), found string" },
            _f.Errors(Main + "[dev]\nnvme0 = \"pci-nvme\"\n"));
    }
}

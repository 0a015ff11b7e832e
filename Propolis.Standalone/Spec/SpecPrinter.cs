using System.Globalization;
using System.Text;
using Propolis.Standalone.Config;

namespace Propolis.Standalone.Spec;

/// <summary>Renders a <see cref="MachineSpec"/> as the tree <c>--check</c> prints.</summary>
public static class SpecPrinter
{
    public static string Format(MachineSpec spec)
    {
        var sb = new StringBuilder();
        var b = spec.Board;
        sb.Append(CultureInfo.InvariantCulture, $"{b.Name}: {b.Cpus} vCPU{(b.Cpus == 1 ? "" : "s")}, {b.MemoryMiB} MiB");
        if (b.Bootrom is { } rom)
            sb.Append(", bootrom ").Append(rom.Path);
        if (b.Kernel is { } k)
            sb.Append(", kernel ").Append(k.Kernel);
        sb.Append('\n');

        var notes = new List<string>();
        if (b.Bootrom?.Version is { } version)
            notes.Add($"bootrom version \"{version}\"");
        if (b.Kernel is { } kernel)
        {
            if (kernel.Initrd is { } initrd)
                notes.Add($"initrd {initrd}");
            notes.Add($"cmdline \"{kernel.Cmdline}\"");
        }
        if (b.BootOrder.Count > 0)
            notes.Add("boot order: " + string.Join(", ", b.BootOrder.Select(d => $"{d.Name} ({d.Path})")));
        if (b.Cpuid is { } cpuid)
            notes.Add($"cpuid profile \"{cpuid.Name}\": {cpuid.Vendor.ToString().ToLowerInvariant()}, {cpuid.Entries.Count} leaves");
        if (b.CpuBinding == CpuBinding.UpperHalf)
            notes.Add("vCPUs bound to the highest-numbered host CPUs");
        if (b.ExitOnHalt != 0 || b.ExitOnReboot is not null)
            notes.Add($"exit code {b.ExitOnHalt} on halt" + (b.ExitOnReboot is { } r ? $", {r} on reboot" : ", reboot restarts the guest"));
        foreach (var note in notes)
            sb.Append("│  ").Append(note).Append('\n');

        var rows = new List<(string Where, string What)>();
        foreach (var slot in spec.PciSlots)
            rows.Add((slot.Path.ToString(), Describe(slot.Device, spec)));
        foreach (var dev in spec.IsaDevices)
            rows.Add(("isa", Describe(dev)));

        for (int i = 0; i < rows.Count; i++)
        {
            sb.Append(i == rows.Count - 1 ? "└─ " : "├─ ");
            sb.Append(rows[i].Where.PadRight(7)).Append(rows[i].What).Append('\n');
        }
        return sb.ToString();
    }

    private static string Describe(PciDeviceSpec device, MachineSpec spec) => device switch
    {
        HostBridgeSpec => "i440fx host bridge (chipset)",
        LpcSpec => $"piix3 lpc (chipset)  COM1 -> {spec.Console.Com1SocketPath}",
        PowerManagementSpec => "piix3 pm (chipset)",
        NvmeSpec n => $"pci-nvme \"{n.Name}\" -> {Describe(n.Backend, spec.CloudInit)}",
        VirtioBlockSpec v => $"pci-virtio-block \"{v.Name}\" -> {Describe(v.Backend, spec.CloudInit)}",
        VirtioNetSpec { Config: var c } => $"pci-virtio-viona \"{c.Name}\" -> vnic {c.Vnic} ({NetOptions(c)})",
        VirtioSocketSpec { Config: var c } => $"pci-virtio-socket \"{c.Name}\" guest cid {c.GuestCid}"
            + (c.PortMappings.Count == 0 ? ", no port mappings"
                : ", " + string.Join(", ", c.PortMappings.Select(m => $"port {m.Port} -> {m.Address}"))),
        _ => device.GetType().Name,
    };

    private static string NetOptions(VirtioNetDeviceConfig c)
    {
        var opts = new List<string> { $"rx {c.RxQueueSize}", $"tx {c.TxQueueSize}" };
        if (!c.TxCopyData)
            opts.Add("tx_copy_data false: no effect on a TAP");
        if (c.TxHeaderPad != 0)
            opts.Add($"tx_header_pad {c.TxHeaderPad}: no effect on a TAP");
        if (c.Mac is { } mac)
            opts.Add("mac " + Values.FormatMac(mac));
        // Which data path the queues will use; "auto" is decided at start, when /dev/vhost-net is tried.
        opts.Add(c.Vhost switch
        {
            VhostNetMode.Required => "tap, vhost-net (required)",
            VhostNetMode.Off => "tap, packet I/O in-process (vhost-net off)",
            _ => "tap, vhost-net if /dev/vhost-net opens, else packet I/O in-process",
        });
        return string.Join(", ", opts);
    }

    private static string Describe(IsaDeviceSpec device) => device switch
    {
        PvpanicSpec { Enabled: true } p => $"qemu-pvpanic \"{p.Name}\" port 0x{PvpanicSpec.Port:x}",
        PvpanicSpec p => $"qemu-pvpanic \"{p.Name}\" absent (enable_isa = false)",
        _ => device.GetType().Name,
    };

    /// <summary>A backend: its type, name, what it reads or connects to, and its options.</summary>
    public static string Describe(BlockDevConfig backend, CloudInitConfig? cloudInit)
    {
        var opts = new List<string> { $"{backend.BlockSize} B blocks" };
        string what = backend switch
        {
            FileBlockDev f => f.Path,
            CrucibleBlockDev c => string.Join(" ", c.Targets),
            CrucibleMemBlockDev m => Values.FormatSize(m.Size),
            MemAsyncBlockDev m => Values.FormatSize(m.Size),
            CloudInitBlockDev => CloudInitSummary(cloudInit),
            _ => "",
        };
        switch (backend)
        {
            case FileBlockDev f:
                opts.Add($"{f.Workers} workers");
                break;
            case MemAsyncBlockDev m:
                opts.Add($"{m.Workers} workers");
                break;
            case CrucibleBlockDev c:
                opts.Add($"{c.ExtentCount} extents of {c.BlocksPerExtent} blocks = {Values.FormatSize((long)c.SizeBytes)}");
                opts.Add($"generation {c.Generation}");
                if (c.UpstairsId is { } id)
                    opts.Add($"upstairs {id}");
                if (c.EncryptionKey is not null)
                    opts.Add("encrypted");
                if (c.Tls is not null)
                    opts.Add("tls");
                if (c.Lossy)
                    opts.Add("lossy");
                if (c.FlushTimeoutSeconds is { } ft)
                    opts.Add($"flush every {ft.ToString(CultureInfo.InvariantCulture)} s");
                if (c.ControlAddress is { } ctl)
                    opts.Add($"control {ctl}");
                break;
        }
        if (backend.ReadOnly)
            opts.Add("read-only");
        if (backend.SkipFlush)
            opts.Add("flushes skipped");
        return $"{backend.Type} \"{backend.Name}\" {what} ({string.Join(", ", opts)})";
    }

    private static string CloudInitSummary(CloudInitConfig? c)
    {
        static string Item(string name, CloudInitSource? s) => s switch
        {
            CloudInitSource.Inline i => $"{name} inline",
            CloudInitSource.FromFile f => $"{name} {f.Path}",
            _ => $"{name} empty",
        };
        return c is null ? "" : string.Join(", ", Item("user-data", c.UserData), Item("meta-data", c.MetaData), Item("network-config", c.NetworkConfig));
    }
}

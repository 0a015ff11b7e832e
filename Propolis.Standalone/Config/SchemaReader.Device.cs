using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

internal sealed partial class SchemaReader
{
    // ---- [dev.NAME] -----------------------------------------------------------------------

    private DeviceConfig? ReadDevice(string name, TomlTable t)
    {
        var r = new TableReader(t, $"[dev.{name}]", _d);
        int before = _d.Count;

        var driverNode = r.StringNode("driver", required: true, hint: $" ({string.Join(", ", Drivers.Select(x => $"\"{x.Driver}\""))})");
        string? driver = driverNode?.Value;
        if (driverNode is not null && !Drivers.Any(x => x.Driver == driverNode.Value))
        {
            r.Error(driverNode.Position, $"unknown driver \"{driverNode.Value}\"{Suggest.DidYouMean(driverNode.Value, Drivers.Select(x => x.Driver), "\"")} (drivers: {string.Join(", ", Drivers.Select(x => x.Driver))})");
            driver = null;
        }
        var refs = new DeviceRefs(name, driver, t.Position);
        _deviceRefs.Add(refs);

        if (driver is null)
        {
            foreach (var (key, _) in t.Entries)
            {
                if (key.Name != "driver" && !Drivers.Any(x => x.Keys.Contains(key.Name)))
                    r.Error(key.Position, $"unknown key '{key.Name}' in {r.Section}{Suggest.DidYouMean(key.Name, Drivers.SelectMany(x => x.Keys).Append("driver"))}");
            }
            return null;
        }

        var keys = Drivers.First(x => x.Driver == driver).Keys;
        PciPath? pci = null;
        if (keys.Contains("pci-path"))
        {
            pci = ReadPciPath(r);
            refs.Pci = pci;
            refs.PciPosition = r.ValuePosition("pci-path");
        }
        string? blockDev = null;
        if (keys.Contains("block_dev"))
        {
            blockDev = r.NonEmptyString("block_dev", required: true);
            refs.BlockDev = blockDev;
            refs.BlockDevPosition = r.ValuePosition("block_dev");
        }

        DeviceConfig? result = driver switch
        {
            "pci-nvme" when pci is { } p && blockDev is not null => new NvmeDeviceConfig(name, p, blockDev),
            "pci-virtio-block" when pci is { } p && blockDev is not null => new VirtioBlockDeviceConfig(name, p, blockDev),
            "pci-virtio-viona" => ReadViona(r, name, pci),
            "qemu-pvpanic" => Pvpanic(r, name, refs),
            "pci-virtio-socket" => ReadVsock(r, name, pci),
            _ => null,
        };

        r.RejectUnknown(key =>
        {
            var owners = Drivers.Where(x => x.Keys.Contains(key)).Select(x => x.Driver).ToArray();
            return owners.Length == 0 ? null
                : $"key '{key}' is not valid for driver '{driver}' (it belongs to {string.Join(", ", owners.Select(o => $"'{o}'"))})";
        });

        if (_d.Count != before || result is null)
            return null;
        return result with { Position = t.Position };
    }

    private static PvpanicDeviceConfig Pvpanic(TableReader r, string name, DeviceRefs refs)
    {
        bool enabled = r.Bool("enable_isa") ?? false;
        refs.PvpanicDisabled = !enabled;
        return new PvpanicDeviceConfig(name, enabled);
    }

    private static PciPath? ReadPciPath(TableReader r)
    {
        var node = r.StringNode("pci-path", required: true, hint: " (\"0.DEVICE.0\" with DEVICE from 2 to 31)");
        if (node is null)
            return null;
        var parts = node.Value.Split('.');
        var nums = new int[3];
        bool ok = parts.Length == 3;
        for (int i = 0; ok && i < 3; i++)
        {
            ok = parts[i].Length is > 0 and <= 3 && parts[i].All(char.IsAsciiDigit);
            if (ok)
                nums[i] = int.Parse(parts[i], CultureInfo.InvariantCulture);
        }
        if (!ok)
        {
            r.Error(node.Position, $"'pci-path' must be \"bus.device.function\" in decimal, such as \"0.4.0\", found \"{node.Value}\"");
            return null;
        }
        var (bus, dev, fn) = (nums[0], nums[1], nums[2]);
        if (bus != 0)
        {
            r.Error(node.Position, $"pci-path {node.Value}: bus {bus} does not exist; devices go on bus 0 (there are no PCI bridges)");
            return null;
        }
        if (dev > PciPath.MaxDevice)
        {
            r.Error(node.Position, $"pci-path {node.Value}: device must be from 0 to {PciPath.MaxDevice}, found {dev}");
            return null;
        }
        if (fn > PciPath.MaxFunction)
        {
            r.Error(node.Position, $"pci-path {node.Value}: function must be from 0 to {PciPath.MaxFunction}, found {fn}");
            return null;
        }
        var path = new PciPath((byte)bus, (byte)dev, (byte)fn);
        if (ChipsetSlots.OwnerOf(path) is { } owner)
        {
            r.Error(node.Position, $"pci-path {path} belongs to the chipset ({owner}); use a device number from {ChipsetSlots.FirstFreeDevice} to {PciPath.MaxDevice}");
            return null;
        }
        return path;
    }

    private static int QueueSize(TableReader r, string key, int defaultSize)
    {
        var v = r.Integer(key, 1, VirtioNetDeviceConfig.MaxQueueSize);
        if (v is null)
            return defaultSize;
        if ((v & (v - 1)) != 0)
        {
            r.Error(r.ValuePosition(key), $"'{key}' must be a power of two, found {v}");
            return defaultSize;
        }
        return (int)v;
    }

    private static VirtioNetDeviceConfig? ReadViona(TableReader r, string name, PciPath? pci)
    {
        var vnic = r.NonEmptyString("vnic", required: true);
        if (vnic is not null && Propolis.Core.Net.TapDevice.ValidateName(vnic) is { } badName)
        {
            // On Linux the vnic is a TAP interface, so it must be a valid interface name.
            r.Error(r.ValuePosition("vnic"), $"'vnic' names the TAP interface: {badName}");
            vnic = null;
        }
        int rx = QueueSize(r, "rx-queue-size", VirtioNetDeviceConfig.DefaultRxQueueSize);
        int tx = QueueSize(r, "tx-queue-size", VirtioNetDeviceConfig.DefaultTxQueueSize);
        bool copy = r.Bool("tx_copy_data") ?? true;
        var pad = r.Integer("tx_header_pad", 0, ushort.MaxValue) ?? 0;
        // viona's transmit parameters (illumos viona_io.h) have no counterpart on a Linux TAP.
        if (!copy)
            r.Diagnostics.Warning(r.ValuePosition("tx_copy_data"), "tx_copy_data = false has no effect on Linux: a TAP write always copies the frame out of guest memory (viona's loaning of guest buffers does not exist here)");
        if (pad != 0)
            r.Diagnostics.Warning(r.ValuePosition("tx_header_pad"), $"tx_header_pad = {pad} has no effect on Linux: the kernel reserves its own headroom in the frames a TAP receives");
        byte[]? mac = null;
        if (r.StringNode("mac") is { } m)
        {
            mac = Values.ParseMac(m.Value);
            if (mac is null)
                r.Error(m.Position, $"'mac' must be six hex bytes \"xx:xx:xx:xx:xx:xx\", found \"{m.Value}\"");
            else if ((mac[0] & 1) != 0)
            {
                r.Error(m.Position, $"'mac' {m.Value} is a multicast address; a NIC needs a unicast one (first byte even)");
                mac = null;
            }
        }
        // Not in propolis (viona is always in-kernel on illumos): on Linux the in-kernel path is
        // vhost-net, used when it opens unless the key says otherwise.
        var vhost = r.Bool("vhost") switch
        {
            true => VhostNetMode.Required,
            false => VhostNetMode.Off,
            null => VhostNetMode.Auto,
        };
        if (pci is not { } p || vnic is null)
            return null;
        return new VirtioNetDeviceConfig(name, p, vnic, rx, tx, copy, (ushort)pad, mac, vhost);
    }

    private static VirtioSocketDeviceConfig? ReadVsock(TableReader r, string name, PciPath? pci)
    {
        // CIDs 0-2 are reserved by the virtio spec (§5.10.4); 0xffffffff is VMADDR_CID_ANY.
        var cid = r.Integer("guest_cid", 3, uint.MaxValue - 1, required: true);
        var mappings = new List<VsockPortMapping>();
        if (r.Array("port_mappings") is { } arr)
        {
            foreach (var item in arr.Items)
            {
                if (item is not TomlTable t)
                {
                    r.Error(item.Position, $"'port_mappings' lists tables such as {{ port = 22, addr = \"127.0.0.1:2222\" }}, found {item.TypeName}");
                    continue;
                }
                var mr = new TableReader(t, $"a port mapping of {r.Section}", r.Diagnostics);
                var port = mr.Integer("port", 0, uint.MaxValue, required: true);
                System.Net.IPEndPoint? addr = null;
                if (mr.StringNode("addr", required: true) is { } a)
                    addr = SocketAddress(mr, a, "addr");
                mr.RejectUnknown();
                if (port is null || addr is null)
                    continue;
                if (mappings.Any(x => x.Port == port))
                {
                    r.Error(mr.ValuePosition("port"), $"vsock port {port} is mapped twice");
                    continue;
                }
                mappings.Add(new VsockPortMapping((uint)port.Value, addr));
            }
        }
        if (pci is not { } p || cid is null)
            return null;
        return new VirtioSocketDeviceConfig(name, p, (uint)cid.Value, mappings);
    }
}

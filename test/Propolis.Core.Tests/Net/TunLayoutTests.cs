using System.Globalization;
using System.Runtime.InteropServices;
using Propolis.Core.Tests.InteropTests;
using Tun = Propolis.Core.Interop.Interop.Tun;

namespace Propolis.Core.Tests.Net;

/// <summary>Pins <c>Interop.Tun</c> (struct ifreq, struct pollfd, the TUN/TAP ioctls and flags,
/// the interface ioctls) against the C headers by compiling a program with gcc.</summary>
public class TunLayoutTests
{
    [Fact]
    public void Structs_and_constants_match_the_headers()
    {
        var expected = new (string Expression, long Value)[]
        {
            ("sizeof(struct ifreq)", Marshal.SizeOf<Tun.ifreq>()),
            ("offsetof(struct ifreq, ifr_name)", (long)Marshal.OffsetOf<Tun.ifreq>("ifr_name")),
            ("offsetof(struct ifreq, ifr_flags)", (long)Marshal.OffsetOf<Tun.ifreq>(nameof(Tun.ifreq.ifr_flags))),
            ("sizeof(((struct ifreq*)0)->ifr_flags)", sizeof(short)),
            ("offsetof(struct ifreq, ifr_mtu)", (long)Marshal.OffsetOf<Tun.ifreq>(nameof(Tun.ifreq.ifr_mtu))),
            ("offsetof(struct ifreq, ifr_ifindex)", (long)Marshal.OffsetOf<Tun.ifreq>(nameof(Tun.ifreq.ifr_ifindex))),
            ("sizeof(struct pollfd)", Marshal.SizeOf<Tun.pollfd>()),
            ("offsetof(struct pollfd, fd)", (long)Marshal.OffsetOf<Tun.pollfd>(nameof(Tun.pollfd.fd))),
            ("offsetof(struct pollfd, events)", (long)Marshal.OffsetOf<Tun.pollfd>(nameof(Tun.pollfd.events))),
            ("offsetof(struct pollfd, revents)", (long)Marshal.OffsetOf<Tun.pollfd>(nameof(Tun.pollfd.revents))),
            ("O_NONBLOCK", Tun.O_NONBLOCK),
            ("TUNSETIFF", Tun.TUNSETIFF),
            ("TUNSETPERSIST", Tun.TUNSETPERSIST),
            ("TUNGETIFF", Tun.TUNGETIFF),
            ("TUNSETOFFLOAD", Tun.TUNSETOFFLOAD),
            ("TUNSETVNETHDRSZ", Tun.TUNSETVNETHDRSZ),
            ("TUNSETQUEUE", Tun.TUNSETQUEUE),
            ("IFF_TUN", Tun.IFF_TUN),
            ("IFF_TAP", Tun.IFF_TAP),
            ("IFF_NO_PI", Tun.IFF_NO_PI),
            ("IFF_VNET_HDR", Tun.IFF_VNET_HDR),
            ("IFF_MULTI_QUEUE", Tun.IFF_MULTI_QUEUE),
            ("IFF_ATTACH_QUEUE", Tun.IFF_ATTACH_QUEUE),
            ("IFF_DETACH_QUEUE", Tun.IFF_DETACH_QUEUE),
            ("TUN_F_CSUM", Tun.TUN_F_CSUM),
            ("TUN_F_TSO4", Tun.TUN_F_TSO4),
            ("TUN_F_TSO6", Tun.TUN_F_TSO6),
            ("TUN_F_TSO_ECN", Tun.TUN_F_TSO_ECN),
            ("TUN_F_UFO", Tun.TUN_F_UFO),
            ("IFNAMSIZ", Tun.IFNAMSIZ),
            ("IFF_UP", Tun.IFF_UP),
            ("SIOCGIFFLAGS", Tun.SIOCGIFFLAGS),
            ("SIOCSIFFLAGS", Tun.SIOCSIFFLAGS),
            ("SIOCGIFMTU", Tun.SIOCGIFMTU),
            ("SIOCGIFINDEX", Tun.SIOCGIFINDEX),
            ("AF_INET", Tun.AF_INET),
            ("SOCK_DGRAM", Tun.SOCK_DGRAM),
            ("SOCK_CLOEXEC", Tun.SOCK_CLOEXEC),
            ("POLLIN", Tun.POLLIN),
            ("POLLOUT", Tun.POLLOUT),
            ("POLLERR", Tun.POLLERR),
            ("POLLHUP", Tun.POLLHUP),
            ("POLLNVAL", Tun.POLLNVAL),
            ("EAGAIN", Tun.EAGAIN),
            ("EINTR", Tun.EINTR),
            ("EBADFD", Tun.EBADFD),
            ("sizeof(struct virtio_net_hdr)", Propolis.Core.Hw.Virtio.VirtioNetSpec.Header.LegacySize),
            ("sizeof(struct virtio_net_hdr_v1)", Propolis.Core.Hw.Virtio.VirtioNetSpec.Header.Size),
            ("offsetof(struct virtio_net_hdr_v1, num_buffers)", Propolis.Core.Hw.Virtio.VirtioNetSpec.Header.NumBuffers),
            ("offsetof(struct virtio_net_hdr_v1, csum_offset)", Propolis.Core.Hw.Virtio.VirtioNetSpec.Header.CsumOffset),
            ("offsetof(struct virtio_net_config, status)", Propolis.Core.Hw.Virtio.VirtioNetSpec.Config.Status),
            ("offsetof(struct virtio_net_config, max_virtqueue_pairs)", Propolis.Core.Hw.Virtio.VirtioNetSpec.Config.MaxVirtqueuePairs),
            ("offsetof(struct virtio_net_config, mtu)", Propolis.Core.Hw.Virtio.VirtioNetSpec.Config.Mtu),
            ("VIRTIO_NET_F_MRG_RXBUF", 15),
            ("VIRTIO_NET_F_MQ", 22),
            ("VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET", Propolis.Core.Hw.Virtio.VirtioNetSpec.Ctrl.MqVqPairsSet),
            ("VIRTIO_NET_CTRL_MQ", Propolis.Core.Hw.Virtio.VirtioNetSpec.Ctrl.ClassMq),
            ("VIRTIO_NET_CTRL_MAC_TABLE_SET", Propolis.Core.Hw.Virtio.VirtioNetSpec.Ctrl.MacTableSet),
            ("VIRTIO_NET_CTRL_RX_ALLMULTI", Propolis.Core.Hw.Virtio.VirtioNetSpec.Ctrl.RxAllMulti),
        };
        var source = "#define _GNU_SOURCE\n#include <stdio.h>\n#include <stddef.h>\n#include <errno.h>\n#include <fcntl.h>\n#include <poll.h>\n"
            + "#include <sys/socket.h>\n#include <sys/ioctl.h>\n#include <net/if.h>\n#include <linux/if_tun.h>\n#include <linux/sockios.h>\n#include <linux/virtio_net.h>\nint main(void) {\n"
            + string.Concat(expected.Select(e => $"printf(\"%lld\\n\", (long long)({e.Expression}));\n"))
            + "return 0;\n}\n";

        var lines = CProgram.CompileAndRun(source, "the TUN/TAP interop structs and constants against the C headers");

        Assert.Equal(expected.Length, lines.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(expected[i].Value == long.Parse(lines[i], CultureInfo.InvariantCulture), $"{expected[i].Expression}: managed {expected[i].Value}, C {lines[i]}");
        }
    }
}

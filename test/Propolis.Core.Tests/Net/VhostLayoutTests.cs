using System.Globalization;
using System.Runtime.InteropServices;
using Propolis.Core.Tests.InteropTests;
using Vhost = Propolis.Core.Interop.Interop.Vhost;

namespace Propolis.Core.Tests.Net;

/// <summary>Pins <c>Interop.Vhost</c> (the vhost structs, the ioctl numbers and the feature bits)
/// against &lt;linux/vhost.h&gt; by compiling a program with gcc.</summary>
public class VhostLayoutTests
{
    [Fact]
    public void Structs_and_ioctls_match_the_headers()
    {
        var expected = new (string Expression, long Value)[]
        {
            ("sizeof(struct vhost_vring_state)", Marshal.SizeOf<Vhost.vhost_vring_state>()),
            ("offsetof(struct vhost_vring_state, index)", (long)Marshal.OffsetOf<Vhost.vhost_vring_state>(nameof(Vhost.vhost_vring_state.index))),
            ("offsetof(struct vhost_vring_state, num)", (long)Marshal.OffsetOf<Vhost.vhost_vring_state>(nameof(Vhost.vhost_vring_state.num))),
            ("sizeof(struct vhost_vring_file)", Marshal.SizeOf<Vhost.vhost_vring_file>()),
            ("offsetof(struct vhost_vring_file, index)", (long)Marshal.OffsetOf<Vhost.vhost_vring_file>(nameof(Vhost.vhost_vring_file.index))),
            ("offsetof(struct vhost_vring_file, fd)", (long)Marshal.OffsetOf<Vhost.vhost_vring_file>(nameof(Vhost.vhost_vring_file.fd))),
            ("sizeof(struct vhost_vring_addr)", Marshal.SizeOf<Vhost.vhost_vring_addr>()),
            ("offsetof(struct vhost_vring_addr, index)", (long)Marshal.OffsetOf<Vhost.vhost_vring_addr>(nameof(Vhost.vhost_vring_addr.index))),
            ("offsetof(struct vhost_vring_addr, flags)", (long)Marshal.OffsetOf<Vhost.vhost_vring_addr>(nameof(Vhost.vhost_vring_addr.flags))),
            ("offsetof(struct vhost_vring_addr, desc_user_addr)", (long)Marshal.OffsetOf<Vhost.vhost_vring_addr>(nameof(Vhost.vhost_vring_addr.desc_user_addr))),
            ("offsetof(struct vhost_vring_addr, used_user_addr)", (long)Marshal.OffsetOf<Vhost.vhost_vring_addr>(nameof(Vhost.vhost_vring_addr.used_user_addr))),
            ("offsetof(struct vhost_vring_addr, avail_user_addr)", (long)Marshal.OffsetOf<Vhost.vhost_vring_addr>(nameof(Vhost.vhost_vring_addr.avail_user_addr))),
            ("offsetof(struct vhost_vring_addr, log_guest_addr)", (long)Marshal.OffsetOf<Vhost.vhost_vring_addr>(nameof(Vhost.vhost_vring_addr.log_guest_addr))),
            ("sizeof(struct vhost_memory_region)", Marshal.SizeOf<Vhost.vhost_memory_region>()),
            ("offsetof(struct vhost_memory_region, guest_phys_addr)", (long)Marshal.OffsetOf<Vhost.vhost_memory_region>(nameof(Vhost.vhost_memory_region.guest_phys_addr))),
            ("offsetof(struct vhost_memory_region, memory_size)", (long)Marshal.OffsetOf<Vhost.vhost_memory_region>(nameof(Vhost.vhost_memory_region.memory_size))),
            ("offsetof(struct vhost_memory_region, userspace_addr)", (long)Marshal.OffsetOf<Vhost.vhost_memory_region>(nameof(Vhost.vhost_memory_region.userspace_addr))),
            ("offsetof(struct vhost_memory_region, flags_padding)", (long)Marshal.OffsetOf<Vhost.vhost_memory_region>(nameof(Vhost.vhost_memory_region.flags_padding))),
            ("sizeof(struct vhost_memory)", Marshal.SizeOf<Vhost.vhost_memory>()),
            ("offsetof(struct vhost_memory, nregions)", (long)Marshal.OffsetOf<Vhost.vhost_memory>(nameof(Vhost.vhost_memory.nregions))),
            ("offsetof(struct vhost_memory, regions)", Marshal.SizeOf<Vhost.vhost_memory>()),
            ("VHOST_VIRTIO", Vhost.VHOST_VIRTIO),
            ("VHOST_GET_FEATURES", Vhost.VHOST_GET_FEATURES),
            ("VHOST_SET_FEATURES", Vhost.VHOST_SET_FEATURES),
            ("VHOST_SET_OWNER", Vhost.VHOST_SET_OWNER),
            ("VHOST_RESET_OWNER", Vhost.VHOST_RESET_OWNER),
            ("VHOST_SET_MEM_TABLE", Vhost.VHOST_SET_MEM_TABLE),
            ("VHOST_SET_VRING_NUM", Vhost.VHOST_SET_VRING_NUM),
            ("VHOST_SET_VRING_ADDR", Vhost.VHOST_SET_VRING_ADDR),
            ("VHOST_SET_VRING_BASE", Vhost.VHOST_SET_VRING_BASE),
            ("VHOST_GET_VRING_BASE", Vhost.VHOST_GET_VRING_BASE),
            ("VHOST_SET_VRING_KICK", Vhost.VHOST_SET_VRING_KICK),
            ("VHOST_SET_VRING_CALL", Vhost.VHOST_SET_VRING_CALL),
            ("VHOST_SET_VRING_ERR", Vhost.VHOST_SET_VRING_ERR),
            ("VHOST_NET_SET_BACKEND", Vhost.VHOST_NET_SET_BACKEND),
            ("VHOST_FILE_UNBIND", Vhost.VHOST_FILE_UNBIND),
            ("VHOST_NET_F_VIRTIO_NET_HDR", Vhost.VHOST_NET_F_VIRTIO_NET_HDR),
            ("VHOST_F_LOG_ALL", Vhost.VHOST_F_LOG_ALL),
        };
        var source = "#include <stdio.h>\n#include <stddef.h>\n#include <sys/ioctl.h>\n#include <linux/vhost.h>\nint main(void) {\n"
            + string.Concat(expected.Select(e => $"printf(\"%lld\\n\", (long long)({e.Expression}));\n"))
            + "return 0;\n}\n";

        var lines = CProgram.CompileAndRun(source, "the vhost interop structs and ioctls against <linux/vhost.h>");

        Assert.Equal(expected.Length, lines.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(expected[i].Value == long.Parse(lines[i], CultureInfo.InvariantCulture), $"{expected[i].Expression}: managed {expected[i].Value}, C {lines[i]}");
        }
    }
}

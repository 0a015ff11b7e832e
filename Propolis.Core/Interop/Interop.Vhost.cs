using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006, CS8981 // names mirror the C headers

internal static partial class Interop
{
    /// <summary>The vhost-net character device and the vhost ioctls (&lt;linux/vhost.h&gt;,
    /// &lt;linux/vhost_types.h&gt;) that hand a virtqueue's processing to the kernel. Pinned by
    /// Net/VhostLayoutTests.</summary>
    internal static unsafe partial class Vhost
    {
        internal const string DevicePath = "/dev/vhost-net";

        // <asm-generic/ioctl.h>
        private const uint _IOC_NONE = 0, _IOC_WRITE = 1, _IOC_READ = 2;

        private static uint _IOC(uint dir, uint nr, int size) => (dir << 30) | ((uint)size << 16) | (VHOST_VIRTIO << 8) | nr;

        internal const uint VHOST_VIRTIO = 0xAF;

        internal static readonly uint VHOST_GET_FEATURES = _IOC(_IOC_READ, 0x00, sizeof(ulong));
        internal static readonly uint VHOST_SET_FEATURES = _IOC(_IOC_WRITE, 0x00, sizeof(ulong));
        internal static readonly uint VHOST_SET_OWNER = _IOC(_IOC_NONE, 0x01, 0);
        internal static readonly uint VHOST_RESET_OWNER = _IOC(_IOC_NONE, 0x02, 0);
        internal static readonly uint VHOST_SET_MEM_TABLE = _IOC(_IOC_WRITE, 0x03, sizeof(vhost_memory));
        internal static readonly uint VHOST_SET_VRING_NUM = _IOC(_IOC_WRITE, 0x10, sizeof(vhost_vring_state));
        internal static readonly uint VHOST_SET_VRING_ADDR = _IOC(_IOC_WRITE, 0x11, sizeof(vhost_vring_addr));
        internal static readonly uint VHOST_SET_VRING_BASE = _IOC(_IOC_WRITE, 0x12, sizeof(vhost_vring_state));
        internal static readonly uint VHOST_GET_VRING_BASE = _IOC(_IOC_READ | _IOC_WRITE, 0x12, sizeof(vhost_vring_state));
        internal static readonly uint VHOST_SET_VRING_KICK = _IOC(_IOC_WRITE, 0x20, sizeof(vhost_vring_file));
        internal static readonly uint VHOST_SET_VRING_CALL = _IOC(_IOC_WRITE, 0x21, sizeof(vhost_vring_file));
        internal static readonly uint VHOST_SET_VRING_ERR = _IOC(_IOC_WRITE, 0x22, sizeof(vhost_vring_file));
        internal static readonly uint VHOST_NET_SET_BACKEND = _IOC(_IOC_WRITE, 0x30, sizeof(vhost_vring_file));

        /// <summary>Unbinds a ring's kick/call/err descriptor or a vhost-net backend.</summary>
        internal const int VHOST_FILE_UNBIND = -1;

        /// <summary>Feature bit: vhost-net adds and strips the virtio-net header itself (not used:
        /// the TAP does it with IFF_VNET_HDR).</summary>
        internal const int VHOST_NET_F_VIRTIO_NET_HDR = 27;

        internal const int VHOST_F_LOG_ALL = 26;

        /// <summary>struct vhost_vring_state: a ring's size (SET_VRING_NUM) or its next avail index (SET/GET_VRING_BASE).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct vhost_vring_state
        {
            public uint index;
            public uint num;
        }

        /// <summary>struct vhost_vring_file: an eventfd (kick, call, err) or a backend descriptor; -1 unbinds.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct vhost_vring_file
        {
            public uint index;
            public int fd;
        }

        /// <summary>struct vhost_vring_addr: the ring's parts as addresses in this process.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct vhost_vring_addr
        {
            public uint index;
            public uint flags;
            public ulong desc_user_addr;
            public ulong used_user_addr;
            public ulong avail_user_addr;
            public ulong log_guest_addr;
        }

        /// <summary>struct vhost_memory_region: guest-physical range → this process's address.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct vhost_memory_region
        {
            public ulong guest_phys_addr;
            public ulong memory_size;
            public ulong userspace_addr;
            public ulong flags_padding;
        }

        /// <summary>struct vhost_memory: the header of SET_MEM_TABLE's argument, followed by
        /// <see cref="nregions"/> <see cref="vhost_memory_region"/>s.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct vhost_memory
        {
            public uint nregions;
            public uint padding;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int Ioctl(SafeFdHandle fd, nuint request, void* arg);

        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int Ioctl(SafeFdHandle fd, nuint request, nint arg);
    }
}

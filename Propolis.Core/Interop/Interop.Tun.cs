using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006, CS8981 // names mirror the C headers

internal static partial class Interop
{
    /// <summary>The TUN/TAP driver's ioctls and flags (&lt;linux/if_tun.h&gt;), the interface ioctls
    /// (&lt;linux/sockios.h&gt;, &lt;net/if.h&gt;) and the system calls the network backend needs
    /// (readv, writev, poll, socket). Pinned by Net/TunLayoutTests.</summary>
    internal static unsafe partial class Tun
    {
        internal const string DevicePath = "/dev/net/tun";

        // <fcntl.h>
        internal const int O_NONBLOCK = 0x800;

        // <linux/if_tun.h>: _IOW('T', 202, int) and friends.
        internal const uint TUNSETIFF = 0x400454CA;
        internal const uint TUNSETPERSIST = 0x400454CB;
        internal const uint TUNGETIFF = 0x800454D2;
        internal const uint TUNSETOFFLOAD = 0x400454D0;
        internal const uint TUNSETVNETHDRSZ = 0x400454D8;
        internal const uint TUNSETQUEUE = 0x400454D9;

        internal const short IFF_TUN = 0x0001;
        internal const short IFF_TAP = 0x0002;
        internal const short IFF_NO_PI = 0x1000;
        internal const short IFF_VNET_HDR = 0x4000;
        internal const short IFF_MULTI_QUEUE = 0x0100;
        internal const short IFF_ATTACH_QUEUE = 0x0200;
        internal const short IFF_DETACH_QUEUE = 0x0400;

        internal const uint TUN_F_CSUM = 0x01;
        internal const uint TUN_F_TSO4 = 0x02;
        internal const uint TUN_F_TSO6 = 0x04;
        internal const uint TUN_F_TSO_ECN = 0x08;
        internal const uint TUN_F_UFO = 0x10;

        // <net/if.h>
        internal const int IFNAMSIZ = 16;
        internal const short IFF_UP = 0x1;

        // <linux/sockios.h>
        internal const uint SIOCGIFFLAGS = 0x8913;
        internal const uint SIOCSIFFLAGS = 0x8914;
        internal const uint SIOCGIFMTU = 0x8921;
        internal const uint SIOCGIFINDEX = 0x8933;

        // <sys/socket.h>
        internal const int AF_INET = 2;
        internal const int SOCK_DGRAM = 2;
        internal const int SOCK_CLOEXEC = 0x80000;

        // <poll.h>
        internal const short POLLIN = 0x001;
        internal const short POLLOUT = 0x004;
        internal const short POLLERR = 0x008;
        internal const short POLLHUP = 0x010;
        internal const short POLLNVAL = 0x020;

        // <errno.h>
        internal const int EAGAIN = 11;
        internal const int EINTR = 4;
        internal const int EBADFD = 77;

        /// <summary>struct ifreq (&lt;net/if.h&gt;): the interface name, then a union whose members used
        /// here are ifr_flags (short), ifr_mtu and ifr_ifindex (int). 40 bytes on x86-64.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 40)]
        internal struct ifreq
        {
            [FieldOffset(0)] public fixed byte ifr_name[IFNAMSIZ];
            [FieldOffset(16)] public short ifr_flags;
            [FieldOffset(16)] public int ifr_mtu;
            [FieldOffset(16)] public int ifr_ifindex;

            /// <summary>An ifreq naming <paramref name="name"/> (ASCII, at most IFNAMSIZ-1 bytes; checked by the caller).</summary>
            public static ifreq ForName(string name)
            {
                var r = default(ifreq);
                for (var i = 0; i < name.Length && i < IFNAMSIZ - 1; i++)
                {
                    r.ifr_name[i] = (byte)name[i];
                }
                return r;
            }
        }

        /// <summary>struct pollfd (&lt;poll.h&gt;).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct pollfd
        {
            public int fd;
            public short events;
            public short revents;
        }

        /// <summary>readv(2) on a TAP queue: one frame per call. Non-blocking descriptors only, so the
        /// GC transition is kept anyway (it costs little next to the copy).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "readv", SetLastError = true)]
        internal static partial nint Readv(int fd, BlockIo.Iovec* iov, int iovcnt);

        /// <summary>writev(2): one frame per call on a TAP queue.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "writev", SetLastError = true)]
        internal static partial nint Writev(int fd, BlockIo.Iovec* iov, int iovcnt);

        /// <summary>poll(2): blocks, so the GC transition stays.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
        internal static partial int Poll(pollfd* fds, nuint nfds, int timeout);

        [LibraryImport(Libraries.Libc, EntryPoint = "socket", SetLastError = true)]
        private static partial int SocketRaw(int domain, int type, int protocol);

        /// <summary>An invalid handle on failure (see <see cref="Sys.Open"/> for why the int is wrapped here).</summary>
        internal static SafeFdHandle Socket(int domain, int type, int protocol) => new(SocketRaw(domain, type, protocol), ownsHandle: true);

        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int Ioctl(SafeFdHandle fd, nuint request, ifreq* arg);

        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int Ioctl(SafeFdHandle fd, nuint request, int* arg);

        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int Ioctl(SafeFdHandle fd, nuint request, nuint arg);
    }
}

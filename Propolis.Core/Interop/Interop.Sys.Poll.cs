using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const short POLLIN = 0x1;

        /// <summary>struct pollfd (poll(2)): int fd; short events; short revents.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PollFd
        {
            public int Fd;
            public short Events;
            public short Revents;
        }

        /// <summary>Blocks: never marked to suppress the GC transition.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
        internal static unsafe partial int Poll(PollFd* fds, nuint nfds, int timeout);
    }
}

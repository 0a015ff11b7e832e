using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const short POLLIN = 0x1;

        /// <summary>Blocks: never marked to suppress the GC transition.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
        internal static unsafe partial int Poll(pollfd* fds, nuint nfds, int timeout);
    }
}

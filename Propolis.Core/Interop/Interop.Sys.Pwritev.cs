using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>pwritev(2): -1 and errno on failure. Blocks on disk I/O, so the GC transition stays.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "pwritev", SetLastError = true)]
        internal static unsafe partial nint Pwritev(SafeFdHandle fd, BlockIo.Iovec* iov, int iovcnt, long offset);
    }
}

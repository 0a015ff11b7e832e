using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>preadv(2): -1 and errno on failure. Blocks on disk I/O, so the GC transition stays.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "preadv", SetLastError = true)]
        internal static unsafe partial nint Preadv(SafeFdHandle fd, BlockIo.Iovec* iov, int iovcnt, long offset);
    }
}

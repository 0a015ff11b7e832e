using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>pwrite(2): -1 and errno on failure. Blocks on disk I/O, so the GC transition stays.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "pwrite", SetLastError = true)]
        internal static unsafe partial nint Pwrite(SafeFdHandle fd, void* buf, nuint count, long offset);
    }
}

using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "eventfd", SetLastError = true)]
        internal static partial SafeFdHandle EventFd(uint initval, int flags);
    }
}

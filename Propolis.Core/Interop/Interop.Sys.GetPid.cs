using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "getpid")]
        [System.Runtime.InteropServices.SuppressGCTransition]
        internal static partial int GetPid();
    }
}

using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>SIGRTMIN as glibc computes it (the C macro calls this function).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "__libc_current_sigrtmin")]
        internal static partial int SigRtMin();

        [LibraryImport(Libraries.Libc, EntryPoint = "__libc_current_sigrtmax")]
        internal static partial int SigRtMax();
    }
}

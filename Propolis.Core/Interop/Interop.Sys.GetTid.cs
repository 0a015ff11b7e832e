using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>The kernel thread id of the calling thread (glibc 2.30+).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "gettid")]
        [System.Runtime.InteropServices.SuppressGCTransition]
        internal static partial int GetTid();
    }
}

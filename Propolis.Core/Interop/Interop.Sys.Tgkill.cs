using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>Sends a signal to one thread (glibc 2.30+ wrapper of tgkill(2)).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "tgkill", SetLastError = true)]
        internal static partial int Tgkill(int tgid, int tid, int sig);
    }
}

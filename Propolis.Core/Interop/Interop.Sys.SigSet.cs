using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "sigemptyset", SetLastError = true)]
        internal static unsafe partial int SigEmptySet(sigset_t* set);

        [LibraryImport(Libraries.Libc, EntryPoint = "sigaddset", SetLastError = true)]
        internal static unsafe partial int SigAddSet(sigset_t* set, int signum);

        [LibraryImport(Libraries.Libc, EntryPoint = "sigdelset", SetLastError = true)]
        internal static unsafe partial int SigDelSet(sigset_t* set, int signum);
    }
}

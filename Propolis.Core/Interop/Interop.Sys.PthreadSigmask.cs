using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>Returns 0 or an error number (it does not set errno).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "pthread_sigmask")]
        internal static unsafe partial int PthreadSigmask(int how, sigset_t* set, sigset_t* oldset);
    }
}

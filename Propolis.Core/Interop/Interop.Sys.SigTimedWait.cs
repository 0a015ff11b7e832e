using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>Dequeues one pending signal from <paramref name="set"/>; with a zero timeout,
        /// returns -1/EAGAIN at once if none is pending.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "sigtimedwait", SetLastError = true)]
        internal static unsafe partial int SigTimedWait(sigset_t* set, void* info, timespec* timeout);
    }
}

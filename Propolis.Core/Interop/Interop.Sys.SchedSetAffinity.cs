using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>sched_setaffinity(2): <paramref name="pid"/> 0 is the calling thread;
        /// <paramref name="mask"/> is a cpu_set_t of <paramref name="size"/> bytes.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "sched_setaffinity", SetLastError = true)]
        internal static unsafe partial int SchedSetAffinity(int pid, nuint size, ulong* mask);
    }
}

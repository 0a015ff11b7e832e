using System.Runtime.InteropServices;

namespace Propolis.Crucible.Dsc;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const int SIGKILL = 9;
        internal const int SIGTERM = 15;
        internal const int ESRCH = 3;

        /// <summary>kill(2); a negative pid signals that process group.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "kill", SetLastError = true)]
        internal static partial int Kill(int pid, int signal);
    }
}

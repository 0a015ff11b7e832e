using System.Runtime.InteropServices;

namespace Propolis.Crucible.Dsc;

internal static partial class Interop
{
    internal static unsafe partial class Sys
    {
        internal const int P_PID = 1;
        internal const int WEXITED = 4;
        internal const int WNOWAIT = 0x01000000;
        internal const int EINTR = 4;

        /// <summary>siginfo_t is 128 bytes on Linux.</summary>
        internal const int SigInfoSize = 128;
        /// <summary>Offsets in siginfo_t (x86-64): si_code, and for SIGCHLD si_pid and si_status.</summary>
        internal const int SigInfoCodeOffset = 8;
        internal const int SigInfoPidOffset = 16;
        internal const int SigInfoStatusOffset = 24;

        /// <summary>si_code values for SIGCHLD (asm-generic/siginfo.h).</summary>
        internal const int CLD_EXITED = 1;
        internal const int CLD_KILLED = 2;
        internal const int CLD_DUMPED = 3;

        /// <summary>waitid(2). Blocks: never called with the GC transition suppressed.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "waitid", SetLastError = true)]
        internal static partial int WaitId(int idType, int id, byte* info, int options);

        [LibraryImport(Libraries.Libc, EntryPoint = "waitpid", SetLastError = true)]
        internal static partial int WaitPid(int pid, int* status, int options);
    }
}

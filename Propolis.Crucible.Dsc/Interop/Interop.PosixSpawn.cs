using System.Runtime.InteropServices;

namespace Propolis.Crucible.Dsc;

internal static partial class Interop
{
    internal static unsafe partial class Sys
    {
        /// <summary>glibc x86-64: sizeof(posix_spawn_file_actions_t) is 80, sizeof(posix_spawnattr_t) 336; room to spare.</summary>
        internal const int SpawnFileActionsSize = 128;
        internal const int SpawnAttrSize = 512;
        /// <summary>sizeof(sigset_t) on Linux (1024 bits).</summary>
        internal const int SigSetSize = 128;

        internal const short POSIX_SPAWN_SETPGROUP = 0x02;
        internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
        internal const short POSIX_SPAWN_SETSIGMASK = 0x08;

        internal const int O_RDONLY = 0;

        // posix_spawn(3): returns an errno value, not -1.
        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn")]
        internal static partial int PosixSpawn(out int pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_init")]
        internal static partial int PosixSpawnFileActionsInit(void* fileActions);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_destroy")]
        internal static partial int PosixSpawnFileActionsDestroy(void* fileActions);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_adddup2")]
        internal static partial int PosixSpawnFileActionsAddDup2(void* fileActions, int fd, int newFd);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_addclose")]
        internal static partial int PosixSpawnFileActionsAddClose(void* fileActions, int fd);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_init")]
        internal static partial int PosixSpawnAttrInit(void* attr);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_destroy")]
        internal static partial int PosixSpawnAttrDestroy(void* attr);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setflags")]
        internal static partial int PosixSpawnAttrSetFlags(void* attr, short flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setpgroup")]
        internal static partial int PosixSpawnAttrSetPGroup(void* attr, int pgroup);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigmask")]
        internal static partial int PosixSpawnAttrSetSigMask(void* attr, void* sigset);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigdefault")]
        internal static partial int PosixSpawnAttrSetSigDefault(void* attr, void* sigset);

        [LibraryImport(Libraries.Libc, EntryPoint = "sigemptyset", SetLastError = true)]
        internal static partial int SigEmptySet(void* set);

        [LibraryImport(Libraries.Libc, EntryPoint = "sigaddset", SetLastError = true)]
        internal static partial int SigAddSet(void* set, int signal);

        internal const int SIGPIPE = 13;
    }
}

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006 // names mirror the C headers

internal static partial class Interop
{
    internal static partial class Sys
    {
        // <fcntl.h>
        internal const int O_RDWR = 0x2;
        internal const int O_CLOEXEC = 0x80000;

        // <sys/mman.h>
        internal const int PROT_NONE = 0x0;
        internal const int PROT_READ = 0x1;
        internal const int PROT_WRITE = 0x2;
        internal const int MAP_SHARED = 0x01;
        internal const int MAP_PRIVATE = 0x02;
        internal const int MAP_ANONYMOUS = 0x20;
        internal const int MAP_NORESERVE = 0x4000;
        internal const int MADV_DONTNEED = 4;
        internal const int MADV_MERGEABLE = 12;
        internal const int MADV_HUGEPAGE = 14;
        internal const int MADV_DONTDUMP = 16;

        // <sys/eventfd.h>
        internal const int EFD_SEMAPHORE = 0x1;
        internal const int EFD_CLOEXEC = 0x80000;
        internal const int EFD_NONBLOCK = 0x800;

        // <signal.h>
        internal const int SIG_BLOCK = 0;
        internal const int SIG_UNBLOCK = 1;
        internal const int SIG_SETMASK = 2;
    }
}

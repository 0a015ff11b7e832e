using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>fallocate(2) with a <c>BlockIo.FALLOC_FL_*</c> mode; -1 and errno (EOPNOTSUPP if
        /// the file system lacks the mode) on failure.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "fallocate", SetLastError = true)]
        internal static partial int Fallocate(SafeFdHandle fd, int mode, long offset, long len);
    }
}

using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>fstat(2) (an exported symbol since glibc 2.33).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "fstat", SetLastError = true)]
        internal static partial int Fstat(SafeFdHandle fd, out BlockIo.Stat buf);
    }
}

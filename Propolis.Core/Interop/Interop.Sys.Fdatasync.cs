using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>fdatasync(2): blocks until the device has the data, so the GC transition stays.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "fdatasync", SetLastError = true)]
        internal static partial int Fdatasync(SafeFdHandle fd);
    }
}

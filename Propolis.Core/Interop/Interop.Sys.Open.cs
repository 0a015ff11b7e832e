using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeFdHandle Open(string path, int flags, int mode);
    }
}

using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        // open(2) returns a C int. The returned handle is wrapped at once; a SafeHandle return
        // type would be marshalled from a pointer-sized register whose upper half an int-returning
        // function leaves undefined (so -1 would not read as -1).
        [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int OpenRaw(string path, int flags, int mode);

        /// <summary>An invalid handle (check <see cref="SafeFdHandle.IsInvalid"/>, then <see cref="LastErrno"/>) on failure.</summary>
        internal static SafeFdHandle Open(string path, int flags, int mode) => new(OpenRaw(path, flags, mode), ownsHandle: true);
    }
}

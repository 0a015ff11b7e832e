using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "eventfd", SetLastError = true)]
        private static partial int EventFdRaw(uint initval, int flags);

        /// <summary>An invalid handle on failure (see <see cref="Open"/> for why the int is wrapped here).</summary>
        internal static SafeFdHandle EventFd(uint initval, int flags) => new(EventFdRaw(initval, flags), ownsHandle: true);
    }
}

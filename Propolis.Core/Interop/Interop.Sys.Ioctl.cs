using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static partial class Sys
    {
        // ioctl(2) is variadic in C; on x86-64 SysV a variadic callee with only integer
        // arguments reads them from the same registers as a fixed-argument call.
        // No SuppressGCTransition: KVM_RUN blocks for as long as the guest runs.
        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static unsafe partial int Ioctl(SafeFdHandle fd, nuint request, void* arg);

        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int Ioctl(SafeFdHandle fd, nuint request, nint arg);

        /// <summary>An ioctl whose result is a new descriptor (KVM_CREATE_VM, KVM_CREATE_VCPU);
        /// an invalid handle on failure (see <see cref="Open"/> for why the int is wrapped here).</summary>
        internal static SafeFdHandle IoctlFd(SafeFdHandle fd, nuint request, nint arg) => new(Ioctl(fd, request, arg), ownsHandle: true);
    }
}

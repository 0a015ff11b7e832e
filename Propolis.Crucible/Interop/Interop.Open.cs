using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>open(2) flags used here (Linux asm-generic/fcntl.h; the same on x86-64 and arm64).</summary>
        [Flags]
        internal enum OpenFlags
        {
            O_RDONLY = 0x0000,
            O_CLOEXEC = 0x8_0000,
        }

        /// <summary>open(2), for the directories whose entries we make durable with fsync.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true,
            StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeFileHandle Open(string path, OpenFlags flags);
    }
}

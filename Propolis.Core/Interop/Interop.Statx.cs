using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>statx(2) "dirfd": resolve relative paths against the working directory.</summary>
        internal const int AT_FDCWD = -100;

        /// <summary>statx(2) flag: describe a symbolic link itself, not its target.</summary>
        internal const int AT_SYMLINK_NOFOLLOW = 0x100;

        /// <summary>statx(2) mask bit: want stx_mode's file type bits.</summary>
        internal const uint STATX_TYPE = 0x0001;

        /// <summary>&lt;linux/stat.h&gt;: file type mask and the socket type.</summary>
        internal const ushort S_IFMT = 0xF000;
        internal const ushort S_IFSOCK = 0xC000;

        internal const int ENOENT = 2;

        /// <summary>The leading fields of <c>struct statx</c> (&lt;linux/stat.h&gt;), whose layout is
        /// the same on every architecture; the kernel fills all 256 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 256)]
        internal struct StatX
        {
            [FieldOffset(0)] public uint Mask;
            [FieldOffset(28)] public ushort Mode;
        }

        [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Statx(int dirfd, string pathname, int flags, uint mask, out StatX statxbuf);
    }
}

using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006 // names mirror the C headers

internal static partial class Interop
{
    /// <summary>statx(2), for the one question .NET cannot answer: is this path a socket?
    /// Kept apart from <c>Interop.Sys</c> so its constants, which need &lt;linux/stat.h&gt;, are
    /// pinned by their own layout test (FileStatLayoutTests).</summary>
    internal static partial class FileStat
    {
        // <fcntl.h>
        /// <summary>statx(2) dirfd: resolve a relative path against the working directory.</summary>
        internal const int AT_FDCWD = -100;
        /// <summary>statx(2) flag: describe a symbolic link itself, not its target.</summary>
        internal const int AT_SYMLINK_NOFOLLOW = 0x100;

        // <linux/stat.h>
        /// <summary>statx(2) mask bit: stx_mode's file type bits are wanted.</summary>
        internal const uint STATX_TYPE = 0x0001;
        internal const ushort S_IFMT = 0xF000;
        internal const ushort S_IFSOCK = 0xC000;

        /// <summary>The leading fields of <c>struct statx</c> (&lt;linux/stat.h&gt;), whose layout is
        /// the same on every architecture; the kernel fills all 256 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 256)]
        internal struct StatX
        {
            [FieldOffset(0)] public uint Mask;
            [FieldOffset(28)] public ushort Mode;
        }

        // "libc" is Interop.Libraries.Libc on the kvm branch.
        [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Statx(int dirfd, string pathname, int flags, uint mask, out StatX statxbuf);

        /// <summary>The file type bits (<see cref="S_IFMT"/>) of <paramref name="path"/> without
        /// following a final symbolic link, or <see langword="null"/> if nothing is there.</summary>
        /// <exception cref="IOException">statx failed for another reason than ENOENT.</exception>
        internal static ushort? FileType(string path)
        {
            if (Statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, out var status) == 0)
                return (ushort)(status.Mode & S_IFMT);
            int errno = Marshal.GetLastPInvokeError();
            if (errno == 2 /* ENOENT */)
                return null;
            throw new IOException($"statx '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }
}

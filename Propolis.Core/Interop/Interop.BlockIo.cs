using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006 // names mirror the C headers

internal static partial class Interop
{
    /// <summary>Constants and structs of the block backends' system calls. Kept apart from
    /// <c>Interop.Sys</c> because they need &lt;linux/falloc.h&gt; and &lt;linux/fs.h&gt;; pinned by
    /// their own layout test (Block/BlockIoLayoutTests).</summary>
    internal static class BlockIo
    {
        // <fcntl.h>
        internal const int O_RDONLY = 0x0;

        // <errno.h>: the open(2) errors that mean "not writable, try read-only".
        internal const int EROFS = 30;

        // <linux/falloc.h>
        internal const int FALLOC_FL_KEEP_SIZE = 0x01;
        internal const int FALLOC_FL_PUNCH_HOLE = 0x02;
        internal const int FALLOC_FL_ZERO_RANGE = 0x10;

        // <linux/fs.h>: _IOR(0x12, 114, size_t), the device size in bytes.
        internal const uint BLKGETSIZE64 = 0x80081272;

        // <sys/stat.h>
        internal const uint S_IFMT = 0xF000;
        internal const uint S_IFREG = 0x8000;
        internal const uint S_IFBLK = 0x6000;

        // <limits.h>: most iovecs one preadv/pwritev takes.
        internal const int IOV_MAX = 1024;

        /// <summary>struct iovec (&lt;sys/uio.h&gt;).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Iovec
        {
            public nint Base;
            public nuint Length;
        }

        /// <summary>The fields of x86-64 struct stat (&lt;bits/struct_stat.h&gt;) the backends read.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 144)]
        internal struct Stat
        {
            [FieldOffset(24)] public uint Mode;
            [FieldOffset(48)] public long Size;
            [FieldOffset(56)] public long BlockSize;
            [FieldOffset(64)] public long Blocks;
        }
    }
}

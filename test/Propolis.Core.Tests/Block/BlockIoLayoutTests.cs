using System.Globalization;
using System.Runtime.InteropServices;
using Propolis.Core.Tests.InteropTests;
using BlockIo = Propolis.Core.Interop.Interop.BlockIo;

namespace Propolis.Core.Tests.Block;

/// <summary>Pins <c>Interop.BlockIo</c> (struct iovec, struct stat and the fallocate, ioctl and
/// open constants) against the C headers by compiling a program with gcc.</summary>
public class BlockIoLayoutTests
{
    [Fact]
    public void Structs_and_constants_match_the_headers()
    {
        var expected = new (string Expression, long Value)[]
        {
            ("sizeof(struct iovec)", Marshal.SizeOf<BlockIo.Iovec>()),
            ("offsetof(struct iovec, iov_base)", (long)Marshal.OffsetOf<BlockIo.Iovec>(nameof(BlockIo.Iovec.Base))),
            ("offsetof(struct iovec, iov_len)", (long)Marshal.OffsetOf<BlockIo.Iovec>(nameof(BlockIo.Iovec.Length))),
            ("sizeof(struct stat)", Marshal.SizeOf<BlockIo.Stat>()),
            ("offsetof(struct stat, st_mode)", (long)Marshal.OffsetOf<BlockIo.Stat>(nameof(BlockIo.Stat.Mode))),
            ("sizeof(((struct stat*)0)->st_mode)", sizeof(uint)),
            ("offsetof(struct stat, st_size)", (long)Marshal.OffsetOf<BlockIo.Stat>(nameof(BlockIo.Stat.Size))),
            ("sizeof(((struct stat*)0)->st_size)", sizeof(long)),
            ("offsetof(struct stat, st_blksize)", (long)Marshal.OffsetOf<BlockIo.Stat>(nameof(BlockIo.Stat.BlockSize))),
            ("offsetof(struct stat, st_blocks)", (long)Marshal.OffsetOf<BlockIo.Stat>(nameof(BlockIo.Stat.Blocks))),
            ("sizeof(((struct stat*)0)->st_blocks)", sizeof(long)),
            ("O_RDONLY", BlockIo.O_RDONLY),
            ("EROFS", BlockIo.EROFS),
            ("FALLOC_FL_KEEP_SIZE", BlockIo.FALLOC_FL_KEEP_SIZE),
            ("FALLOC_FL_PUNCH_HOLE", BlockIo.FALLOC_FL_PUNCH_HOLE),
            ("FALLOC_FL_ZERO_RANGE", BlockIo.FALLOC_FL_ZERO_RANGE),
            ("BLKGETSIZE64", BlockIo.BLKGETSIZE64),
            ("S_IFMT", BlockIo.S_IFMT),
            ("S_IFREG", BlockIo.S_IFREG),
            ("S_IFBLK", BlockIo.S_IFBLK),
            ("IOV_MAX", BlockIo.IOV_MAX),
        };
        var source = "#define _GNU_SOURCE\n#include <stdio.h>\n#include <stddef.h>\n#include <errno.h>\n#include <fcntl.h>\n#include <limits.h>\n"
            + "#include <sys/stat.h>\n#include <sys/uio.h>\n#include <linux/falloc.h>\n#include <linux/fs.h>\nint main(void) {\n"
            + string.Concat(expected.Select(e => $"printf(\"%lld\\n\", (long long)({e.Expression}));\n"))
            + "return 0;\n}\n";

        var lines = CProgram.CompileAndRun(source, "the block I/O interop structs and constants against the C headers");

        Assert.Equal(expected.Length, lines.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(expected[i].Value == long.Parse(lines[i], CultureInfo.InvariantCulture), $"{expected[i].Expression}: managed {expected[i].Value}, C {lines[i]}");
        }
    }
}

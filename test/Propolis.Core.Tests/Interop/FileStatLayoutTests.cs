using System.Globalization;
using System.Runtime.InteropServices;
using FileStat = Propolis.Core.Interop.Interop.FileStat;

namespace Propolis.Core.Tests.InteropTests;

/// <summary>Pins <c>Interop.FileStat</c> (struct statx and its constants) against the C headers:
/// a generated C program is compiled with gcc and its output compared with the managed values.</summary>
public class FileStatLayoutTests
{
    [Fact]
    public void Statx_struct_and_constants_match_the_headers()
    {
        var expected = new (string Expression, long Value)[]
        {
            ("sizeof(struct statx)", Marshal.SizeOf<FileStat.StatX>()),
            ("offsetof(struct statx, stx_mask)", (long)Marshal.OffsetOf<FileStat.StatX>(nameof(FileStat.StatX.Mask))),
            ("offsetof(struct statx, stx_mode)", (long)Marshal.OffsetOf<FileStat.StatX>(nameof(FileStat.StatX.Mode))),
            ("sizeof(((struct statx*)0)->stx_mode)", sizeof(ushort)),
            ("AT_FDCWD", FileStat.AT_FDCWD),
            ("AT_SYMLINK_NOFOLLOW", FileStat.AT_SYMLINK_NOFOLLOW),
            ("STATX_TYPE", FileStat.STATX_TYPE),
            ("S_IFMT", FileStat.S_IFMT),
            ("S_IFSOCK", FileStat.S_IFSOCK),
        };
        string source = "#include <stdio.h>\n#include <stddef.h>\n#include <fcntl.h>\n#include <sys/stat.h>\n#include <linux/stat.h>\nint main(void) {\n"
            + string.Concat(expected.Select(e => $"printf(\"%lld\\n\", (long long)({e.Expression}));\n"))
            + "return 0;\n}\n";

        string[] lines = CProgram.CompileAndRun(source, "the statx interop struct against <linux/stat.h>");

        Assert.Equal(expected.Length, lines.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i].Value == long.Parse(lines[i], CultureInfo.InvariantCulture), $"{expected[i].Expression}: managed {expected[i].Value}, C {lines[i]}");
    }

    [Fact]
    public void FileType_tells_sockets_files_and_absent_paths_apart()
    {
        var dir = Directory.CreateTempSubdirectory("propolis-statx-");
        try
        {
            string file = Path.Combine(dir.FullName, "file");
            File.WriteAllText(file, "x");
            Assert.Equal((ushort)0x8000 /* S_IFREG */, FileStat.FileType(file));
            Assert.Equal((ushort)0x4000 /* S_IFDIR */, FileStat.FileType(dir.FullName));
            Assert.Null(FileStat.FileType(Path.Combine(dir.FullName, "absent")));
            string socketPath = Path.Combine(dir.FullName, "sock");
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
            Assert.Equal(FileStat.S_IFSOCK, FileStat.FileType(socketPath));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

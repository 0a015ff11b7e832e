using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Interop;
using Sys = Propolis.Core.Interop.Interop.Sys;
using BlockIo = Propolis.Core.Interop.Interop.BlockIo;

namespace Propolis.Core.Block;

/// <summary>A disk image file or host block device (propolis block::FileBackend). Reads and writes
/// go straight between the file and guest memory with preadv/pwritev on the worker threads.</summary>
public sealed unsafe partial class FileBackend : BlockBackend
{
    /// <summary>Bytes of zeroes written per call when WriteZeroes falls back to writing.</summary>
    private const int ZeroChunk = 64 * 1024;

    private static readonly byte[] s_zeroes = GC.AllocateArray<byte>(ZeroChunk, pinned: true);

    private readonly SafeFdHandle _fd;
    private readonly BlockIo.Iovec*[] _iovecs;
    private readonly int _iovecCapacity;
    private volatile bool _punchHoleUnsupported;
    private volatile bool _zeroRangeUnsupported;
    private int _freed;

    private FileBackend(string path, SafeFdHandle fd, BlockDeviceInfo info, BlockBackendOptions options, ILogger? logger)
        : base("file", info, options, logger)
    {
        Path = path;
        _fd = fd;
        _iovecCapacity = BlockIo.IOV_MAX;
        _iovecs = new BlockIo.Iovec*[info.Workers];
        for (var i = 0; i < _iovecs.Length; i++)
        {
            _iovecs[i] = (BlockIo.Iovec*)NativeMemory.Alloc((nuint)_iovecCapacity, (nuint)sizeof(BlockIo.Iovec));
        }
    }

    public string Path { get; }

    /// <summary>Set once fallocate(FALLOC_FL_ZERO_RANGE) has failed with EOPNOTSUPP: WriteZeroes then
    /// writes zeroes. Tests set it to exercise that path on file systems that have ZERO_RANGE.</summary>
    internal bool ZeroRangeUnsupported
    {
        get => _zeroRangeUnsupported;
        set => _zeroRangeUnsupported = value;
    }

    /// <summary>Opens <paramref name="path"/>, read-write unless <see cref="BlockBackendOptions.ReadOnly"/>
    /// is set or the file cannot be opened for writing, in which case it is read-only and the log says so.
    /// The size comes from fstat for a regular file and BLKGETSIZE64 for a block device, rounded down to
    /// whole blocks.</summary>
    /// <exception cref="BlockBackendException">The file cannot be opened, is neither a regular file nor a
    /// block device, or is smaller than one block.</exception>
    public static FileBackend Open(string path, BlockBackendOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        logger ??= NullLogger.Instance;

        var readOnly = options.ReadOnly;
        var fd = Sys.Open(path, (readOnly ? BlockIo.O_RDONLY : Sys.O_RDWR) | Sys.O_CLOEXEC, 0);
        if (fd.IsInvalid && !readOnly && Interop.Interop.LastErrno is (int)Errno.EACCES or (int)Errno.EPERM or BlockIo.EROFS)
        {
            var writeErrno = Interop.Interop.LastErrno;
            fd.Dispose();
            fd = Sys.Open(path, BlockIo.O_RDONLY | Sys.O_CLOEXEC, 0);
            if (!fd.IsInvalid)
            {
                readOnly = true;
                LogOpenedReadOnly(logger, path, Marshal.GetPInvokeErrorMessage(writeErrno));
            }
        }
        if (fd.IsInvalid)
        {
            var errno = Interop.Interop.LastErrno;
            fd.Dispose();
            throw new BlockBackendException($"cannot open disk image '{path}': {Marshal.GetPInvokeErrorMessage(errno)}; check the path and its permissions",
                new ErrnoException("open", errno));
        }
        try
        {
            var size = SizeOf(path, fd);
            var blockSize = options.BlockSize;
            var blocks = size / blockSize;
            if (blocks == 0)
            {
                throw new BlockBackendException($"disk image '{path}' is {size} bytes, smaller than one {blockSize}-byte block; grow it (truncate -s) or pick another file");
            }
            if (size % blockSize != 0)
            {
                LogSizeRounded(logger, path, size, blockSize, size % blockSize);
            }
            var info = new BlockDeviceInfo(blockSize, blocks, readOnly, SupportsDiscard: !readOnly, SupportsFlush: true,
                SupportsWriteZeroes: !readOnly, options.Workers);
            return new FileBackend(path, fd, info, options, logger);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    private static ulong SizeOf(string path, SafeFdHandle fd)
    {
        if (Sys.Fstat(fd, out var st) != 0)
        {
            var errno = Interop.Interop.LastErrno;
            throw new BlockBackendException($"cannot stat disk image '{path}': {Marshal.GetPInvokeErrorMessage(errno)}", new ErrnoException("fstat", errno));
        }
        switch (st.Mode & BlockIo.S_IFMT)
        {
            case BlockIo.S_IFREG:
                return (ulong)st.Size;
            case BlockIo.S_IFBLK:
                ulong bytes;
                if (Sys.Ioctl(fd, BlockIo.BLKGETSIZE64, &bytes) != 0)
                {
                    var errno = Interop.Interop.LastErrno;
                    throw new BlockBackendException($"cannot read the size of block device '{path}': {Marshal.GetPInvokeErrorMessage(errno)}",
                        new ErrnoException("BLKGETSIZE64", errno));
                }
                return bytes;
            default:
                throw new BlockBackendException($"disk image '{path}' is neither a regular file nor a block device");
        }
    }

    protected override BlockResult Execute(BlockRequest request, int worker) => request.Operation switch
    {
        BlockOperation.Read => Transfer(request, _iovecs[worker], write: false),
        BlockOperation.Write => Transfer(request, _iovecs[worker], write: true),
        BlockOperation.Flush => FlushStore(),
        BlockOperation.Discard => Discard(request.Offset, request.Length),
        BlockOperation.WriteZeroes => WriteZeroes(request.Offset, request.Length),
        _ => BlockResult.Unsupported,
    };

    protected override BlockResult FlushStore()
    {
        while (Sys.Fdatasync(_fd) != 0)
        {
            var errno = Interop.Interop.LastErrno;
            if (errno != (int)Errno.EINTR)
            {
                return IoFailed("fdatasync", errno);
            }
        }
        return BlockResult.Success;
    }

    /// <summary>Moves the request's bytes between the file and guest memory: as many segments as fit
    /// in one iovec array per call, a short transfer continued from where it stopped, EINTR retried.</summary>
    private BlockResult Transfer(BlockRequest request, BlockIo.Iovec* iov, bool write)
    {
        var segments = request.Segments;
        var memory = request.Memory;
        var position = request.Offset;
        var index = 0;
        ulong done = 0; // bytes of segments[index] already transferred
        while (true)
        {
            // Skip empty and finished segments.
            while (index < segments.Length && done == segments[index].Length)
            {
                index++;
                done = 0;
            }
            if (index == segments.Length)
            {
                return BlockResult.Success;
            }

            var count = 0;
            for (var i = index; i < segments.Length && count < _iovecCapacity; i++)
            {
                var segment = segments[i];
                var skip = i == index ? done : 0;
                if (segment.Length == skip)
                {
                    continue;
                }
                if (!memory.TryTranslate(segment.Address, segment.Length, out var host))
                {
                    return BlockResult.IoError;
                }
                iov[count].Base = host + (nint)skip;
                iov[count].Length = (nuint)(segment.Length - skip);
                count++;
            }

            nint n;
            do
            {
                n = write ? Sys.Pwritev(_fd, iov, count, (long)position) : Sys.Preadv(_fd, iov, count, (long)position);
            }
            while (n < 0 && Interop.Interop.LastErrno == (int)Errno.EINTR);
            if (n < 0)
            {
                return IoFailed(write ? "pwritev" : "preadv", Interop.Interop.LastErrno);
            }
            if (n == 0)
            {
                // The file shrank under us (or a device returned nothing): the range no longer exists.
                return IoFailed(write ? "pwritev (no progress)" : "preadv (end of file)", (int)Errno.EIO);
            }
            position += (ulong)n;
            var left = (ulong)n;
            while (left > 0)
            {
                var remaining = segments[index].Length - done;
                if (left < remaining)
                {
                    done += left;
                    break;
                }
                left -= remaining;
                index++;
                done = 0;
            }
        }
    }

    private BlockResult Discard(ulong offset, ulong length)
    {
        if (length == 0)
        {
            return BlockResult.Success;
        }
        if (_punchHoleUnsupported)
        {
            return BlockResult.Unsupported;
        }
        var result = Fallocate(BlockIo.FALLOC_FL_PUNCH_HOLE | BlockIo.FALLOC_FL_KEEP_SIZE, offset, length, out var errno);
        if (result == 0)
        {
            return BlockResult.Success;
        }
        if (errno == (int)Errno.EOPNOTSUPP)
        {
            if (!_punchHoleUnsupported)
            {
                _punchHoleUnsupported = true;
                LogPunchHoleUnsupported(Logger, Path);
            }
            return BlockResult.Unsupported;
        }
        return IoFailed("fallocate(PUNCH_HOLE)", errno);
    }

    private BlockResult WriteZeroes(ulong offset, ulong length)
    {
        if (length == 0)
        {
            return BlockResult.Success;
        }
        if (!_zeroRangeUnsupported)
        {
            if (Fallocate(BlockIo.FALLOC_FL_ZERO_RANGE | BlockIo.FALLOC_FL_KEEP_SIZE, offset, length, out var errno) == 0)
            {
                return BlockResult.Success;
            }
            if (errno != (int)Errno.EOPNOTSUPP)
            {
                return IoFailed("fallocate(ZERO_RANGE)", errno);
            }
            _zeroRangeUnsupported = true;
        }
        fixed (byte* zeroes = s_zeroes)
        {
            while (length > 0)
            {
                var chunk = (nuint)Math.Min(length, (ulong)ZeroChunk);
                nint n;
                do
                {
                    n = Sys.Pwrite(_fd, zeroes, chunk, (long)offset);
                }
                while (n < 0 && Interop.Interop.LastErrno == (int)Errno.EINTR);
                if (n <= 0)
                {
                    return IoFailed("pwrite (zeroes)", n < 0 ? Interop.Interop.LastErrno : (int)Errno.EIO);
                }
                offset += (ulong)n;
                length -= (ulong)n;
            }
        }
        return BlockResult.Success;
    }

    private int Fallocate(int mode, ulong offset, ulong length, out int errno)
    {
        int result;
        do
        {
            result = Sys.Fallocate(_fd, mode, (long)offset, (long)length);
            errno = result == 0 ? 0 : Interop.Interop.LastErrno;
        }
        while (result != 0 && errno == (int)Errno.EINTR);
        return result;
    }

    protected override void DisposeStore()
    {
        _fd.Dispose();
        if (Interlocked.Exchange(ref _freed, 1) == 0)
        {
            foreach (var iov in _iovecs)
            {
                NativeMemory.Free(iov);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Disk image {Path} is not writable ({Reason}); it is attached read-only")]
    private static partial void LogOpenedReadOnly(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Disk image {Path} is {Size} bytes, not a multiple of the {BlockSize}-byte block size; the last {Tail} bytes are not visible to the guest")]
    private static partial void LogSizeRounded(ILogger logger, string path, ulong size, uint blockSize, ulong tail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Disk image {Path}: the file system cannot punch holes; discard requests complete as unsupported")]
    private static partial void LogPunchHoleUnsupported(ILogger logger, string path);
}

using Microsoft.Extensions.Logging;
using Propolis.Core.Interop;
using Sys = Propolis.Core.Interop.Interop.Sys;

namespace Propolis.Core.Block;

/// <summary>A disk held in anonymous host memory (propolis block::MemAsyncBackend and
/// InMemoryBackend), served by worker threads like a file. Created empty (mem-async, crucible-mem)
/// or with contents (cloudinit). Its data does not outlive the process, so Flush has nothing to do.</summary>
public sealed unsafe class MemoryBackend : BlockBackend
{
    public const string MemAsyncKind = "mem-async";

    /// <summary>propolis's crucible-mem is an in-memory Crucible volume; here it is this backend under that name.</summary>
    public const string CrucibleMemKind = "crucible-mem";

    private nint _mapping;
    private readonly ulong _mappingSize;

    private MemoryBackend(string kind, nint mapping, ulong mappingSize, BlockDeviceInfo info, BlockBackendOptions options, ILogger? logger)
        : base(kind, info, options, logger)
    {
        _mapping = mapping;
        _mappingSize = mappingSize;
    }

    /// <summary>A zero-filled disk of <paramref name="size"/> bytes, which must be a non-zero
    /// multiple of the block size. Pages are taken from the host as they are written.</summary>
    public static MemoryBackend Create(string kind, ulong size, BlockBackendOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (size == 0 || size % options.BlockSize != 0)
        {
            throw new BlockBackendException($"{kind} disk size {size} is not a non-zero multiple of the {options.BlockSize}-byte block size");
        }
        var mapping = Map(kind, size);
        var info = new BlockDeviceInfo(options.BlockSize, size / options.BlockSize, options.ReadOnly,
            SupportsDiscard: true, SupportsFlush: false, SupportsWriteZeroes: true, options.Workers);
        return new MemoryBackend(kind, mapping, size, info, options, logger);
    }

    /// <summary>A disk holding <paramref name="contents"/>, zero-padded to whole blocks.</summary>
    public static MemoryBackend FromContents(string kind, ReadOnlySpan<byte> contents, BlockBackendOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var blockSize = options.BlockSize;
        var size = ((ulong)contents.Length + blockSize - 1) / blockSize * blockSize;
        if (size == 0)
        {
            size = blockSize;
        }
        var mapping = Map(kind, size);
        contents.CopyTo(new Span<byte>((void*)mapping, contents.Length));
        var info = new BlockDeviceInfo(blockSize, size / blockSize, options.ReadOnly,
            SupportsDiscard: !options.ReadOnly, SupportsFlush: false, SupportsWriteZeroes: !options.ReadOnly, options.Workers);
        return new MemoryBackend(kind, mapping, size, info, options, logger);
    }

    private static nint Map(string kind, ulong size)
    {
        var mapping = Sys.Mmap(0, (nuint)size, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_PRIVATE | Sys.MAP_ANONYMOUS | Sys.MAP_NORESERVE, -1, 0);
        if (mapping == Sys.MAP_FAILED)
        {
            var errno = Interop.Interop.LastErrno;
            throw new BlockBackendException($"cannot reserve {size} bytes of host memory for a {kind} disk: "
                + $"{System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}; make the disk smaller",
                new ErrnoException("mmap", errno));
        }
        return mapping;
    }

    protected override BlockResult Execute(BlockRequest request, int worker)
    {
        var disk = (byte*)_mapping + request.Offset;
        switch (request.Operation)
        {
            case BlockOperation.Read:
            case BlockOperation.Write:
                var memory = request.Memory;
                foreach (var segment in request.Segments)
                {
                    if (segment.Length == 0)
                    {
                        continue;
                    }
                    if (!memory.TryTranslate(segment.Address, segment.Length, out var host))
                    {
                        return BlockResult.IoError;
                    }
                    if (request.Operation == BlockOperation.Read)
                    {
                        Buffer.MemoryCopy(disk, (void*)host, segment.Length, segment.Length);
                    }
                    else
                    {
                        Buffer.MemoryCopy((void*)host, disk, segment.Length, segment.Length);
                    }
                    disk += segment.Length;
                }
                return BlockResult.Success;
            case BlockOperation.Discard:
            case BlockOperation.WriteZeroes:
                Zero(request.Offset, request.Length);
                return BlockResult.Success;
            default:
                return BlockResult.Success;
        }
    }

    /// <summary>Whole pages go back to the host (MADV_DONTNEED: a private anonymous page then reads
    /// as zeroes); the partial pages at either end are cleared.</summary>
    private void Zero(ulong offset, ulong length)
    {
        const ulong page = 4096;
        var end = offset + length;
        var firstPage = (offset + page - 1) & ~(page - 1);
        var lastPage = end & ~(page - 1);
        if (firstPage < lastPage && Sys.Madvise(_mapping + (nint)firstPage, (nuint)(lastPage - firstPage), Sys.MADV_DONTNEED) == 0)
        {
            ClearRange(offset, firstPage - offset);
            ClearRange(lastPage, end - lastPage);
        }
        else
        {
            ClearRange(offset, length);
        }
    }

    private void ClearRange(ulong offset, ulong length) =>
        System.Runtime.InteropServices.NativeMemory.Clear((byte*)_mapping + offset, (nuint)length);

    protected override BlockResult FlushStore() => BlockResult.Success;

    protected override void DisposeStore()
    {
        var mapping = Interlocked.Exchange(ref _mapping, 0);
        if (mapping != 0)
        {
            _ = Sys.Munmap(mapping, (nuint)_mappingSize);
        }
    }
}

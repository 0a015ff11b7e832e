using Microsoft.Win32.SafeHandles;

namespace Propolis.Crucible.Regions;

/// <summary>
/// Positional file I/O for extents: <c>pread</c>/<c>pwrite</c> through <see cref="RandomAccess"/> (which
/// loops over short transfers), <c>fsync</c> through <see cref="Interop.Sys.FSync"/>. Every failure
/// becomes a <see cref="RegionException"/> of kind <see cref="RegionError.IoError"/> naming what was
/// being done.
/// </summary>
internal static class FileIo
{
    public static SafeFileHandle OpenExisting(string path, bool readOnly) =>
        Wrap(() => File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
            FileShare.ReadWrite), $"open of {path} failed");

    public static SafeFileHandle CreateNew(string path) =>
        Wrap(() => File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite),
            $"create of {path} failed");

    /// <summary>Reads exactly <c>buffer.Length</c> bytes at <paramref name="offset"/>.</summary>
    public static void ReadExact(SafeFileHandle file, Span<byte> buffer, ulong offset, string what)
    {
        while (!buffer.IsEmpty)
        {
            int n;
            try
            {
                n = RandomAccess.Read(file, buffer, checked((long)offset));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new RegionException(RegionError.IoError, $"{what}: {e.Message}", e);
            }
            if (n == 0)
            {
                throw new RegionException(RegionError.IoError,
                    $"{what}: incomplete read ({buffer.Length} bytes missing at offset {offset})");
            }
            buffer = buffer[n..];
            offset += (ulong)n;
        }
    }

    public static void WriteAll(SafeFileHandle file, ReadOnlySpan<byte> buffer, ulong offset, string what)
    {
        try
        {
            RandomAccess.Write(file, buffer, checked((long)offset));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegionException(RegionError.IoError, $"{what}: {e.Message}", e);
        }
    }

    public static void SetLength(SafeFileHandle file, ulong length, string what)
    {
        try
        {
            RandomAccess.SetLength(file, checked((long)length));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegionException(RegionError.IoError, $"{what}: {e.Message}", e);
        }
    }

    public static ulong Length(SafeFileHandle file, string what) =>
        (ulong)Wrap(() => RandomAccess.GetLength(file), what);

    /// <summary>fsync(2); an error is reported, never retried (a failed fsync may have lost data).</summary>
    public static void FSync(SafeFileHandle file, string what)
    {
        if (Interop.Sys.FSync(file) != 0)
        {
            var errno = Interop.Errno.Last();
            throw new RegionException(RegionError.IoError, $"{what}: fsync failed: {errno}");
        }
    }

    // Overloads for the block path: the message is built only on failure, so success allocates nothing.

    public static void ReadExact(SafeFileHandle file, Span<byte> buffer, ulong offset, uint extent, string what)
    {
        try
        {
            ReadExact(file, buffer, offset, what);
        }
        catch (RegionException e)
        {
            throw new RegionException(e.Error, $"extent {extent}: {e.Message}", e.InnerException);
        }
    }

    public static void WriteAll(SafeFileHandle file, ReadOnlySpan<byte> buffer, ulong offset, uint extent, string what)
    {
        try
        {
            WriteAll(file, buffer, offset, what);
        }
        catch (RegionException e)
        {
            throw new RegionException(e.Error, $"extent {extent}: {e.Message}", e.InnerException);
        }
    }

    public static void FSync(SafeFileHandle file, uint extent, string what)
    {
        if (Interop.Sys.FSync(file) != 0)
        {
            var errno = Interop.Errno.Last();
            throw new RegionException(RegionError.IoError, $"extent {extent}: {what}: fsync failed: {errno}");
        }
    }

    /// <summary><c>sync_path</c>: fsyncs a directory so that entries created or renamed in it persist.</summary>
    public static void SyncDirectory(string dir)
    {
        using SafeFileHandle handle = Interop.Sys.Open(dir, Interop.Sys.OpenFlags.O_RDONLY | Interop.Sys.OpenFlags.O_CLOEXEC);
        if (handle.IsInvalid)
        {
            var errno = Interop.Errno.Last();
            throw new RegionException(RegionError.IoError, $"{dir}: open for fsync failed: {errno}");
        }
        FSync(handle, dir);
    }

    private static T Wrap<T>(Func<T> f, string what)
    {
        try
        {
            return f();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegionException(RegionError.IoError, $"{what}: {e.Message}", e);
        }
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

internal static partial class Interop
{
    /// <summary>The errno of the last [LibraryImport(SetLastError = true)] call on this thread.</summary>
    internal static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>Turns a -1 result into an <see cref="ErrnoException"/>; the one place errno becomes an exception.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int CheckIo(int result, string operation)
    {
        if (result < 0)
        {
            ThrowErrno(operation, LastErrno);
        }
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long CheckIo(long result, string operation)
    {
        if (result < 0)
        {
            ThrowErrno(operation, LastErrno);
        }
        return result;
    }

    [DoesNotReturn]
    internal static void ThrowErrno(string operation, int errno) => throw new ErrnoException(operation, errno);
}

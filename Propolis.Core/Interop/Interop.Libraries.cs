namespace Propolis.Core.Interop;

internal static partial class Interop
{
    internal static class Libraries
    {
        /// <summary>glibc: every syscall wrapper this library uses lives in it.</summary>
        internal const string Libc = "libc";
    }
}

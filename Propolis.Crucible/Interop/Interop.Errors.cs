using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>An errno value, captured once at the syscall boundary.</summary>
    internal readonly record struct Errno(int Value)
    {
        /// <summary>The errno of the last P/Invoke on this thread (requires SetLastError = true).</summary>
        internal static Errno Last() => new(Marshal.GetLastPInvokeError());

        /// <summary>strerror(3) text, e.g. "No space left on device".</summary>
        internal string Message => Marshal.GetPInvokeErrorMessage(Value);

        public override string ToString() => $"{Message} (errno {Value})";
    }
}

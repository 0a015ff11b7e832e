namespace Propolis.Core.Interop;

/// <summary>The Linux (x86-64) errno values this library acts on. Values are pinned against
/// &lt;errno.h&gt; by the struct-layout test.</summary>
public enum Errno
{
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    EINVAL = 22,
    EMFILE = 24,
    ENOSPC = 28,
    ENOSYS = 38,
    EOPNOTSUPP = 95,
}

/// <summary>A system call failed. Thrown once, at the interop boundary, by
/// <c>Interop.CheckIo</c>; callers that can say something more useful catch it and wrap it.</summary>
public sealed class ErrnoException : IOException
{
    public ErrnoException(string operation, int errno)
        : base($"{operation} failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} ({NameOf(errno)})")
    {
        Operation = operation;
        Errno = (Errno)errno;
        HResult = errno;
    }

    /// <summary>The call that failed, named as in the kernel ABI (for example <c>KVM_CREATE_VM</c>).</summary>
    public string Operation { get; }

    public Errno Errno { get; }

    private static string NameOf(int errno) =>
        Enum.IsDefined((Errno)errno) ? ((Errno)errno).ToString() : "errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

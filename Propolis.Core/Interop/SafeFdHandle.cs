using Microsoft.Win32.SafeHandles;

namespace Propolis.Core.Interop;

/// <summary>An owned Linux file descriptor (a /dev/kvm, VM, vCPU or eventfd descriptor).
/// Created by the interop layer before the syscall that fills it, so a descriptor is never leaked.</summary>
public sealed class SafeFdHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeFdHandle() : base(ownsHandle: true)
    {
    }

    internal SafeFdHandle(int fd, bool ownsHandle) : base(ownsHandle)
    {
        SetHandle(fd);
    }

    /// <summary>The raw descriptor number. Valid only while the handle is alive.</summary>
    public int Fd => (int)handle;

    // 0 is a valid descriptor; only -1 means "none".
    public override bool IsInvalid => handle == -1;

    protected override bool ReleaseHandle() => Interop.Sys.Close((int)handle) == 0;
}

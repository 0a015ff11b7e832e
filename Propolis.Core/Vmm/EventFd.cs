using Propolis.Core.Interop;

namespace Propolis.Core.Vmm;

/// <summary>A Linux eventfd: a 64-bit counter a device signals and the hypervisor consumes
/// (irqfd), or the hypervisor signals and a device thread consumes (ioeventfd).</summary>
public sealed unsafe class EventFd : IDisposable
{
    private EventFd(SafeFdHandle handle) => Handle = handle;

    public SafeFdHandle Handle { get; }

    /// <summary>A non-blocking, close-on-exec eventfd with counter 0.</summary>
    public static EventFd Create()
    {
        var handle = Interop.Interop.Sys.EventFd(0, Interop.Interop.Sys.EFD_CLOEXEC | Interop.Interop.Sys.EFD_NONBLOCK);
        if (handle.IsInvalid)
        {
            var errno = Interop.Interop.LastErrno;
            handle.Dispose();
            Interop.Interop.ThrowErrno("eventfd", errno);
        }
        return new EventFd(handle);
    }

    /// <summary>Adds 1 to the counter. Allocation-free; callable from any thread.</summary>
    public bool Signal()
    {
        ulong one = 1;
        return Interop.Interop.Sys.Write(Handle, &one, sizeof(ulong)) == sizeof(ulong);
    }

    /// <summary>Reads and resets the counter; false (and 0) if it was zero.</summary>
    public bool TryConsume(out ulong count)
    {
        ulong value;
        if (Interop.Interop.Sys.Read(Handle, &value, sizeof(ulong)) == sizeof(ulong))
        {
            count = value;
            return true;
        }
        count = 0;
        return false;
    }

    public void Dispose() => Handle.Dispose();
}

using System.Runtime.InteropServices;

namespace Propolis.Core.Interop;

#pragma warning disable IDE1006, CS8981 // names mirror the C ABI

/// <summary>glibc's sigset_t (1024 bits).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sigset_t
{
    public fixed ulong __val[16];
}

[StructLayout(LayoutKind.Sequential)]
internal struct timespec
{
    public long tv_sec;
    public long tv_nsec;
}

/// <summary>struct pollfd (poll(2)).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct pollfd
{
    public int fd;
    public short events;
    public short revents;
}

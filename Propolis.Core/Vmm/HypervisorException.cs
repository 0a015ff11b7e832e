namespace Propolis.Core.Vmm;

/// <summary>The hypervisor is unavailable or refused an operation. The message says what a
/// person can do about it; <see cref="Exception.InnerException"/> carries the errno.</summary>
public sealed class HypervisorException : Exception
{
    public HypervisorException(string message) : base(message) { }

    public HypervisorException(string message, Exception inner) : base(message, inner) { }
}

namespace Propolis.Core.Lifecycle;

/// <summary>The lifecycle hooks of an emulated device. The <see cref="Instance"/> drives every
/// device of a machine through them, in the order the devices were added (pause and halt in
/// the reverse order), always from one thread at a time.</summary>
/// <remarks>
/// States a device sees: created → <see cref="Start"/> → running ⇄ paused (<see cref="Pause"/>,
/// <see cref="Resume"/>) → <see cref="Halt"/>. <see cref="Reset"/> happens only while paused.
/// Every hook has an empty default: a device implements the ones it needs.
/// The semantics are those of propolis's <c>Lifecycle</c> trait (lib/propolis/src/lifecycle.rs).
/// </remarks>
public interface ILifecycle
{
    /// <summary>A short name for logs ("com1", "nvme0").</summary>
    string Name { get; }

    /// <summary>The machine is about to run for the first time: called once, before any vCPU
    /// enters the guest. Afterwards the device must be ready to work for the guest. A reboot does
    /// not start a device again: it sees pause → reset → resume instead.</summary>
    void Start() { }

    /// <summary>Stop producing work for other devices and backends (no new interrupts, no new
    /// backend requests), but accept and hold work that arrives meanwhile. Called only after
    /// every vCPU has left the guest, so the device may change state (guest memory included)
    /// that a running vCPU must not see. Returns when the device is paused.</summary>
    void Pause() { }

    /// <summary>Resume serving the guest after <see cref="Pause"/>. Called before any vCPU
    /// re-enters the guest, so state restored here is in place before the guest can look.
    /// When <see cref="Reset"/> came in between, every device and vCPU has been reset first.</summary>
    void Resume() { }

    /// <summary>Return to the state of a cold power-on (a guest reboot). Called only while
    /// paused; the whole machine is reset before anything resumes.</summary>
    void Reset() { }

    /// <summary>The instance is stopping and the device will be discarded: release host
    /// resources, stop backend work. Called only while paused (or never started); nothing else
    /// is called afterwards.</summary>
    void Halt() { }
}

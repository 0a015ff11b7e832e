using Propolis.Core.Buses;

namespace Propolis.Standalone.Machine;

/// <summary>The one function of the 8042 keyboard controller a guest needs when the machine has
/// no PS/2 controller: command 0xFE ("pulse output port bit 0", the CPU reset line) written to
/// the command port 0x64 resets the machine. This is how Linux reboots by default without ACPI
/// (<c>reboot=kbd</c>, arch/x86/kernel/reboot.c). Reads of the status port return 0xFF, what an
/// absent controller reads as, so the guest's i8042 driver finds no controller and
/// <c>kb_wait</c> gives up waiting and sends the reset anyway.</summary>
internal sealed class KeyboardControllerResetPort(Action reset) : IPortIoHandler
{
    public const ushort CommandPort = 0x64;
    public const byte PulseResetLine = 0xFE;

    public void PortRead(ushort offset, Span<byte> data) => data.Fill(0xFF);

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        if (data.Length >= 1 && data[0] == PulseResetLine)
            reset();
    }
}

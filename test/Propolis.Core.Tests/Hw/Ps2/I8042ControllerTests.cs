using Propolis.Core.Buses;
using Propolis.Core.Hw.Ps2;
using Propolis.Core.Tests.Hw.TestDoubles;

namespace Propolis.Core.Tests.Hw.Ps2;

public class I8042ControllerTests
{
    private readonly PortIoBus _pio = new();
    private readonly FakeIrqLine _irq1 = new(1);
    private readonly FakeMachineControl _control = new();
    private readonly I8042Controller _kbc;

    public I8042ControllerTests()
    {
        _kbc = new I8042Controller(_irq1, _control);
        _kbc.Attach(_pio.Register);
    }

    private byte In(ushort port)
    {
        Span<byte> b = stackalloc byte[1];
        _pio.Read(port, b);
        return b[0];
    }

    private void Command(byte c) => _pio.Write(0x64, [c]);
    private void Data(byte d) => _pio.Write(0x60, [d]);
    private bool OutputFull => (In(0x64) & 0x01) != 0;

    [Fact]
    public void SelfTestAnswers55AndSetsTheSystemFlag()
    {
        Assert.Equal(0, In(0x64) & 0x04);
        Command(0xAA);
        Assert.True(OutputFull);
        Assert.Equal(0x55, In(0x60));
        Assert.False(OutputFull);
        Assert.Equal(0x04, In(0x64) & 0x04);
    }

    [Fact]
    public void InterfaceTestsReportKeyboardPresentAndNoAuxDevice()
    {
        Command(0xAB);
        Assert.Equal(0x00, In(0x60));
        Command(0xA9);
        Assert.NotEqual(0x00, In(0x60));
    }

    [Fact]
    public void CommandByteReadWriteAndKeyboardEnableDisable()
    {
        Command(0x20);
        Assert.Equal(0x41, In(0x60)); // keyboard interrupt + translation
        Command(0x60);
        Data(0x65);
        Command(0x20);
        Assert.Equal(0x65, In(0x60));
        Command(0xAE);
        Assert.Equal(0, (byte)_kbc.ControllerCommandByte & 0x10);
        Command(0xAD);
        Assert.Equal(0x10, (byte)_kbc.ControllerCommandByte & 0x10);
    }

    [Fact]
    public void KeyboardResetAcksThenPassesSelfTestWithInterrupts()
    {
        Data(0xFF);
        Assert.Equal(0xFA, In(0x60));
        Assert.Equal(0xAA, In(0x60));
        Assert.False(OutputFull);
        Assert.Equal(2, _irq1.Pulses);
    }

    [Fact]
    public void KeyboardAcksCommandsAndParameters()
    {
        Data(0xED); // set LEDs
        Assert.Equal(0xFA, In(0x60));
        Data(0x07);
        Assert.Equal(0xFA, In(0x60));
        Data(0xF2); // identify
        Assert.Equal(0xFA, In(0x60));
        Assert.Equal(0xAB, In(0x60));
        Assert.Equal(0x83, In(0x60));
        Data(0xF0);
        Data(0x00); // get scan code set
        Assert.Equal(0xFA, In(0x60));
        Assert.Equal(0xFA, In(0x60));
        Assert.Equal(0x02, In(0x60));
        Data(0xEE);
        Assert.Equal(0xEE, In(0x60));
        Data(0x12); // not a command
        Assert.Equal(0xFE, In(0x60));
    }

    [Fact]
    public void DisabledKeyboardHoldsItsOutputUntilEnabled()
    {
        Command(0xAD);
        Data(0xF4);
        Assert.False(OutputFull);
        Command(0xAE);
        Assert.Equal(0xFA, In(0x60));
    }

    [Fact]
    public void NoInterruptWhenTheCommandByteDisablesIt()
    {
        Command(0x60);
        Data(0x00);
        Data(0xF4);
        Assert.Equal(0, _irq1.Pulses);
        Assert.Equal(0xFA, In(0x60));
    }

    [Fact]
    public void PulseResetLineRequestsAMachineReset()
    {
        Command(0xFF); // pulses nothing: bit 0 set
        Assert.Empty(_control.Resets);
        Command(0xFE);
        Assert.Single(_control.Resets);
    }

    [Fact]
    public void OutputPortWriteWithResetBitClearResets()
    {
        Command(0xD1);
        Data(0x03);
        Assert.Empty(_control.Resets);
        Command(0xD1);
        Data(0x02);
        Assert.Single(_control.Resets);
    }

    [Fact]
    public void StatusCommandBitTracksTheLastPortWritten()
    {
        Command(0xAE);
        Assert.Equal(0x08, In(0x64) & 0x08);
        Data(0xF4);
        Assert.Equal(0x00, In(0x64) & 0x08);
    }
}

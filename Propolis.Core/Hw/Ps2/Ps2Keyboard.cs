namespace Propolis.Core.Hw.Ps2;

/// <summary>A PS/2 keyboard as seen through the 8042: it acknowledges host commands (IBM PS/2
/// Hardware Interface Technical Reference, "Keyboard", commands EDh–FFh; propolis hw/ps2/ctrl.rs).
/// No keys are ever pressed.</summary>
internal sealed class Ps2Keyboard
{
    public const byte CmdSetLeds = 0xED;
    public const byte CmdEcho = 0xEE;
    public const byte CmdScanCodeSet = 0xF0;
    public const byte CmdIdentify = 0xF2;
    public const byte CmdTypematic = 0xF3;
    public const byte CmdEnable = 0xF4;
    public const byte CmdDisable = 0xF5;
    public const byte CmdSetDefaults = 0xF6;
    public const byte CmdResend = 0xFE;
    public const byte CmdReset = 0xFF;

    public const byte Ack = 0xFA;
    public const byte Resend = 0xFE;
    public const byte SelfTestPassed = 0xAA;
    public const byte Echo = 0xEE;

    private byte _pending;
    private byte _scanCodeSet = 2;
    private byte _last;

    public bool Scanning { get; private set; } = true;

    public void Reset()
    {
        _pending = 0;
        _scanCodeSet = 2;
        _last = 0;
        Scanning = true;
    }

    public void Write(byte value, I8042Controller controller)
    {
        var pending = _pending;
        _pending = 0;
        switch (pending)
        {
            case CmdSetLeds:
            case CmdTypematic:
                Send(controller, Ack);
                return;
            case CmdScanCodeSet:
                Send(controller, Ack);
                if (value == 0)
                    Send(controller, _scanCodeSet);
                else if (value is >= 1 and <= 3)
                    _scanCodeSet = value;
                return;
        }
        switch (value)
        {
            case CmdSetLeds:
            case CmdTypematic:
            case CmdScanCodeSet:
                _pending = value;
                Send(controller, Ack);
                break;
            case CmdEcho:
                Send(controller, Echo);
                break;
            case CmdIdentify:
                Send(controller, Ack);
                Send(controller, 0xAB); // MF2 keyboard
                Send(controller, 0x83);
                break;
            case CmdEnable:
                Scanning = true;
                Send(controller, Ack);
                break;
            case CmdDisable:
                Scanning = false;
                Send(controller, Ack);
                break;
            case CmdSetDefaults:
                _scanCodeSet = 2;
                Send(controller, Ack);
                break;
            case CmdResend:
                controller.Enqueue(_last);
                break;
            case CmdReset:
                Reset();
                Send(controller, Ack);
                Send(controller, SelfTestPassed);
                break;
            default:
                Send(controller, Resend);
                break;
        }
    }

    private void Send(I8042Controller controller, byte value)
    {
        _last = value;
        controller.Enqueue(value);
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Core.Buses;
using Propolis.Core.Hw.Chipset;
using Propolis.Core.Intr;

namespace Propolis.Core.Hw.Ps2;

/// <summary>The 8042 keyboard controller at ports 0x60 (data) and 0x64 (status/command) with a
/// PS/2 keyboard behind it; keyboard output interrupts on ISA IRQ 1 (edge). There is no auxiliary
/// (mouse) device: the auxiliary interface test reports a fault so the OS does not probe for one.</summary>
/// <remarks>Commands and bits: IBM PS/2 Hardware Interface Technical Reference, "Keyboard/Auxiliary
/// Device Controller" (status register, controller command byte, commands 20h–FFh), and propolis
/// hw/ps2/ctrl.rs. Command FEh (and any Fxh with bit 0 clear) pulses the reset line, which becomes
/// a machine reset request.</remarks>
public sealed partial class I8042Controller
{
    public const ushort DataPort = 0x60;
    public const ushort CommandPort = 0x64;
    public const int KeyboardIrq = 1;

    /// <summary>Status register bits.</summary>
    [Flags]
    public enum Status : byte
    {
        OutputFull = 1 << 0,
        InputFull = 1 << 1,
        SystemFlag = 1 << 2,
        /// <summary>Last write was to the command port.</summary>
        Command = 1 << 3,
        /// <summary>Keyboard not inhibited (the keylock is unlocked).</summary>
        Unlocked = 1 << 4,
        AuxOutputFull = 1 << 5,
        Timeout = 1 << 6,
        ParityError = 1 << 7,
    }

    /// <summary>Controller command byte bits.</summary>
    [Flags]
    public enum CommandByte : byte
    {
        KeyboardInterrupt = 1 << 0,
        AuxInterrupt = 1 << 1,
        SystemFlag = 1 << 2,
        KeyboardDisabled = 1 << 4,
        AuxDisabled = 1 << 5,
        Translate = 1 << 6,
    }

    // Controller commands.
    public const byte CmdReadCommandByte = 0x20;
    public const byte CmdWriteCommandByte = 0x60;
    public const byte CmdDisableAux = 0xA7;
    public const byte CmdEnableAux = 0xA8;
    public const byte CmdTestAux = 0xA9;
    public const byte CmdSelfTest = 0xAA;
    public const byte CmdTestKeyboard = 0xAB;
    public const byte CmdDisableKeyboard = 0xAD;
    public const byte CmdEnableKeyboard = 0xAE;
    public const byte CmdReadInputPort = 0xC0;
    public const byte CmdReadOutputPort = 0xD0;
    public const byte CmdWriteOutputPort = 0xD1;
    public const byte CmdWriteKeyboardOutput = 0xD2;
    public const byte CmdWriteAuxOutput = 0xD3;
    public const byte CmdWriteAux = 0xD4;
    public const byte CmdPulseFirst = 0xF0;

    public const byte SelfTestPassed = 0x55;
    public const byte InterfaceTestPassed = 0x00;
    /// <summary>Interface test result "clock line stuck low": no auxiliary device.</summary>
    public const byte InterfaceClockStuckLow = 0x01;

    /// <summary>Output port bits (command D0h/D1h): bit 0 is the active-low system reset, bit 1 A20.</summary>
    private const byte OutputPortReset = 0x01;
    private const byte OutputPortA20 = 0x02;

    private const int QueueSize = 16;

    private readonly IIrqLine _irq1;
    private readonly IMachineControl _control;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly byte[] _queue = new byte[QueueSize];
    private int _head;
    private int _count;
    private byte _output;
    private bool _outputFull;
    private bool _inputWasCommand;
    private byte _commandByte;
    private bool _systemFlag;
    private byte _pendingCommand;
    private readonly Ps2Keyboard _keyboard = new();

    public I8042Controller(IIrqLine irq1, IMachineControl control, ILogger<I8042Controller>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(irq1);
        ArgumentNullException.ThrowIfNull(control);
        _irq1 = irq1;
        _control = control;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        ResetLocked();
    }

    /// <summary>Claims ports 0x60 and 0x64.</summary>
    public void Attach(PortIoRegistration register)
    {
        register(DataPort, 1, new Port(this, data: true), "i8042-data");
        register(CommandPort, 1, new Port(this, data: false), "i8042-command");
    }

    public CommandByte ControllerCommandByte
    {
        get { lock (_lock) return (CommandByte)_commandByte; }
    }

    // ---- guest access ----

    public byte ReadStatus()
    {
        lock (_lock)
        {
            var s = Status.Unlocked;
            if (_outputFull)
                s |= Status.OutputFull;
            if (_systemFlag)
                s |= Status.SystemFlag;
            if (_inputWasCommand)
                s |= Status.Command;
            return (byte)s;
        }
    }

    public byte ReadData()
    {
        lock (_lock)
        {
            var value = _output;
            _outputFull = false;
            Refill();
            return value;
        }
    }

    public void WriteCommand(byte command)
    {
        lock (_lock)
        {
            _inputWasCommand = true;
            _pendingCommand = 0;
            switch (command)
            {
                case CmdReadCommandByte:
                    Respond(_commandByte);
                    break;
                case CmdWriteCommandByte:
                case CmdWriteOutputPort:
                case CmdWriteKeyboardOutput:
                case CmdWriteAuxOutput:
                case CmdWriteAux:
                    _pendingCommand = command; // the parameter follows on the data port
                    break;
                case CmdDisableAux:
                    _commandByte |= (byte)CommandByte.AuxDisabled;
                    break;
                case CmdEnableAux:
                    _commandByte &= unchecked((byte)~CommandByte.AuxDisabled);
                    break;
                case CmdTestAux:
                    Respond(InterfaceClockStuckLow);
                    break;
                case CmdSelfTest:
                    _systemFlag = true;
                    Respond(SelfTestPassed);
                    break;
                case CmdTestKeyboard:
                    Respond(InterfaceTestPassed);
                    break;
                case CmdDisableKeyboard:
                    _commandByte |= (byte)CommandByte.KeyboardDisabled;
                    break;
                case CmdEnableKeyboard:
                    _commandByte &= unchecked((byte)~CommandByte.KeyboardDisabled);
                    Refill();
                    break;
                case CmdReadInputPort:
                    Respond(0x80); // keyboard not inhibited
                    break;
                case CmdReadOutputPort:
                    Respond((byte)(OutputPortReset | OutputPortA20 | (_outputFull ? 0x10 : 0)));
                    break;
                case >= CmdPulseFirst:
                    // Pulse output port lines for 6 µs; bit 0 clear pulses the (active-low) reset line.
                    if ((command & 0x01) == 0)
                        RequestReset("8042 command 0x" + command.ToString("X2"));
                    break;
                default:
                    LogUnknownCommand(command);
                    break;
            }
        }
    }

    public void WriteData(byte value)
    {
        lock (_lock)
        {
            _inputWasCommand = false;
            var pending = _pendingCommand;
            _pendingCommand = 0;
            switch (pending)
            {
                case CmdWriteCommandByte:
                    _commandByte = value;
                    _systemFlag = (value & (byte)CommandByte.SystemFlag) != 0;
                    Refill();
                    break;
                case CmdWriteOutputPort:
                    if ((value & OutputPortReset) == 0)
                        RequestReset("8042 output port write 0x" + value.ToString("X2"));
                    break;
                case CmdWriteKeyboardOutput:
                    Enqueue(value);
                    break;
                case CmdWriteAuxOutput:
                case CmdWriteAux:
                    break; // no auxiliary device
                default:
                    _keyboard.Write(value, this);
                    break;
            }
        }
    }

    // ---- output buffer ----

    /// <summary>Puts a controller response straight into the output buffer (ahead of keyboard data).</summary>
    private void Respond(byte value)
    {
        _output = value;
        _outputFull = true;
        RaiseKeyboardInterrupt();
    }

    /// <summary>Queues a byte from the keyboard; dropped if the queue is full (the keyboard would
    /// report an overrun).</summary>
    internal void Enqueue(byte value)
    {
        if (_count == QueueSize)
            return;
        _queue[(_head + _count) % QueueSize] = value;
        _count++;
        Refill();
    }

    /// <summary>Moves the next keyboard byte to the output buffer when it is empty and the keyboard
    /// interface is enabled.</summary>
    private void Refill()
    {
        if (_outputFull || _count == 0 || (_commandByte & (byte)CommandByte.KeyboardDisabled) != 0)
            return;
        _output = _queue[_head];
        _head = (_head + 1) % QueueSize;
        _count--;
        _outputFull = true;
        RaiseKeyboardInterrupt();
    }

    private void RaiseKeyboardInterrupt()
    {
        if ((_commandByte & (byte)CommandByte.KeyboardInterrupt) != 0)
            _irq1.Pulse();
    }

    private void RequestReset(string reason)
    {
        LogReset(reason);
        _control.RequestReset(reason);
    }

    // ---- lifecycle ----

    /// <summary>Power-on state: empty buffers, keyboard interrupt and translation enabled.</summary>
    public void Reset()
    {
        lock (_lock)
            ResetLocked();
    }

    private void ResetLocked()
    {
        _head = 0;
        _count = 0;
        _output = 0;
        _outputFull = false;
        _inputWasCommand = false;
        _pendingCommand = 0;
        _systemFlag = false;
        _commandByte = (byte)(CommandByte.KeyboardInterrupt | CommandByte.Translate);
        _keyboard.Reset();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "8042 command 0x{Command:X2} is not implemented; ignored")]
    private partial void LogUnknownCommand(byte command);

    [LoggerMessage(Level = LogLevel.Information, Message = "guest requested a reset: {Reason}")]
    private partial void LogReset(string reason);

    private sealed class Port(I8042Controller controller, bool data) : IPortIoHandler
    {
        public void PortRead(ushort offset, Span<byte> buffer)
        {
            buffer.Fill(0xFF);
            buffer[0] = data ? controller.ReadData() : controller.ReadStatus();
        }

        public void PortWrite(ushort offset, ReadOnlySpan<byte> buffer)
        {
            if (data)
                controller.WriteData(buffer[0]);
            else
                controller.WriteCommand(buffer[0]);
        }
    }
}

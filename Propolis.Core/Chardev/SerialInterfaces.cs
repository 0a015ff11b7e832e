namespace Propolis.Core.Chardev;

/// <summary>The device end of a serial line, as a character backend (the console socket, a
/// test double) sees it. Implemented by <see cref="Hw.Uart.Uart16550"/>.</summary>
/// <remarks>
/// Flow control in both directions works like a pair of hardware handshake lines, without
/// blocking the side that is refused:
/// <list type="bullet">
/// <item>guest → host: the device hands transmitted bytes to <see cref="ISerialSink.TryWrite"/>;
/// when the sink takes fewer than offered the device keeps the rest (a UART keeps them in its
/// transmit FIFO and leaves THRE clear) until the sink calls <see cref="SinkWritable"/>.</item>
/// <item>host → guest: <see cref="TryReceive"/> takes what fits in the receiver; when it takes
/// fewer than offered the device calls <see cref="ISerialSink.ReceiverReady"/> once room
/// appears, and the backend offers the rest then. Nothing is dropped.</item>
/// </list>
/// </remarks>
public interface ISerialPort
{
    /// <summary>Connects the host end (or disconnects it, with <see langword="null"/>: transmitted
    /// bytes then go nowhere, as on a UART with nothing plugged in).</summary>
    void Attach(ISerialSink? sink);

    /// <summary>Offers bytes that arrived from the host. Never blocks; returns how many leading
    /// bytes of <paramref name="data"/> the device took.</summary>
    int TryReceive(ReadOnlySpan<byte> data);

    /// <summary>The sink has room again after a <see cref="ISerialSink.TryWrite"/> that took fewer
    /// bytes than offered. May be called from any thread, but not from inside
    /// <see cref="ISerialSink.TryWrite"/>.</summary>
    void SinkWritable();
}

/// <summary>The host end of a serial line.</summary>
public interface ISerialSink
{
    /// <summary>Bytes the guest transmitted. Called with the device's register lock held (so that
    /// bytes leave in the order the guest wrote them): must not block, must not perform I/O and
    /// must not call back into the <see cref="ISerialPort"/>. Returns how many leading bytes it
    /// took; after a short count it owes the port one <see cref="ISerialPort.SinkWritable"/>.</summary>
    int TryWrite(ReadOnlySpan<byte> data);

    /// <summary>The device's receiver has room again after a <see cref="ISerialPort.TryReceive"/>
    /// that took fewer bytes than offered. Called on a vCPU thread without the device's lock held;
    /// must be quick and must not block.</summary>
    void ReceiverReady();
}

using Propolis.Core.Buses;

namespace Propolis.Core.Hw.Misc;

/// <summary>QEMU's ISA debug console ("debugcon", docs/specs and hw/char/debugcon.c): each byte the
/// guest writes to the port is appended to a stream (OVMF's and SeaBIOS's debug log goes to port
/// 0x402). A read returns 0xE9, which firmware uses to detect the port.</summary>
/// <remarks>Output is buffered and flushed at each newline, so a log file is readable while the
/// guest runs without a system call per byte.</remarks>
public sealed class QemuDebugPort : IPortIoHandler, IDisposable
{
    public const ushort DefaultPort = 0x402;
    public const byte ReadbackValue = 0xE9;

    private readonly Stream _output;
    private readonly bool _ownsStream;
    private readonly Lock _lock = new();

    /// <summary>Writes to <paramref name="output"/>; disposes it if <paramref name="ownsStream"/>.</summary>
    public QemuDebugPort(Stream output, bool ownsStream = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _ownsStream = ownsStream;
    }

    /// <summary>Creates (truncating) the file at <paramref name="path"/>, e.g. <c>./debug.out</c>.</summary>
    public static QemuDebugPort ToFile(string path) =>
        new(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 4096), ownsStream: true);

    public void PortRead(ushort offset, Span<byte> data)
    {
        data.Fill(0);
        data[0] = ReadbackValue;
    }

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
    {
        var b = data[0];
        lock (_lock)
        {
            try
            {
                _output.WriteByte(b);
                if (b == (byte)'\n')
                    _output.Flush();
            }
            catch (IOException)
            {
                // A full disk must not stop the guest; the debug log is best effort.
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    public void Flush()
    {
        lock (_lock)
            _output.Flush();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _output.Flush();
            if (_ownsStream)
                _output.Dispose();
        }
    }
}

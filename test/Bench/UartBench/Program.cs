// Cost of the serial console's hot paths, as a vCPU exit sees them: each operation is one guest
// IN/OUT on a 16550A (the exit itself, ~1-2 µs under KVM, is not included). Single-threaded
// except where a console client is attached. Usage: UartBench [seconds-per-figure]  (default 0.5)
//
// Every figure is the best of 7 rounds after a warm-up (the machine is shared); allocations are
// counted on the measuring thread and must be 0 per operation.

using System.Diagnostics;
using System.Net.Sockets;
using Propolis.Core.Chardev;
using Propolis.Core.Hw.Uart;
using Propolis.Core.Intr;

double seconds = args.Length > 0 && double.TryParse(args[0], System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 0.5;

Console.WriteLine($"16550A + console socket, {seconds:0.##} s per figure");
Console.WriteLine($"  runtime   {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, {Environment.ProcessorCount} logical CPUs");
Console.WriteLine();
Console.WriteLine($"  {"operation",-46} {"ns/op",8} {"bytes/op",9}");

var dir = Directory.CreateTempSubdirectory("uartbench-");
try
{
    var irq = new NullIrqLine();
    var uart = new Uart16550(irq);
    using var console = ConsoleSocket.Create(Path.Combine(dir.FullName, "ttya"), uart);
    uart.PortWrite(2, [0x01]); // FCR: FIFOs on
    uart.PortWrite(4, [0x0B]); // MCR: DTR RTS OUT2
    uart.PortWrite(1, [0x03]); // IER: RDI THRI

    byte[] one = new byte[1];
    Report("LSR read (IN 0x3FD)", Measure(seconds, () => uart.PortRead(5, one)));
    Report("THR write, no client (OUT 0x3F8 → ring)", Measure(seconds, () =>
    {
        one[0] = (byte)'x';
        uart.PortWrite(0, one);
    }));
    Report("IIR read (IN 0x3FA)", Measure(seconds, () => uart.PortRead(2, one)));
    byte[] burst = "0123456789abcdef"u8.ToArray();
    Report("RX: 16 B offered, 16× RBR read (per byte)", Measure(seconds, () =>
    {
        uart.TryReceive(burst);
        for (int i = 0; i < 16; i++)
            uart.PortRead(0, one);
    }), perOp: 16);

    using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    client.Connect(new UnixDomainSocketEndPoint(console.Path));
    var drain = new Thread(() =>
    {
        var buffer = new byte[65536];
        try
        {
            while (client.Receive(buffer) > 0) { }
        }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
    }) { IsBackground = true };
    drain.Start();
    Report("THR write, client attached and reading", Measure(seconds, () =>
    {
        one[0] = (byte)'y';
        uart.PortWrite(0, one);
    }));
    Console.WriteLine($"  {"output dropped (the client lagged)",-46} {console.DroppedBytes,8} bytes");
}
finally
{
    dir.Delete(recursive: true);
}

static void Report(string name, (double NsPerCall, double BytesPerCall) r, int perOp = 1) =>
    Console.WriteLine($"  {name,-46} {r.NsPerCall / perOp,8:0.0} {r.BytesPerCall / perOp,9:0.##}");

static (double NsPerCall, double BytesPerCall) Measure(double seconds, Action op)
{
    var warm = Stopwatch.StartNew();
    while (warm.Elapsed.TotalSeconds < Math.Min(0.2, seconds / 2))
        Batch(op);

    const int Rounds = 7;
    double bestNs = double.MaxValue, bestBytes = double.MaxValue;
    long ticksPerRound = (long)(seconds / Rounds * Stopwatch.Frequency);
    for (int r = 0; r < Rounds; r++)
    {
        long calls = 0;
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        long now;
        do
        {
            Batch(op);
            calls += 1024;
            now = Stopwatch.GetTimestamp();
        }
        while (now - start < ticksPerRound);
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        bestNs = Math.Min(bestNs, (now - start) * 1e9 / Stopwatch.Frequency / calls);
        bestBytes = Math.Min(bestBytes, (double)allocated / calls);
    }
    return (bestNs, bestBytes);

    static void Batch(Action op)
    {
        for (int i = 0; i < 1024; i++)
            op();
    }
}

sealed class NullIrqLine : IIrqLine
{
    public uint Gsi => 4;
    public void SetLevel(bool asserted) { }
    public void Pulse() { }
}

using System.Diagnostics;
using Propolis.Core.Buses;

// Dispatch cost of PortIoBus and MmioBus with a PC-like number of claimed ranges: the lookup a
// vCPU thread does on every I/O or MMIO exit. Prints ns/op and bytes allocated per op (the
// budget is 0) for the best of five rounds after warm-up.
const int Ranges = 48;
const int Ops = 2_000_000;

var pio = new PortIoBus();
var mmio = new MmioBus();
var device = new NullDevice();
for (var i = 0; i < Ranges; i++)
{
    pio.Register((ushort)(0x100 + i * 0x20), 8, device, "pio" + i);
    mmio.Register(0xC000_0000UL + (ulong)i * 0x10_0000, 0x1000, device, "mmio" + i);
}

Report("PortIoBus.Write (claimed)", () =>
{
    Span<byte> d = stackalloc byte[1];
    for (var i = 0; i < Ops; i++)
    {
        pio.Write((ushort)(0x100 + (i % Ranges) * 0x20 + 3), d);
    }
});
Report("PortIoBus.Read (claimed)", () =>
{
    Span<byte> d = stackalloc byte[4];
    for (var i = 0; i < Ops; i++)
    {
        pio.Read((ushort)(0x100 + (i % Ranges) * 0x20), d);
    }
});
Report("PortIoBus.Read (unclaimed)", () =>
{
    Span<byte> d = stackalloc byte[1];
    for (var i = 0; i < Ops; i++)
    {
        pio.Read(0x80, d);
    }
});
Report("MmioBus.Write (claimed)", () =>
{
    Span<byte> d = stackalloc byte[4];
    for (var i = 0; i < Ops; i++)
    {
        mmio.Write(0xC000_0000UL + (ulong)(i % Ranges) * 0x10_0000 + 0x10, d);
    }
});
return 0;

static void Report(string name, Action body)
{
    body(); // warm up (tiering, the one-time unclaimed-port log bit)
    var best = double.MaxValue;
    long bytes = long.MaxValue;
    for (var round = 0; round < 5; round++)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        body();
        var elapsed = sw.Elapsed.TotalNanoseconds;
        bytes = Math.Min(bytes, GC.GetAllocatedBytesForCurrentThread() - before);
        best = Math.Min(best, elapsed / Ops);
    }
    Console.WriteLine($"{name,-28} {best,7:F1} ns/op {(double)bytes / Ops,6:F2} B/op");
}

sealed class NullDevice : IPortIoHandler, IMmioHandler
{
    public void PortRead(ushort offset, Span<byte> data) => data.Clear();
    public void PortWrite(ushort offset, ReadOnlySpan<byte> data) { }
    public void MmioRead(ulong offset, Span<byte> data) => data.Clear();
    public void MmioWrite(ulong offset, ReadOnlySpan<byte> data) { }
}

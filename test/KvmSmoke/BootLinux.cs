using System.Diagnostics;
using System.Text;
using Propolis.Core.Boot;
using Propolis.Core.Buses;
using Propolis.Core.Vmm;
using Propolis.Core.Vmm.Kvm;

/// <summary><c>KvmSmoke boot BZIMAGE [CMDLINE] [MiB] [SECONDS]</c>: boots a real bzImage through
/// VmParts, LinuxLoader and VcpuRunner with one vCPU and no devices but a transmit-only COM1
/// stub good enough for earlyprintk=serial, and copies what the kernel prints to stdout. Exits
/// 0 once the kernel panics for lack of a root file system (it got that far), 1 otherwise.</summary>
internal static class BootLinux
{
    public static int Run(string path, string cmdline, ulong mib, int seconds)
    {
        using var hv = KvmHypervisor.Open();
        using var parts = VmParts.Create(hv, mib << 20, 1);
        var image = File.ReadAllBytes(path);
        var boot = LinuxLoader.Load(parts.Memory, image, path, [], cmdline);
        Console.Error.WriteLine($"boot: protocol {boot.ProtocolVersion >> 8}.{boot.ProtocolVersion & 0xFF:D2}, kernel at 0x{boot.KernelAddress:X}, entry 0x{boot.Registers.Rip:X}, cmdline \"{cmdline}\"");
        boot.ApplyTo(parts.Vcpus[0]);
        var console = new EarlySerial();
        parts.PortIo.Register(0x3F8, 8, console, "com1 (earlyprintk stub)");
        var sink = new EventSink();
        using var runner = parts.CreateRunner(sink);
        var sw = Stopwatch.StartNew();
        runner.Start();
        runner.Resume();
        var reached = console.Panicked.Wait(TimeSpan.FromSeconds(seconds)) || sink.Any.IsSet;
        runner.Pause();
        Console.Error.WriteLine($"\nboot: {(console.Panicked.IsSet ? "kernel reached its root-mount panic" : reached ? "vCPU event" : "timed out")} after {sw.Elapsed.TotalSeconds:F1} s, {console.Bytes} bytes of console output");
        runner.Stop();
        return console.Panicked.IsSet ? 0 : 1;
    }

    /// <summary>Only what earlyprintk's polled transmitter needs: THR writes are printed, LSR
    /// always reads "transmitter empty", everything else reads 0. Not a 16550.</summary>
    private sealed class EarlySerial : IPortIoHandler
    {
        private readonly StringBuilder _line = new();
        private bool _dlab;
        public readonly ManualResetEventSlim Panicked = new();
        public long Bytes;

        public void PortRead(ushort offset, Span<byte> data)
        {
            data.Clear();
            if (offset == 5)
            {
                data[0] = 0x60; // THRE | TEMT
            }
        }

        public void PortWrite(ushort offset, ReadOnlySpan<byte> data)
        {
            if (offset == 3)
            {
                _dlab = (data[0] & 0x80) != 0;
                return;
            }
            if (offset != 0 || _dlab)
            {
                return;
            }
            Bytes++;
            var c = (char)data[0];
            Console.Out.Write(c);
            if (c == '\n')
            {
                if (_line.ToString().Contains("Kernel panic"))
                {
                    Console.Out.Flush();
                    Panicked.Set();
                }
                _line.Clear();
            }
            else
            {
                _line.Append(c);
            }
        }
    }

    private sealed class EventSink : IVcpuEventSink
    {
        public readonly ManualResetEventSlim Any = new();

        public void OnVcpuEvent(VcpuEvent e)
        {
            Console.Error.WriteLine($"\nboot: vCPU {e.VcpuId} {e.Kind}: {e.Detail}");
            Any.Set();
        }
    }
}

using System.Diagnostics;
using System.Text;
using Propolis.Core.Boot;
using Propolis.Core.Buses;
using Propolis.Core.Vmm;
using Propolis.Core.Vmm.Kvm;

/// <summary><c>KvmSmoke boot BZIMAGE [CMDLINE] [MiB] [SECONDS]</c>: boots a real bzImage through
/// VmParts, LinuxLoader and VcpuRunner with one vCPU and no devices but a transmit-only COM1
/// stub good enough for earlyprintk=serial, and copies what the kernel prints to stdout. With no
/// root file system the kernel panics and (panic=-1 reboot=t) reboots by triple fault; the
/// machine is reset and the kernel booted again. Exits 0 after two such boots, 1 otherwise.</summary>
internal static class BootLinux
{
    public static int Run(string path, string cmdline, ulong mib, int seconds)
    {
        const int Boots = 2;
        using var hv = KvmHypervisor.Open();
        using var parts = VmParts.Create(hv, mib << 20, 1);
        var image = File.ReadAllBytes(path);
        var console = new EarlySerial();
        parts.PortIo.Register(0x3F8, 8, console, "com1 (earlyprintk stub)");
        var sink = new EventSink();
        using var runner = parts.CreateRunner(sink);
        var sw = Stopwatch.StartNew();
        runner.Start();
        var reboots = 0;
        for (var boot = 1; boot <= Boots; boot++)
        {
            if (boot > 1)
            {
                // The guest rebooted (triple fault, reboot=t): reset as a machine reset would.
                runner.Pause();
                parts.ResetProcessorsAndInterruptControllers();
            }
            var state = LinuxLoader.Load(parts.Memory, image, path, [], cmdline);
            state.ApplyTo(parts.Vcpus[0]);
            Console.Error.WriteLine($"boot {boot}: protocol {state.ProtocolVersion >> 8}.{state.ProtocolVersion & 0xFF:D2}, kernel at 0x{state.KernelAddress:X}, entry 0x{state.Registers.Rip:X}, cmdline \"{cmdline}\"");
            runner.Resume();
            if (!sink.Events.TryTake(out var e, TimeSpan.FromSeconds(seconds)))
            {
                Console.Error.WriteLine($"\nboot {boot}: timed out after {sw.Elapsed.TotalSeconds:F1} s");
                break;
            }
            Console.Error.WriteLine($"\nboot {boot}: vCPU {e.VcpuId} {e.Kind} after {sw.Elapsed.TotalSeconds:F1} s ({e.Detail.Split('\n')[0]})");
            if (e.Kind is not (VcpuEventKind.TripleFault or VcpuEventKind.Reset))
            {
                Console.Error.WriteLine(e.Detail);
                break;
            }
            reboots++;
        }
        runner.Pause();
        runner.Stop();
        Console.Error.WriteLine($"boot: {console.Panics} panic(s), {reboots} reboot(s), {console.Bytes} bytes of console output in {sw.Elapsed.TotalSeconds:F1} s");
        return console.Panics == Boots && reboots == Boots ? 0 : 1;
    }

    /// <summary>Only what earlyprintk's polled transmitter needs: THR writes are printed, LSR
    /// always reads "transmitter empty", everything else reads 0. Not a 16550.</summary>
    private sealed class EarlySerial : IPortIoHandler
    {
        private readonly StringBuilder _line = new();
        private bool _dlab;
        public int Panics;
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
                    Panics++;
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
        public readonly System.Collections.Concurrent.BlockingCollection<VcpuEvent> Events = [];

        public void OnVcpuEvent(VcpuEvent e) => Events.Add(e);
    }
}

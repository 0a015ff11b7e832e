using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Propolis.Core.Boot;
using Propolis.Core.Buses;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;
using Propolis.Core.Vmm.Kvm;

// Exercises the KVM backend against a real /dev/kvm: a real-mode guest doing port I/O and
// MMIO through IVcpu.Run, then a 64-bit guest entered through LinuxLoader and driven by
// VcpuRunner (pause/resume/stop with one vCPU halted and one AP waiting for SIPI).
// Prints one line per check; exit status 0 if all pass, 1 if any fails, 2 without KVM.

if (args.Length >= 2 && args[0] == "boot")
{
    return BootLinux.Run(args[1], args.Length > 2 ? args[2] : "earlyprintk=serial,ttyS0 console=ttyS0 panic=-1 reboot=t",
        args.Length > 3 ? ulong.Parse(args[3]) : 256, args.Length > 4 ? int.Parse(args[4]) : 300);
}

var failures = 0;
void Check(bool ok, string what)
{
    Console.WriteLine($"{(ok ? "ok  " : "FAIL")} {what}");
    if (!ok)
    {
        failures++;
    }
}

KvmHypervisor hv;
try
{
    hv = KvmHypervisor.Open();
}
catch (HypervisorException e)
{
    Console.Error.WriteLine("kvm-smoke: " + e.Message);
    return 2;
}

using (hv)
{
    var supported = hv.GetSupportedCpuid();
    Check(supported.Count > 10, $"KVM_GET_SUPPORTED_CPUID returned {supported.Count} entries; max vCPUs {hv.MaxVcpus}");
    RealMode(hv, supported);
    LongMode(hv, supported);
}
Console.WriteLine(failures == 0 ? "kvm-smoke: all checks passed" : $"kvm-smoke: {failures} check(s) failed");
return failures == 0 ? 0 : 1;

void RealMode(KvmHypervisor hv, IReadOnlyList<CpuidEntry> supported)
{
    using var vm = hv.CreateVm();
    using var mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000)]));
    vm.MapMemory(mem);
    byte[] code =
    [
        0xBA, 0xF8, 0x03,             // mov dx, 0x3f8
        0xB0, (byte)'K', 0xEE,        // mov al, 'K'; out dx, al
        0xB0, (byte)'V', 0xEE,        // mov al, 'V'; out dx, al
        0xEC,                         // in al, dx
        0xE6, 0x80,                   // out 0x80, al
        0xB8, 0xFF, 0xFF,             // mov ax, 0xffff
        0x8E, 0xD8,                   // mov ds, ax
        0xC6, 0x06, 0x20, 0x00, 0x42, // mov byte [0x20], 0x42   (0x100010: past RAM, MMIO)
        0xA0, 0x20, 0x00,             // mov al, [0x20]
        0xE6, 0x80,                   // out 0x80, al
        0xF4,                         // hlt
    ];
    mem.Write(0x1000, code);
    using var vcpu = vm.CreateVcpu(0);
    X86CpuSetup.Configure(vcpu, [.. supported], 1);
    vcpu.BindToCurrentThread();
    var s = vcpu.GetSpecialRegisters();
    s.Cs.Base = 0;
    s.Cs.Selector = 0;
    vcpu.SetSpecialRegisters(s);
    vcpu.SetGeneralRegisters(new GeneralRegisters { Rip = 0x1000, Rflags = 2 });

    var log = new StringBuilder();
    for (var step = 0; step < 7; step++)
    {
        var exit = vcpu.Run();
        switch (exit.Kind)
        {
            case VcpuExitKind.IoOut:
                log.Append($"out {exit.Port:X}={exit.Data[0]:X2};");
                break;
            case VcpuExitKind.IoIn:
                exit.Data.Fill(0x5A);
                log.Append($"in {exit.Port:X}/{exit.Size};");
                break;
            case VcpuExitKind.MmioWrite:
                log.Append($"mmio-w {exit.Address:X}/{exit.Size}={exit.Data[0]:X2};");
                break;
            case VcpuExitKind.MmioRead:
                exit.Data.Fill(0x99);
                log.Append($"mmio-r {exit.Address:X}/{exit.Size};");
                break;
            default:
                log.Append($"{exit.Kind};");
                break;
        }
    }
    const string expected = "out 3F8=4B;out 3F8=56;in 3F8/1;out 80=5A;mmio-w 100010/1=42;mmio-r 100010/1;out 80=99;";
    Check(log.ToString() == expected, $"real mode exits: {log}");

    // The guest is now in HLT with IF=0, blocked inside KVM_RUN: a kick must get it out.
    var sw = Stopwatch.StartNew();
    var kicker = new Thread(() => { Thread.Sleep(300); vcpu.Kick(); });
    kicker.Start();
    var halted = vcpu.Run();
    kicker.Join();
    Check(halted.Kind == VcpuExitKind.Interrupted && sw.ElapsedMilliseconds >= 250,
        $"kick interrupts a halted vCPU: {halted.Kind} after {sw.ElapsedMilliseconds} ms");
    var again = vcpu.GetGeneralRegisters();
    Check(again.Rip == 0x1000 + (ulong)code.Length, $"RIP after HLT is 0x{again.Rip:X}");

    // Hot path: 2000 OUT exits dispatched through the port bus allocate nothing. The in-kernel
    // LAPIC still has the vCPU halted (the kick only interrupted the wait): make it runnable.
    Check(vcpu.GetMpState() == VcpuMpState.Halted, "the kicked vCPU is still halted in the in-kernel LAPIC");
    vcpu.SetMpState(VcpuMpState.Runnable);
    byte[] loop =
    [
        0xBA, 0xF8, 0x03,             // mov dx, 0x3f8
        0xB9, 0xD0, 0x07,             // mov cx, 2000
        0xEE,                         // l: out dx, al
        0xE2, 0xFD,                   // loop l
        0xE6, 0x81,                   // out 0x81, al  (end marker)
        0xF4,                         // hlt
    ];
    mem.Write(0x2000, loop);
    vcpu.SetGeneralRegisters(new GeneralRegisters { Rip = 0x2000, Rflags = 2, Rax = 0x33 });
    var bus = new PortIoBus();
    var counter = new CountingPort();
    bus.Register(0x3F8, 8, counter, "com1");
    var done = false;
    var exits = 0;
    var allocated = GC.GetAllocatedBytesForCurrentThread();
    sw.Restart();
    while (!done)
    {
        var exit = vcpu.Run();
        exits++;
        if (exit.Kind == VcpuExitKind.IoOut && exit.Port == 0x3F8)
        {
            for (var i = 0; i < exit.Count; i++)
            {
                bus.Write(exit.Port, exit.Data.Slice(i * exit.Size, exit.Size));
            }
        }
        else
        {
            done = true;
        }
    }
    var elapsed = sw.Elapsed;
    allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
    Check(counter.Writes == 2000 && allocated == 0,
        $"{exits} exits, {counter.Writes} bus writes, {allocated} bytes allocated, {elapsed.TotalMicroseconds / exits:F1} us/exit");
}

void LongMode(KvmHypervisor hv, IReadOnlyList<CpuidEntry> supported)
{
    using var parts = VmParts.Create(hv, 64 << 20, 2);
    var mem = parts.Memory;

    // A synthetic bzImage: one setup sector, then a "kernel" whose startup_64 reports what
    // the loader and the CPU setup gave it.
    var image = new byte[1024 + 0x1000];
    image[SetupHeader.SetupSects] = 1;
    BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(SetupHeader.BootFlag), SetupHeader.BootFlagMagic);
    image[SetupHeader.Jump] = 0xEB;
    image[SetupHeader.Jump + 1] = 0x6A;
    BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.Header), SetupHeader.HeaderMagic);
    BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(SetupHeader.Version), 0x020F);
    image[SetupHeader.LoadFlags] = SetupHeader.LoadedHigh;
    BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.InitrdAddrMax), 0x7FFF_FFFF);
    BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(SetupHeader.XLoadFlags), SetupHeader.XlfKernel64);
    BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.CmdlineSize), 2047);
    BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.InitSize), 0x10_0000);
    byte[] startup64 =
    [
        0x8A, 0x86, 0x10, 0x02, 0x00, 0x00, // mov al, [rsi+0x210]   type_of_loader
        0xE6, 0x80,                         // out 0x80, al
        0x8B, 0x86, 0x28, 0x02, 0x00, 0x00, // mov eax, [rsi+0x228]  cmd_line_ptr
        0x8A, 0x00,                         // mov al, [rax]
        0xBA, 0xF8, 0x03, 0x00, 0x00,       // mov edx, 0x3f8
        0xEE,                               // out dx, al
        0xB8, 0x00, 0x00, 0x00, 0xE0,       // mov eax, 0xE0000000   (ECAM window: MMIO)
        0xC7, 0x00, 0x78, 0x56, 0x34, 0x12, // mov dword [rax], 0x12345678
        0x8B, 0x00,                         // mov eax, [rax]
        0xE6, 0x80,                         // out 0x80, al
        0xB8, 0x01, 0x00, 0x00, 0x00,       // mov eax, 1
        0x0F, 0xA2,                         // cpuid
        0x89, 0xD8,                         // mov eax, ebx
        0xC1, 0xE8, 0x18,                   // shr eax, 24            APIC id
        0xE6, 0x81,                         // out 0x81, al
        0xB8, 0x00, 0x00, 0x00, 0x40,       // mov eax, 0x40000000
        0x0F, 0xA2,                         // cpuid
        0x89, 0xD8,                         // mov eax, ebx           "KVMK"
        0xE7, 0x84,                         // out 0x84, eax
        0xB8, 0xF0, 0x00, 0xE0, 0xFE,       // mov eax, 0xFEE000F0   local APIC SVR
        0xC7, 0x00, 0xFF, 0x01, 0x00, 0x00, // mov dword [rax], 0x1FF (software enable)
        0xB8, 0x10, 0x03, 0xE0, 0xFE,       // mov eax, 0xFEE00310   ICR high
        0xC7, 0x00, 0x00, 0x00, 0x00, 0x01, // mov dword [rax], 1 << 24 (APIC id 1)
        0xB8, 0x00, 0x03, 0xE0, 0xFE,       // mov eax, 0xFEE00300   ICR low
        0xC7, 0x00, 0x00, 0x45, 0x00, 0x00, // mov dword [rax], 0x4500 (INIT)
        0xC7, 0x00, 0x0F, 0x46, 0x00, 0x00, // mov dword [rax], 0x460F (SIPI, vector 0x0F: 0xF000)
        0xE6, 0x88,                         // out 0x88, al           (ioeventfd: no exit)
        0xB8, 0x00, 0x10, 0x00, 0xE0,       // mov eax, 0xE0001000
        0xC7, 0x00, 0xEF, 0xBE, 0xAD, 0xDE, // mov dword [rax], 0xDEADBEEF (MMIO ioeventfd with datamatch)
        0xF4,                               // hlt
        0xEB, 0xFD,                         // jmp hlt
    ];
    startup64.CopyTo(image, 1024 + 0x200);
    var initrd = Encoding.ASCII.GetBytes("initrd-bytes");
    var boot = LinuxLoader.Load(mem, image, "synthetic-bzImage", initrd, "console=ttyS0");
    // The AP's real-mode startup code, where the SIPI vector points.
    mem.Write(0xF000, [0xB0, 0x01, 0xE6, 0x82, 0xF4, 0xEB, 0xFD]); // mov al, 1; out 0x82, al; hlt; jmp
    Check(mem.TryReadUInt32(boot.InitrdAddress, out var initrdHead) && initrdHead == BinaryPrimitives.ReadUInt32LittleEndian(initrd),
        $"initrd placed at 0x{boot.InitrdAddress:X}");

    var bsp = parts.Vcpus[0];
    var ap = parts.Vcpus[1];
    boot.ApplyTo(bsp);
    Check(ap.GetMpState() == VcpuMpState.Uninitialized, "AP waits for INIT/SIPI");

    var events = new BlockingCollection<string>();
    var pio = parts.PortIo;
    pio.Register(0x80, 8, new Recorder("dbg", events), "debug ports");
    pio.Register(0x3F8, 8, new Recorder("com1", events), "com1");
    var mmio = parts.Mmio;
    mmio.Register(MemoryLayout.PcieEcamBase, MemoryLayout.PcieEcamSize, new Recorder("ecam", events), "ecam");
    using var pioEvent = EventFd.Create();
    using var mmioEvent = EventFd.Create();
    parts.Vm.RegisterIoEventFd(pioEvent, IoEventSpace.Port, 0x88, 1, null);
    parts.Vm.RegisterIoEventFd(mmioEvent, IoEventSpace.Mmio, MemoryLayout.PcieEcamBase + 0x1000, 4, 0xDEADBEEF);
    var sink = new Sink();
    using var runner = parts.CreateRunner(sink);
    runner.Start();
    runner.Resume();

    var seen = new List<string>();
    while (seen.Count < 8 && events.TryTake(out var e, TimeSpan.FromSeconds(20)))
    {
        seen.Add(e);
    }
    var trace = string.Join(";", seen);
    const string expected = "dbg+0=FF;com1+0=63;ecam+0 w=12345678;ecam+0 r/4;dbg+0=AB;dbg+1=00;dbg+4=4B4D564B;dbg+2=01";
    Check(trace == expected, $"64-bit entry, then INIT/SIPI starts the AP: {trace}");

    ulong pioCount = 0, mmioCount = 0;
    for (var i = 0; i < 100 && (pioCount == 0 || mmioCount == 0); i++)
    {
        pioCount += pioEvent.TryConsume(out var n) ? n : 0;
        mmioCount += mmioEvent.TryConsume(out var m) ? m : 0;
        Thread.Sleep(50);
    }
    Check(pioCount == 1 && mmioCount == 1 && !events.TryTake(out _),
        $"ioeventfd: port 0x88 signalled {pioCount}, MMIO 0xE0001000 signalled {mmioCount}, neither exited to userspace");

    // Interrupt injection into the in-kernel irqchip (the BSP has software-enabled its APIC).
    parts.Vm.SetIrqLine(4, true);
    parts.Vm.SetIrqLine(4, false);
    parts.Vm.GetIrqLine(9).Pulse();
    Check(true, "KVM_IRQ_LINE on GSI 4 and 9 accepted");
    var delivered = parts.Vm.SignalMsi(MemoryLayout.LocalApicBase, 0x30);
    Check(delivered, $"KVM_SIGNAL_MSI to APIC 0 vector 0x30 delivered: {delivered}");
    using var irqEvent = EventFd.Create();
    var gsi = parts.Vm.AllocateMsiRoute(MemoryLayout.LocalApicBase, 0x31);
    parts.Vm.RegisterIrqFd(irqEvent, gsi);
    irqEvent.Signal();
    Thread.Sleep(200);
    var drained = !irqEvent.TryConsume(out _);
    parts.Vm.UnregisterIrqFd(irqEvent, gsi);
    irqEvent.Signal();
    Thread.Sleep(200);
    var kept = irqEvent.TryConsume(out var left) && left == 1;
    Check(gsi == 24 && drained && kept, $"irqfd on MSI route GSI {gsi}: consumed by KVM while registered ({drained}), left alone after unregistering ({kept})");

    var sw = Stopwatch.StartNew();
    runner.Pause();
    Check(true, $"pause kicked both halted vCPUs out of KVM_RUN and parked them in {sw.ElapsedMilliseconds} ms");
    var regs = bsp.GetGeneralRegisters();
    Check(regs.Rsi == LinuxLoader.ZeroPageAddress, $"BSP RSI = 0x{regs.Rsi:X} (zero page)");
    runner.Resume();
    Thread.Sleep(100);
    runner.Pause();
    Check(true, "resume then pause again");

    // Machine reset: interrupt controllers and vCPUs back to power-on, the OS loaded again;
    // the same guest must run the same way, including the AP's INIT/SIPI start.
    parts.ResetProcessorsAndInterruptControllers();
    Check(ap.GetMpState() == VcpuMpState.Uninitialized && bsp.GetGeneralRegisters().Rip == 0xFFF0,
        $"after reset the AP waits for SIPI again and the BSP is at the reset vector (RIP 0x{bsp.GetGeneralRegisters().Rip:X})");
    LinuxLoader.Load(mem, image, "synthetic-bzImage", initrd, "console=ttyS0").ApplyTo(bsp);
    while (events.TryTake(out _))
    {
    }
    runner.Resume();
    seen.Clear();
    while (seen.Count < 8 && events.TryTake(out var e, TimeSpan.FromSeconds(20)))
    {
        seen.Add(e);
    }
    Check(string.Join(";", seen) == expected, $"after reset the guest runs again: {string.Join(";", seen)}");
    runner.Pause();
    runner.Stop();
    Check(sink.Count == 0, $"no lifecycle events ({sink.Count})");
}

sealed class Recorder(string name, BlockingCollection<string> events) : IPortIoHandler, IMmioHandler
{
    public void PortRead(ushort offset, Span<byte> data) => data.Clear();

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data) => events.Add($"{name}+{offset:X}={Hex(data)}");

    public void MmioRead(ulong offset, Span<byte> data)
    {
        data.Clear();
        data[0] = 0xAB;
        events.Add($"{name}+{offset:X} r/{data.Length}");
    }

    public void MmioWrite(ulong offset, ReadOnlySpan<byte> data) => events.Add($"{name}+{offset:X} w={Hex(data)}");

    private static string Hex(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder();
        for (var i = data.Length - 1; i >= 0; i--)
        {
            sb.Append(data[i].ToString("X2"));
        }
        return sb.ToString();
    }
}

sealed class CountingPort : IPortIoHandler
{
    public int Writes;

    public void PortRead(ushort offset, Span<byte> data) => data.Clear();

    public void PortWrite(ushort offset, ReadOnlySpan<byte> data) => Writes++;
}

sealed class Sink : IVcpuEventSink
{
    public int Count;

    public void OnVcpuEvent(VcpuEvent vcpuEvent)
    {
        Interlocked.Increment(ref Count);
        Console.WriteLine($"event: vCPU {vcpuEvent.VcpuId} {vcpuEvent.Kind}: {vcpuEvent.Detail}");
    }
}

using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Propolis.Core.Interop;
using static Propolis.Core.Interop.Interop;
using K = Propolis.Core.Interop.Interop.Kvm;

namespace Propolis.Core.Vmm.Kvm;

/// <summary>A KVM vCPU: its descriptor and its mmapped <c>kvm_run</c> page.</summary>
/// <remarks>Kicking (as firecracker and cloud-hypervisor do, but with no signal handler): the
/// runner thread keeps <see cref="KickSignal"/> blocked and tells KVM to unblock it only while
/// in the guest (KVM_SET_SIGNAL_MASK). <see cref="Kick"/> sets <c>immediate_exit</c> (covers a
/// kick that lands before KVM_RUN) and sends the signal with tgkill; KVM_RUN returns EINTR; the
/// still-blocked signal is then dequeued with sigtimedwait. No managed code runs in signal
/// context, and because the signal is blocked outside KVM_RUN its default action never fires.</remarks>
public sealed unsafe class KvmVcpu : IVcpu
{
    /// <summary>SIGRTMIN+7: clear of the signals glibc reserves below SIGRTMIN and of SIGRTMIN
    /// itself, which the .NET runtime uses to inject activations.</summary>
    public static readonly int KickSignal = Sys.SigRtMin() + 7;

    private readonly SafeFdHandle _fd;
    private readonly int _mmapSize;
    private kvm_run* _run;
    private int _tid;
    private ResetState? _resetState;

    /// <summary>What <see cref="Reset"/> restores.</summary>
    private sealed class ResetState
    {
        public kvm_regs Regs;
        public kvm_sregs Sregs;
        public kvm_fpu Fpu;
        public kvm_lapic_state Lapic;
        public kvm_vcpu_events Events;
        public kvm_mp_state MpState;
    }

    private KvmVcpu(int id, SafeFdHandle fd, kvm_run* run, int mmapSize)
    {
        Id = id;
        _fd = fd;
        _run = run;
        _mmapSize = mmapSize;
    }

    public int Id { get; }

    internal static KvmVcpu Create(KvmVm vm, int id, int mmapSize)
    {
        var fd = Sys.IoctlFd(vm.Handle, K.KVM_CREATE_VCPU, id);
        if (fd.IsInvalid)
        {
            var errno = LastErrno;
            fd.Dispose();
            throw new HypervisorException($"KVM_CREATE_VCPU {id} failed: {Marshal.GetPInvokeErrorMessage(errno)}",
                new ErrnoException("KVM_CREATE_VCPU", errno));
        }
        var run = Sys.Mmap(0, (nuint)mmapSize, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED, fd.Fd, 0);
        if (run == Sys.MAP_FAILED)
        {
            var errno = LastErrno;
            fd.Dispose();
            ThrowErrno("mmap of kvm_run", errno);
        }
        return new KvmVcpu(id, fd, (kvm_run*)run, mmapSize);
    }

    public void BindToCurrentThread()
    {
        sigset_t kick, current;
        Sys.SigEmptySet(&kick);
        Sys.SigAddSet(&kick, KickSignal);
        var err = Sys.PthreadSigmask(Sys.SIG_BLOCK, &kick, &current);
        if (err != 0)
        {
            ThrowErrno("pthread_sigmask", err);
        }
        // While in the guest: the thread's mask as it was, minus the kick signal.
        Sys.SigDelSet(&current, KickSignal);
        var mask = stackalloc byte[sizeof(kvm_signal_mask) + sizeof(ulong)];
        ((kvm_signal_mask*)mask)->len = sizeof(ulong); // the kernel's sigset_t on x86-64
        *(ulong*)(mask + sizeof(kvm_signal_mask)) = current.__val[0];
        CheckIo(Sys.Ioctl(_fd, K.KVM_SET_SIGNAL_MASK, mask), "KVM_SET_SIGNAL_MASK");
        Volatile.Write(ref _tid, Sys.GetTid());
    }

    public void Kick()
    {
        var run = _run;
        if (run == null)
        {
            return;
        }
        Volatile.Write(ref run->immediate_exit, 1);
        var tid = Volatile.Read(ref _tid);
        if (tid != 0)
        {
            // ESRCH: the runner thread has already exited; nothing to interrupt.
            _ = Sys.Tgkill(Sys.GetPid(), tid, KickSignal);
        }
    }

    public VcpuExit Run()
    {
        var run = _run;
        var exit = default(VcpuExit);
        if (Sys.Ioctl(_fd, K.KVM_RUN, 0) < 0)
        {
            var errno = LastErrno;
            if (errno == (int)Errno.EINTR || errno == (int)Errno.EAGAIN)
            {
                Volatile.Write(ref run->immediate_exit, 0);
                DrainKicks();
                exit.Kind = VcpuExitKind.Interrupted;
            }
            else
            {
                exit.Kind = VcpuExitKind.RunFailed;
                exit.Errno = errno;
            }
            return exit;
        }

        switch (run->exit_reason)
        {
            case K.KVM_EXIT_IO:
            {
                ref var io = ref run->io;
                var length = (ulong)io.size * io.count;
                if (io.data_offset > (ulong)_mmapSize || length > (ulong)_mmapSize - io.data_offset)
                {
                    exit.Kind = VcpuExitKind.Unhandled;
                    exit.HardwareReason = K.KVM_EXIT_IO;
                    break;
                }
                exit.Kind = io.direction == K.KVM_EXIT_IO_OUT ? VcpuExitKind.IoOut : VcpuExitKind.IoIn;
                exit.Port = io.port;
                exit.Size = io.size;
                exit.Count = (int)io.count;
                exit.Data = new Span<byte>((byte*)run + io.data_offset, (int)length);
                break;
            }
            case K.KVM_EXIT_MMIO:
            {
                ref var mmio = ref run->mmio;
                exit.Kind = mmio.is_write != 0 ? VcpuExitKind.MmioWrite : VcpuExitKind.MmioRead;
                exit.Address = mmio.phys_addr;
                exit.Size = (int)Math.Min(mmio.len, 8u);
                exit.Count = 1;
                exit.Data = new Span<byte>(run->mmio.data, exit.Size);
                break;
            }
            case K.KVM_EXIT_HLT:
                exit.Kind = VcpuExitKind.Halt;
                break;
            case K.KVM_EXIT_SHUTDOWN:
                exit.Kind = VcpuExitKind.TripleFault;
                break;
            case K.KVM_EXIT_SYSTEM_EVENT:
                exit.Kind = run->system_event.type switch
                {
                    K.KVM_SYSTEM_EVENT_SHUTDOWN => VcpuExitKind.PowerOff,
                    K.KVM_SYSTEM_EVENT_RESET => VcpuExitKind.Reset,
                    K.KVM_SYSTEM_EVENT_CRASH => VcpuExitKind.Crash,
                    _ => VcpuExitKind.Unhandled,
                };
                exit.Detail = run->system_event.type;
                exit.HardwareReason = K.KVM_EXIT_SYSTEM_EVENT;
                break;
            case K.KVM_EXIT_INTERNAL_ERROR:
                exit.Kind = VcpuExitKind.InternalError;
                exit.Detail = run->@internal.suberror;
                break;
            case K.KVM_EXIT_FAIL_ENTRY:
                exit.Kind = VcpuExitKind.FailedEntry;
                exit.HardwareReason = run->fail_entry.hardware_entry_failure_reason;
                break;
            case K.KVM_EXIT_INTR:
                exit.Kind = VcpuExitKind.Interrupted;
                break;
            case K.KVM_EXIT_UNKNOWN:
                exit.Kind = VcpuExitKind.Unhandled;
                exit.HardwareReason = run->hw.hardware_exit_reason;
                break;
            default:
                exit.Kind = VcpuExitKind.Unhandled;
                exit.HardwareReason = run->exit_reason;
                break;
        }
        return exit;
    }

    private static void DrainKicks()
    {
        sigset_t kick;
        Sys.SigEmptySet(&kick);
        Sys.SigAddSet(&kick, KickSignal);
        var zero = default(timespec);
        while (Sys.SigTimedWait(&kick, null, &zero) == KickSignal)
        {
        }
    }

    public GeneralRegisters GetGeneralRegisters()
    {
        kvm_regs regs;
        CheckIo(Sys.Ioctl(_fd, K.KVM_GET_REGS, &regs), "KVM_GET_REGS");
        return KvmConvert.FromKvm(regs);
    }

    public void SetGeneralRegisters(in GeneralRegisters regs)
    {
        var k = KvmConvert.ToKvm(regs);
        CheckIo(Sys.Ioctl(_fd, K.KVM_SET_REGS, &k), "KVM_SET_REGS");
    }

    public SpecialRegisters GetSpecialRegisters()
    {
        kvm_sregs sregs;
        CheckIo(Sys.Ioctl(_fd, K.KVM_GET_SREGS, &sregs), "KVM_GET_SREGS");
        return KvmConvert.FromKvm(sregs);
    }

    public void SetSpecialRegisters(in SpecialRegisters sregs)
    {
        kvm_sregs k;
        CheckIo(Sys.Ioctl(_fd, K.KVM_GET_SREGS, &k), "KVM_GET_SREGS");
        KvmConvert.ToKvm(sregs, ref k);
        CheckIo(Sys.Ioctl(_fd, K.KVM_SET_SREGS, &k), "KVM_SET_SREGS");
    }

    public void SetFpu(in FpuControl fpu)
    {
        kvm_fpu k;
        CheckIo(Sys.Ioctl(_fd, K.KVM_GET_FPU, &k), "KVM_GET_FPU");
        k.fcw = fpu.Fcw;
        k.mxcsr = fpu.Mxcsr;
        CheckIo(Sys.Ioctl(_fd, K.KVM_SET_FPU, &k), "KVM_SET_FPU");
    }

    public void SetCpuid(ReadOnlySpan<CpuidEntry> entries)
    {
        var bytes = sizeof(kvm_cpuid2) + entries.Length * sizeof(kvm_cpuid_entry2);
        var buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            ((kvm_cpuid2*)buffer)->nent = (uint)entries.Length;
            var dst = (kvm_cpuid_entry2*)(buffer + sizeof(kvm_cpuid2));
            for (var i = 0; i < entries.Length; i++)
            {
                dst[i] = KvmConvert.ToKvm(entries[i]);
            }
            CheckIo(Sys.Ioctl(_fd, K.KVM_SET_CPUID2, buffer), "KVM_SET_CPUID2");
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    public void SetMsrs(ReadOnlySpan<MsrValue> msrs)
    {
        var bytes = sizeof(kvm_msrs) + msrs.Length * sizeof(kvm_msr_entry);
        var buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            ((kvm_msrs*)buffer)->nmsrs = (uint)msrs.Length;
            var dst = (kvm_msr_entry*)(buffer + sizeof(kvm_msrs));
            for (var i = 0; i < msrs.Length; i++)
            {
                dst[i].index = msrs[i].Index;
                dst[i].data = msrs[i].Value;
            }
            // Returns how many were set; it stops at the first MSR KVM refuses.
            var set = CheckIo(Sys.Ioctl(_fd, K.KVM_SET_MSRS, buffer), "KVM_SET_MSRS");
            if (set < msrs.Length)
            {
                throw new HypervisorException(
                    $"KVM refused to set MSR 0x{msrs[set].Index:X} to 0x{msrs[set].Value:X} on vCPU {Id}");
            }
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    public bool TrySetMsr(uint index, ulong value)
    {
        var buffer = stackalloc byte[sizeof(kvm_msrs) + sizeof(kvm_msr_entry)];
        new Span<byte>(buffer, sizeof(kvm_msrs) + sizeof(kvm_msr_entry)).Clear();
        ((kvm_msrs*)buffer)->nmsrs = 1;
        var entry = (kvm_msr_entry*)(buffer + sizeof(kvm_msrs));
        entry->index = index;
        entry->data = value;
        return CheckIo(Sys.Ioctl(_fd, K.KVM_SET_MSRS, buffer), "KVM_SET_MSRS") == 1;
    }

    public void SaveResetState()
    {
        var s = new ResetState();
        fixed (kvm_regs* regs = &s.Regs)
        fixed (kvm_sregs* sregs = &s.Sregs)
        fixed (kvm_fpu* fpu = &s.Fpu)
        fixed (kvm_lapic_state* lapic = &s.Lapic)
        fixed (kvm_vcpu_events* events = &s.Events)
        fixed (kvm_mp_state* mp = &s.MpState)
        {
            CheckIo(Sys.Ioctl(_fd, K.KVM_GET_REGS, regs), "KVM_GET_REGS");
            CheckIo(Sys.Ioctl(_fd, K.KVM_GET_SREGS, sregs), "KVM_GET_SREGS");
            CheckIo(Sys.Ioctl(_fd, K.KVM_GET_FPU, fpu), "KVM_GET_FPU");
            CheckIo(Sys.Ioctl(_fd, K.KVM_GET_LAPIC, lapic), "KVM_GET_LAPIC");
            CheckIo(Sys.Ioctl(_fd, K.KVM_GET_VCPU_EVENTS, events), "KVM_GET_VCPU_EVENTS");
            CheckIo(Sys.Ioctl(_fd, K.KVM_GET_MP_STATE, mp), "KVM_GET_MP_STATE");
        }
        _resetState = s;
    }

    public void Reset()
    {
        var s = _resetState ?? throw new InvalidOperationException($"vCPU {Id} has no saved reset state (call SaveResetState after configuring it)");
        // Control registers and EFER first, so that the rest is interpreted in the reset mode;
        // the MP state last, so that an AP goes back to waiting for INIT/SIPI.
        fixed (kvm_regs* regs = &s.Regs)
        fixed (kvm_sregs* sregs = &s.Sregs)
        fixed (kvm_fpu* fpu = &s.Fpu)
        fixed (kvm_lapic_state* lapic = &s.Lapic)
        fixed (kvm_vcpu_events* events = &s.Events)
        fixed (kvm_mp_state* mp = &s.MpState)
        {
            CheckIo(Sys.Ioctl(_fd, K.KVM_SET_SREGS, sregs), "KVM_SET_SREGS");
            CheckIo(Sys.Ioctl(_fd, K.KVM_SET_REGS, regs), "KVM_SET_REGS");
            CheckIo(Sys.Ioctl(_fd, K.KVM_SET_FPU, fpu), "KVM_SET_FPU");
            CheckIo(Sys.Ioctl(_fd, K.KVM_SET_LAPIC, lapic), "KVM_SET_LAPIC");
            CheckIo(Sys.Ioctl(_fd, K.KVM_SET_VCPU_EVENTS, events), "KVM_SET_VCPU_EVENTS");
            CheckIo(Sys.Ioctl(_fd, K.KVM_SET_MP_STATE, mp), "KVM_SET_MP_STATE");
        }
    }

    public ulong GetMsr(uint index)
    {
        var buffer = stackalloc byte[sizeof(kvm_msrs) + sizeof(kvm_msr_entry)];
        new Span<byte>(buffer, sizeof(kvm_msrs) + sizeof(kvm_msr_entry)).Clear();
        ((kvm_msrs*)buffer)->nmsrs = 1;
        var entry = (kvm_msr_entry*)(buffer + sizeof(kvm_msrs));
        entry->index = index;
        if (CheckIo(Sys.Ioctl(_fd, K.KVM_GET_MSRS, buffer), "KVM_GET_MSRS") != 1)
        {
            throw new HypervisorException($"KVM cannot read MSR 0x{index:X} on vCPU {Id}");
        }
        return entry->data;
    }

    public VcpuMpState GetMpState()
    {
        kvm_mp_state s;
        CheckIo(Sys.Ioctl(_fd, K.KVM_GET_MP_STATE, &s), "KVM_GET_MP_STATE");
        return s.mp_state switch
        {
            K.KVM_MP_STATE_RUNNABLE => VcpuMpState.Runnable,
            K.KVM_MP_STATE_UNINITIALIZED => VcpuMpState.Uninitialized,
            K.KVM_MP_STATE_INIT_RECEIVED => VcpuMpState.InitReceived,
            K.KVM_MP_STATE_HALTED => VcpuMpState.Halted,
            K.KVM_MP_STATE_SIPI_RECEIVED => VcpuMpState.SipiReceived,
            var other => throw new HypervisorException($"vCPU {Id} is in KVM mp_state {other}, which this VMM does not model"),
        };
    }

    public void SetMpState(VcpuMpState state)
    {
        var s = new kvm_mp_state
        {
            mp_state = state switch
            {
                VcpuMpState.Runnable => K.KVM_MP_STATE_RUNNABLE,
                VcpuMpState.Uninitialized => K.KVM_MP_STATE_UNINITIALIZED,
                VcpuMpState.InitReceived => K.KVM_MP_STATE_INIT_RECEIVED,
                VcpuMpState.Halted => K.KVM_MP_STATE_HALTED,
                VcpuMpState.SipiReceived => K.KVM_MP_STATE_SIPI_RECEIVED,
                _ => throw new ArgumentOutOfRangeException(nameof(state)),
            },
        };
        CheckIo(Sys.Ioctl(_fd, K.KVM_SET_MP_STATE, &s), "KVM_SET_MP_STATE");
    }

    public void ConfigureLocalApicVirtualWire()
    {
        kvm_lapic_state lapic;
        CheckIo(Sys.Ioctl(_fd, K.KVM_GET_LAPIC, &lapic), "KVM_GET_LAPIC");
        var regs = new Span<byte>(lapic.regs, K.KVM_APIC_REG_SIZE);
        LocalApic.SetVirtualWire(regs);
        CheckIo(Sys.Ioctl(_fd, K.KVM_SET_LAPIC, &lapic), "KVM_SET_LAPIC");
    }

    public string DumpState()
    {
        var sb = new StringBuilder();
        var ic = CultureInfo.InvariantCulture;
        sb.Append(ic, $"vCPU {Id}");
        try
        {
            var r = GetGeneralRegisters();
            sb.Append(ic, $"\n rax={r.Rax:X16} rbx={r.Rbx:X16} rcx={r.Rcx:X16} rdx={r.Rdx:X16}");
            sb.Append(ic, $"\n rsi={r.Rsi:X16} rdi={r.Rdi:X16} rsp={r.Rsp:X16} rbp={r.Rbp:X16}");
            sb.Append(ic, $"\n r8 ={r.R8:X16} r9 ={r.R9:X16} r10={r.R10:X16} r11={r.R11:X16}");
            sb.Append(ic, $"\n r12={r.R12:X16} r13={r.R13:X16} r14={r.R14:X16} r15={r.R15:X16}");
            sb.Append(ic, $"\n rip={r.Rip:X16} rflags={r.Rflags:X16}");
            var s = GetSpecialRegisters();
            sb.Append(ic, $"\n cr0={s.Cr0:X16} cr2={s.Cr2:X16} cr3={s.Cr3:X16} cr4={s.Cr4:X16} efer={s.Efer:X16}");
            sb.Append(ic, $"\n cs: {s.Cs}\n ds: {s.Ds}\n ss: {s.Ss}\n tr: {s.Tr}");
            sb.Append(ic, $"\n gdt={s.Gdt.Base:X16}/{s.Gdt.Limit:X4} idt={s.Idt.Base:X16}/{s.Idt.Limit:X4} apic_base={s.ApicBase:X16}");
            var run = _run;
            if (run != null && run->exit_reason == K.KVM_EXIT_INTERNAL_ERROR)
            {
                sb.Append(ic, $"\n internal error suberror={run->@internal.suberror} ndata={run->@internal.ndata}:");
                for (var i = 0; i < Math.Min(run->@internal.ndata, 16u); i++)
                {
                    sb.Append(ic, $" {run->@internal.data[i]:X}");
                }
            }
        }
        catch (ErrnoException e)
        {
            sb.Append(ic, $"\n (registers unavailable: {e.Message})");
        }
        return sb.ToString();
    }

    public void Dispose()
    {
        var run = _run;
        _run = null;
        if (run != null)
        {
            _ = Sys.Munmap((nint)run, (nuint)_mmapSize);
        }
        _fd.Dispose();
    }
}

using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;

namespace Propolis.Crucible.Dsc;

/// <summary>How a child process ended: an exit code, or the signal that killed it.</summary>
public readonly record struct ChildExit(int? ExitCode, int? Signal)
{
    public override string ToString() => ExitCode is int code ? $"exit status: {code}" : $"signal: {Signal}";
}

/// <summary>
/// A child process started with posix_spawn(3), its stdout and stderr going straight to a
/// file (so that its log outlives this process), waited for on a thread of its own with
/// waitid(WNOWAIT) so that it is only ever signalled while it exists (never a reused pid).
/// </summary>
public sealed class ChildProcess
{
    private readonly object _lock = new();
    private readonly TaskCompletionSource<ChildExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _reaped;

    private ChildProcess(int pid) => Pid = pid;

    public int Pid { get; }

    /// <summary>Completes when the process has ended (and been reaped).</summary>
    public Task<ChildExit> Exited => _exited.Task;

    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>
    /// Starts <paramref name="path"/> with <paramref name="arguments"/> and this process's
    /// environment. <paramref name="outputFile"/>, if given, is created (truncated) and
    /// receives stdout and stderr; otherwise they are inherited. With
    /// <paramref name="newProcessGroup"/> the child leads a process group of its own, so that
    /// it and everything it starts can be signalled at once (<see cref="SignalGroup"/>).
    /// </summary>
    public static unsafe ChildProcess Start(string path, IReadOnlyList<string> arguments, string? outputFile = null,
        bool newProcessGroup = false)
    {
        SafeHandleFile? output = null;
        if (outputFile is not null)
        {
            output = new SafeHandleFile(File.OpenHandle(outputFile, FileMode.Create, FileAccess.Write, FileShare.ReadWrite));
        }
        byte* fileActions = (byte*)NativeMemory.AllocZeroed(Interop.Sys.SpawnFileActionsSize);
        byte* attr = (byte*)NativeMemory.AllocZeroed(Interop.Sys.SpawnAttrSize);
        byte* sigset = (byte*)NativeMemory.AllocZeroed(Interop.Sys.SigSetSize);
        byte* sigdef = (byte*)NativeMemory.AllocZeroed(Interop.Sys.SigSetSize);
        var strings = new List<IntPtr>();
        try
        {
            Check(Interop.Sys.PosixSpawnFileActionsInit(fileActions), "posix_spawn_file_actions_init");
            Check(Interop.Sys.PosixSpawnAttrInit(attr), "posix_spawnattr_init");
            if (output is not null)
            {
                int fd = (int)output.Handle.DangerousGetHandle();
                Check(Interop.Sys.PosixSpawnFileActionsAddDup2(fileActions, fd, 1), "posix_spawn_file_actions_adddup2");
                Check(Interop.Sys.PosixSpawnFileActionsAddDup2(fileActions, fd, 2), "posix_spawn_file_actions_adddup2");
            }
            // The child starts with no signal blocked and SIGPIPE at its default (.NET ignores it,
            // and an ignored disposition would survive exec).
            Interop.Sys.SigEmptySet(sigset);
            Interop.Sys.SigEmptySet(sigdef);
            Interop.Sys.SigAddSet(sigdef, Interop.Sys.SIGPIPE);
            Check(Interop.Sys.PosixSpawnAttrSetSigMask(attr, sigset), "posix_spawnattr_setsigmask");
            Check(Interop.Sys.PosixSpawnAttrSetSigDefault(attr, sigdef), "posix_spawnattr_setsigdefault");
            short flags = Interop.Sys.POSIX_SPAWN_SETSIGMASK | Interop.Sys.POSIX_SPAWN_SETSIGDEF;
            if (newProcessGroup)
            {
                flags |= Interop.Sys.POSIX_SPAWN_SETPGROUP;
                Check(Interop.Sys.PosixSpawnAttrSetPGroup(attr, 0), "posix_spawnattr_setpgroup");
            }
            Check(Interop.Sys.PosixSpawnAttrSetFlags(attr, flags), "posix_spawnattr_setflags");

            byte* pathZ = Utf8Z(path, strings);
            byte** argv = (byte**)NativeMemory.AllocZeroed((nuint)(arguments.Count + 2), (nuint)sizeof(byte*));
            strings.Add((IntPtr)argv);
            argv[0] = pathZ;
            for (int i = 0; i < arguments.Count; i++)
            {
                argv[i + 1] = Utf8Z(arguments[i], strings);
            }
            var env = Environment.GetEnvironmentVariables();
            byte** envp = (byte**)NativeMemory.AllocZeroed((nuint)(env.Count + 1), (nuint)sizeof(byte*));
            strings.Add((IntPtr)envp);
            int e = 0;
            foreach (System.Collections.DictionaryEntry entry in env)
            {
                envp[e++] = Utf8Z($"{entry.Key}={entry.Value}", strings);
            }

            int error = Interop.Sys.PosixSpawn(out int pid, pathZ, fileActions, attr, argv, envp);
            if (error != 0)
            {
                throw new Win32Exception(error, $"cannot run {path}: {new Win32Exception(error).Message}");
            }
            var child = new ChildProcess(pid);
            var waiter = new Thread(child.WaitForExit) { IsBackground = true, Name = $"wait {pid}" };
            waiter.Start();
            return child;
        }
        finally
        {
            Interop.Sys.PosixSpawnFileActionsDestroy(fileActions);
            Interop.Sys.PosixSpawnAttrDestroy(attr);
            NativeMemory.Free(fileActions);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigset);
            NativeMemory.Free(sigdef);
            foreach (IntPtr p in strings)
            {
                NativeMemory.Free((void*)p);
            }
            output?.Dispose();
        }
    }

    /// <summary>Sends <paramref name="signal"/> to the process; false if it has already ended.</summary>
    public bool Signal(int signal)
    {
        lock (_lock)
        {
            return !_reaped && Interop.Sys.Kill(Pid, signal) == 0;
        }
    }

    /// <summary>Sends <paramref name="signal"/> to the process group the child leads (see <c>newProcessGroup</c>).</summary>
    public bool SignalGroup(int signal)
    {
        // The group outlives its leader while members remain, so this is not limited to a live child.
        return Interop.Sys.Kill(-Pid, signal) == 0;
    }

    private unsafe void WaitForExit()
    {
        byte* info = stackalloc byte[Interop.Sys.SigInfoSize];
        while (true)
        {
            new Span<byte>(info, Interop.Sys.SigInfoSize).Clear();
            if (Interop.Sys.WaitId(Interop.Sys.P_PID, Pid, info, Interop.Sys.WEXITED | Interop.Sys.WNOWAIT) == 0)
            {
                break;
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Interop.Sys.EINTR)
            {
                _exited.TrySetException(new Win32Exception(errno, $"waitid for {Pid} failed"));
                return;
            }
        }
        int code = *(int*)(info + Interop.Sys.SigInfoCodeOffset);
        int status = *(int*)(info + Interop.Sys.SigInfoStatusOffset);
        lock (_lock)
        {
            int ignored;
            Interop.Sys.WaitPid(Pid, &ignored, 0);
            _reaped = true;
        }
        _exited.TrySetResult(code == Interop.Sys.CLD_EXITED ? new ChildExit(status, null) : new ChildExit(null, status));
    }

    private static unsafe byte* Utf8Z(string s, List<IntPtr> owned)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        owned.Add((IntPtr)p);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }

    private static void Check(int error, string what)
    {
        if (error != 0)
        {
            throw new Win32Exception(error, $"{what}: {new Win32Exception(error).Message}");
        }
    }

    /// <summary>Keeps the output file's descriptor open until the child has its copy.</summary>
    private sealed class SafeHandleFile(Microsoft.Win32.SafeHandles.SafeFileHandle handle) : IDisposable
    {
        public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; } = handle;

        public void Dispose() => Handle.Dispose();
    }
}

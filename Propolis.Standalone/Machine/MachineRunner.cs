using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Propolis.Standalone.Api;
using Propolis.Core.Chardev;
using Propolis.Core.Lifecycle;
using Propolis.Core.Vmm;
using Propolis.Core.Vmm.Kvm;
using Propolis.Standalone.Spec;

namespace Propolis.Standalone.Machine;

/// <summary>propolis-standalone's run path: build the machine, serve the console, start the
/// guest when the first console client connects, drive the instance until the guest halts or
/// reboots or the host says stop, tear everything down and pick the exit code.</summary>
/// <remarks>
/// Exit codes: <c>exit_on_halt</c> (default 0) when the guest halts or powers off and when the
/// host stops the VM (SIGINT, SIGTERM); <c>exit_on_reboot</c> when the guest reboots and it is
/// set (otherwise the guest is reset and keeps running); 1 when the machine cannot be built or
/// fails while running.
/// With <c>--api ADDR</c>, the management API (<see cref="ManagementApi"/>) listens from before the
/// machine is built (a taken address ends the run first, with exit 1) and reconfigures the
/// machine's Crucible volumes while the instance runs.
/// </remarks>
internal static partial class MachineRunner
{
    public static int Run(MachineSpec spec, ILoggerFactory loggerFactory, TextWriter stderr, string program, IPEndPoint? apiAddress = null)
    {
        var log = loggerFactory.CreateLogger(program);
        var board = spec.Board;

        var unsupported = UnsupportedDevices.Find(spec);
        if (unsupported.Count > 0)
        {
            foreach (var problem in unsupported)
                stderr.WriteLine($"{program}: {board.Name}: {problem}");
            stderr.WriteLine($"{program}: {board.Name}: nothing was started");
            return Cli.ExitRuntimeFailure;
        }

        if (HostMemory.TotalMiB() is { } hostMiB && board.MemoryMiB > hostMiB)
        {
            stderr.WriteLine($"{program}: {board.Name}: [main] memory = {board.MemoryMiB} MiB, but this host has only {hostMiB} MiB of RAM; lower memory");
            return Cli.ExitRuntimeFailure;
        }

        var api = new ManagementApi(loggerFactory.CreateLogger("api"));
        ApiServer? apiServer = null;
        if (apiAddress is not null)
        {
            try
            {
                apiServer = ApiServer.Start(apiAddress, api, loggerFactory.CreateLogger("api"));
            }
            catch (ApiBindException e)
            {
                stderr.WriteLine($"{program}: {board.Name}: {e.Message}; nothing was started");
                return Cli.ExitRuntimeFailure;
            }
        }
        using var apiServing = apiServer;

        // The instance exists before anything else, so that a signal at any point has somewhere to go.
        var sink = new InstanceSink();
        using var stopSignalled = new ManualResetEventSlim();
        var signals = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // no default termination: the instance tears down
            var n = Interlocked.Increment(ref signals);
            var name = context.Signal.ToString();
            if (n == 1)
                LogStopping(log, name);
            sink.Post(new InstanceEvent(InstanceEventKind.HostStop, name));
            stopSignalled.Set();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        KvmHypervisor hypervisor;
        try
        {
            hypervisor = KvmHypervisor.Open();
        }
        catch (HypervisorException e)
        {
            foreach (var line in DescribeHypervisorFailure(e, KvmHypervisor.DefaultDevicePath, program))
                stderr.WriteLine(line);
            return Cli.ExitRuntimeFailure;
        }

        using (hypervisor)
        {
            KvmMachine machine;
            try
            {
                machine = KvmMachine.Create(hypervisor, spec, sink, sink.Post, loggerFactory);
            }
            catch (MachineException e)
            {
                stderr.WriteLine($"{program}: {board.Name}: {e.Message}");
                return Cli.ExitRuntimeFailure;
            }
            catch (HypervisorException e)
            {
                stderr.WriteLine($"{program}: {board.Name}: KVM refused the machine: {e.Message}");
                return Cli.ExitRuntimeFailure;
            }

            using (machine)
            {
                var instance = new Instance(machine, machine.Devices,
                    board.ExitOnReboot is null ? RebootPolicy.ResetInPlace : RebootPolicy.Stop,
                    loggerFactory.CreateLogger<Instance>());
                sink.Attach(instance);

                ConsoleSocket console;
                try
                {
                    console = ConsoleSocket.Create(spec.Console.Com1SocketPath, machine.ComPorts.Com1, loggerFactory.CreateLogger("console"));
                }
                catch (IOException e)
                {
                    stderr.WriteLine($"{program}: {board.Name}: {e.Message}");
                    return Cli.ExitRuntimeFailure;
                }

                api.Attach(CrucibleVolume.FromDevices(machine.Devices),
                    [.. machine.Devices.OfType<StorageDevices.Disk>().Select(d => d.BlockDev).DistinctBy(b => b.Name)]);
                InstanceOutcome outcome;
                using (console)
                {
                    LogWaiting(log, board.Name, spec.Console.Com1SocketPath);
                    var firstClient = console.WaitForFirstClientAsync();
                    while (!firstClient.IsCompleted && !stopSignalled.IsSet)
                        stopSignalled.Wait(100);
                    if (firstClient.IsCompletedSuccessfully)
                        LogStarting(log, board.Name, board.Cpus, board.MemoryMiB);
                    outcome = instance.Run();
                }
                api.Detach("the VM has stopped");
                var code = outcome.Kind switch
                {
                    InstanceOutcomeKind.HostStopped or InstanceOutcomeKind.GuestHalted => board.ExitOnHalt,
                    InstanceOutcomeKind.GuestRebooted => board.ExitOnReboot ?? board.ExitOnHalt,
                    _ => Cli.ExitRuntimeFailure,
                };
                if (outcome.Kind == InstanceOutcomeKind.Failed)
                    LogFailed(log, board.Name, outcome.Detail);
                LogExit(log, board.Name, outcome.Kind, code);
                return code;
            }
        }
    }

    /// <summary>What to print when KVM cannot be opened: its message (which says what to do),
    /// and where the device is missing altogether, how to run in the repository's sandbox VM.</summary>
    internal static IReadOnlyList<string> DescribeHypervisorFailure(HypervisorException e, string devicePath, string program)
    {
        var lines = new List<string> { $"{program}: {e.Message}" };
        if (!File.Exists(devicePath))
            lines.Add($"{program}: (from a checkout of this repository, test/e2e/kvm-sandbox.sh --interactive -- {program} CONFIG runs it inside a small VM that has KVM)");
        return lines;
    }

    /// <summary>Hands vCPU and device events to the instance; events before it exists are kept.</summary>
    private sealed class InstanceSink : IVcpuEventSink
    {
        private readonly Lock _lock = new();
        private readonly List<InstanceEvent> _early = [];
        private Instance? _instance;

        public void Attach(Instance instance)
        {
            lock (_lock)
            {
                _instance = instance;
                foreach (var e in _early)
                    instance.Post(e);
                _early.Clear();
            }
        }

        public void Post(InstanceEvent e)
        {
            lock (_lock)
            {
                if (_instance is null)
                    _early.Add(e);
                else
                    _instance.Post(e);
            }
        }

        public void OnVcpuEvent(VcpuEvent vcpuEvent) => Post(Instance.FromVcpu(vcpuEvent));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Signal} received: stopping the VM (further signals are ignored)")]
    private static partial void LogStopping(ILogger logger, string signal);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name}: waiting for a console client on {Path} to start the guest")]
    private static partial void LogWaiting(ILogger logger, string name, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name}: console client connected; starting the guest ({Cpus} vCPUs, {MemoryMiB} MiB)")]
    private static partial void LogStarting(ILogger logger, string name, int cpus, long memoryMiB);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Name}: the VM failed: {Detail}")]
    private static partial void LogFailed(ILogger logger, string name, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name}: {Outcome}; exiting with status {Code}")]
    private static partial void LogExit(ILogger logger, string name, InstanceOutcomeKind outcome, int code);
}

/// <summary>The host's RAM, from /proc/meminfo.</summary>
internal static class HostMemory
{
    public static long? TotalMiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)
                    && long.TryParse(line.AsSpan(9).Trim().TrimEnd("kB").Trim(), out var kib))
                    return kib / 1024;
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}

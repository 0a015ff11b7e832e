using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Propolis.Crucible.Http;

namespace Propolis.Crucible.Dsc;

/// <summary>
/// dsc's command line, as the real dsc's (crucible dsc/src/main.rs, clap):
/// <c>dsc create|start [OPTIONS]</c> and <c>dsc cmd [--server URL] SUBCOMMAND</c>.
/// Exit status: 0 success, 1 failure (the message says what and where), 64 bad command line.
/// </summary>
public static class Cli
{
    public const int ExitSuccess = 0;
    public const int ExitFailure = 1;
    public const int ExitUsage = 64;

    public const string DefaultDsBin = "target/release/crucible-downstairs";
    public const string DefaultOutputDir = "/tmp/dsc";
    public const string DefaultRegionDir = "/var/tmp/dsc/region";
    public const string DefaultControl = "127.0.0.1:9998";
    public const string DefaultServer = "http://127.0.0.1:9998";
    public const int DefaultPortBase = 8810;

    /// <summary>The options <c>create</c> and <c>start</c> share.</summary>
    internal sealed class RegionOptions
    {
        public Option<ulong> BlockSize { get; } = new("--block-size") { Description = "The block size for the region", DefaultValueFactory = _ => 4096 };
        public Option<bool> Cleanup { get; } = new("--cleanup") { Description = "Delete all existing test and region directories" };
        public Option<string> DsBin { get; } = new("--ds-bin") { Description = "Downstairs binary location", DefaultValueFactory = _ => DefaultDsBin, HelpName = "PATH" };
        public Option<bool> Encrypted { get; } = new("--encrypted") { Description = "If the regions will require encryption" };
        public Option<ulong> ExtentSize { get; } = new("--extent-size") { Description = "The extent size for the region (in blocks NOT bytes!)", DefaultValueFactory = _ => 100 };
        public Option<uint> ExtentCount { get; } = new("--extent-count") { Description = "The extent count for the region", DefaultValueFactory = _ => 15 };
        public Option<string> OutputDir { get; } = new("--output-dir") { Description = "default output directory", DefaultValueFactory = _ => DefaultOutputDir, HelpName = "DIR" };
        public Option<int> PortBase { get; } = new("--port-base") { Description = "The port_base where the downstairs will listen (also part of each region's directory path)", DefaultValueFactory = _ => DefaultPortBase };
        public Option<string[]> RegionDir { get; } = new("--region-dir")
        {
            Description = "The directory where the downstairs regions will be created: once (shared, one subdirectory per downstairs) or once per downstairs. dsc adds the port to the path.",
            DefaultValueFactory = _ => [DefaultRegionDir],
            HelpName = "DIR",
        };
        public Option<int> RegionCount { get; } = new("--region-count") { Description = "The number of region directories to create", DefaultValueFactory = _ => 3 };

        public void AddTo(Command c)
        {
            c.Options.Add(BlockSize);
            c.Options.Add(Cleanup);
            c.Options.Add(DsBin);
            c.Options.Add(Encrypted);
            c.Options.Add(ExtentSize);
            c.Options.Add(ExtentCount);
            c.Options.Add(OutputDir);
            c.Options.Add(PortBase);
            c.Options.Add(RegionDir);
            c.Options.Add(RegionCount);
        }
    }

    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("A downstairs controller");

        var create = new Command("create", "Create a downstairs region then exit.");
        var co = new RegionOptions();
        co.AddTo(create);
        create.SetAction(p => Guard(stderr, () => Create(p, co, stdout)));
        root.Subcommands.Add(create);

        var start = new Command("start", "Start the requested downstairs regions. This requires the region is already created, unless you include the --create option.");
        var so = new RegionOptions();
        so.AddTo(start);
        var control = new Option<string>("--control") { Description = "The IP/Port where the control server will listen", DefaultValueFactory = _ => DefaultControl, HelpName = "ADDR:PORT" };
        var createFlag = new Option<bool>("--create") { Description = "Delete any existing region and create a new one using the default or provided block-size, extent-size, and extent-count" };
        var readOnly = new Option<bool>("--read-only") { Description = "Downstairs will all be started read only (default: false)" };
        start.Options.Add(control);
        start.Options.Add(createFlag);
        start.Options.Add(readOnly);
        start.Validators.Add(r =>
        {
            if (r.GetValue(so.Cleanup) && !r.GetValue(createFlag))
            {
                r.AddError("--cleanup requires --create");
            }
        });
        start.SetAction(p => Guard(stderr, () => Start(p, so, p.GetValue(control)!, p.GetValue(createFlag), p.GetValue(readOnly), stdout)));
        root.Subcommands.Add(start);

        root.Subcommands.Add(CmdCommand(stdout, stderr));

        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                stderr.WriteLine($"dsc: {error.Message}");
            }
            stderr.WriteLine("usage: dsc create|start [OPTIONS] | dsc cmd [--server URL] COMMAND (see dsc --help)");
            return ExitUsage;
        }
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    private static int Guard(TextWriter stderr, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (DscException e)
        {
            stderr.WriteLine($"dsc: {e.Message}");
            return ExitFailure;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"dsc: {e.Message}");
            return ExitFailure;
        }
    }

    private static int Create(ParseResult p, RegionOptions o, TextWriter stdout)
    {
        string outputDir = p.GetValue(o.OutputDir)!;
        string[] regionDirs = p.GetValue(o.RegionDir)!;
        if (p.GetValue(o.Cleanup))
        {
            DscInfo.Cleanup(outputDir, regionDirs, stdout);
        }
        var dsc = new DscInfo(p.GetValue(o.DsBin)!, outputDir, regionDirs, create: true, p.GetValue(o.PortBase),
            p.GetValue(o.RegionCount), readOnly: false, stdout);
        dsc.CreateRegions(p.GetValue(o.ExtentSize), p.GetValue(o.ExtentCount), p.GetValue(o.BlockSize), p.GetValue(o.Encrypted));
        return ExitSuccess;
    }

    private static int Start(ParseResult p, RegionOptions o, string controlText, bool create, bool readOnly, TextWriter stdout)
    {
        if (!IPEndPoint.TryParse(controlText, out IPEndPoint? controlAddress) || controlAddress.Port == 0 && !controlText.EndsWith(":0", StringComparison.Ordinal))
        {
            throw new DscException($"--control '{controlText}' is not an IP:PORT address (for example {DefaultControl})");
        }
        string outputDir = p.GetValue(o.OutputDir)!;
        string[] regionDirs = p.GetValue(o.RegionDir)!;
        if (p.GetValue(o.Cleanup))
        {
            DscInfo.Cleanup(outputDir, regionDirs, stdout);
        }
        else if (create)
        {
            foreach (string rd in regionDirs)
            {
                if (Directory.Exists(rd))
                {
                    stdout.WriteLine($"Removing existing region \"{rd}\"");
                    Directory.Delete(rd, recursive: true);
                }
            }
        }
        var dsc = new DscInfo(p.GetValue(o.DsBin)!, outputDir, regionDirs, create, p.GetValue(o.PortBase),
            p.GetValue(o.RegionCount), readOnly, stdout);
        if (create)
        {
            dsc.CreateRegions(p.GetValue(o.ExtentSize), p.GetValue(o.ExtentCount), p.GetValue(o.BlockSize), p.GetValue(o.Encrypted));
        }
        else
        {
            dsc.GenerateRegionSet();
        }

        using var listener = new Socket(controlAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(controlAddress);
            listener.Listen(64);
        }
        catch (SocketException e)
        {
            throw new DscException($"cannot listen on --control {controlAddress}: {e.Message}");
        }
        stdout.WriteLine($"start access at:{controlAddress}");
        using var stopServer = new CancellationTokenSource();
        var api = new ControlApi(dsc);
        Task server = HttpServer.ServeAsync(listener, api.Handle, null, stopServer.Token);
        stdout.WriteLine($"Control access at:{listener.LocalEndPoint}");

        // SIGINT and SIGTERM shut the downstairs down as `dsc cmd shutdown` does.
        using var signalled = new CancellationTokenSource();
        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            signalled.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        dsc.RunAsync(signalled.Token).GetAwaiter().GetResult();
        stopServer.Cancel();
        server.Wait(TimeSpan.FromSeconds(5));
        stdout.WriteLine("All downstairs have stopped");
        return ExitSuccess;
    }

    private static Command CmdCommand(TextWriter stdout, TextWriter stderr)
    {
        var cmd = new Command("cmd", "Send a command to a running dsc server");
        var server = new Option<string>("--server") { Description = "URL location of the Crucible control server", DefaultValueFactory = _ => DefaultServer, Recursive = true, HelpName = "URL" };
        cmd.Options.Add(server);

        void Add(string name, string description, Func<ControlClient.Command> make)
        {
            var c = new Command(name, description);
            c.SetAction(p => Guard(stderr, () => Send(p.GetValue(server)!, make(), stdout)));
            cmd.Subcommands.Add(c);
        }
        void AddCid(string name, string description, Func<uint, ControlClient.Command> make)
        {
            var c = new Command(name, description);
            var cid = new Option<uint>("--cid", "-c") { Description = "Client ID (0 to region count - 1)", Required = true };
            c.Options.Add(cid);
            c.SetAction(p => Guard(stderr, () => Send(p.GetValue(server)!, make(p.GetValue(cid)), stdout)));
            cmd.Subcommands.Add(c);
        }
        void AddValue(string name, string option, string description, Func<ulong, ControlClient.Command> make)
        {
            var c = new Command(name, description);
            var v = new Option<ulong>(option, "-m") { Description = "Seconds", Required = true };
            c.Options.Add(v);
            c.SetAction(p => Guard(stderr, () => Send(p.GetValue(server)!, make(p.GetValue(v)), stdout)));
            cmd.Subcommands.Add(c);
        }

        Add("all-running", "Returns true if all downstairs are running", ControlClient.AllRunning);
        Add("all-stopped", "Returns true if all downstairs are stopped", ControlClient.AllStopped);
        Add("disable-random-stop", "Disable random stopping of downstairs", () => ControlClient.Post("/randomstop/disable"));
        AddCid("disable-restart", "Disable auto restart on the given downstairs client ID", c => ControlClient.Post($"/disablerestart/cid/{c}"));
        Add("disable-restart-all", "Disable auto restart on all downstairs", () => ControlClient.Post("/disablerestart/all"));
        AddCid("enable-restart", "Enable automatic restart of the given client ID", c => ControlClient.Post($"/enablerestart/cid/{c}"));
        Add("enable-random-stop", "Enable the random stopping of any downstairs", () => ControlClient.Post("/randomstop/enable"));
        AddValue("enable-random-min", "--min", "Set the minimum random stop time (in seconds)", v => ControlClient.Post($"/randomstop/min/{v}"));
        AddValue("enable-random-max", "--max", "Set the maximum random stop time (in seconds)", v => ControlClient.Post($"/randomstop/max/{v}"));
        Add("enable-restart-all", "Enable auto restart on all downstairs", () => ControlClient.Post("/enablerestart/all"));
        AddCid("pid", "Get PID of the given client ID", ControlClient.Pid);
        AddCid("port", "Get port of the given client ID", ControlClient.Port);
        Add("read-only", "Show whether downstairs are running read-only", ControlClient.ReadOnly);
        Add("region-count", "Get count of regions.", ControlClient.RegionCount);
        Add("region-info", "Get region info.", ControlClient.RegionInfo);
        Add("shutdown", "Shutdown all downstairs, then shutdown dsc itself.", () => ControlClient.Post("/shutdown"));
        AddCid("start", "Start the downstairs at the given client ID", c => ControlClient.Post($"/start/cid/{c}"));
        Add("start-all", "Start all downstairs", () => ControlClient.Post("/start/all"));
        AddCid("state", "Get the state of the given client ID", ControlClient.State);
        AddCid("stop", "Stop the downstairs at the given client ID", c => ControlClient.Post($"/stop/cid/{c}"));
        Add("stop-all", "Stop all the downstairs", () => ControlClient.Post("/stop/all"));
        Add("stop-rand", "Stop a random downstairs", () => ControlClient.Post("/stop/rand"));
        AddCid("uuid", "Get the UUID of the given client ID", ControlClient.Uuid);
        return cmd;
    }

    private static int Send(string server, ControlClient.Command command, TextWriter stdout)
    {
        if (ControlClient.Run(server, command) is { } line)
        {
            stdout.WriteLine(line);
        }
        return ExitSuccess;
    }
}

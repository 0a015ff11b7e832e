using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net;
using Microsoft.Extensions.Logging;
using Propolis.Standalone.Api;
using Propolis.Standalone.Config;
using Propolis.Standalone.Spec;

namespace Propolis.Standalone;

/// <summary>The command line:
/// <c>propolis-standalone CONFIG [--check] [--log-level LEVEL] [--console PATH] [--api ADDR]</c>, and
/// <c>propolis-standalone vcr --api ADDR -u ID --vcr-replace FILE</c> (propolis-cli's <c>vcr</c>).</summary>
internal static class Cli
{
    public const int ExitSuccess = 0;
    /// <summary>The configuration was valid but the VM could not be run.</summary>
    public const int ExitRuntimeFailure = 1;
    /// <summary>The configuration file is missing, unreadable or invalid.</summary>
    public const int ExitConfigError = 2;
    /// <summary>The command line itself is wrong (sysexits.h EX_USAGE).</summary>
    public const int ExitUsage = 64;

    public const string DefaultConsolePath = "./ttya";
    private const string Program = "propolis-standalone";
    private const string RunUsage = "usage: " + Program + " CONFIG [--check] [--log-level LEVEL] [--console PATH] [--api ADDR] (see --help)";
    private const string VcrUsage = "usage: " + Program + " vcr --api ADDR -u ID --vcr-replace FILE (see vcr --help)";

    public static int Run(string[] args) =>
        Run(args, Console.Out, Console.Error, Environment.GetEnvironmentVariable,
            level => Logging.Create(level, terminal: !Console.IsErrorRedirected));

    /// <summary>Runs the command line with its streams, environment and logging given, so
    /// that tests can call it in-process.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr,
        Func<string, string?> environment, Func<LogLevel, ILoggerFactory> createLogging)
    {
        var configArg = new Argument<string>("CONFIG")
        {
            Description = "The VM's TOML configuration file",
        };
        var checkOption = new Option<bool>("--check")
        {
            Description = "Validate CONFIG, print the machine it describes, and exit",
        };
        var logOption = new Option<string?>("--log-level")
        {
            Description = "Least severe log level shown: trace, debug, info, warn or error [default: $PROPOLIS_LOG, else info]",
            HelpName = "LEVEL",
        };
        logOption.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string?>();
            if (!Logging.TryParseLevel(value, out _))
                result.AddError($"'{value}' is not a log level; use one of {string.Join(", ", Logging.LevelNames)}");
        });
        var consoleOption = new Option<string>("--console")
        {
            Description = "Where to create the Unix socket connected to COM1",
            HelpName = "PATH",
            DefaultValueFactory = _ => DefaultConsolePath,
        };

        var apiOption = new Option<IPEndPoint?>("--api")
        {
            Description = "Serve the management API (PUT /instance/disk/{id}/vcr) over HTTP on this IP:PORT",
            HelpName = "ADDR",
            CustomParser = ParseAddress,
        };
        apiOption.Validators.Add(result =>
        {
            if (result.Parent is CommandResult c && c.GetValue(checkOption))
                result.AddError("--api serves a running VM; --check runs none (drop one of them)");
        });

        var root = new RootCommand("Runs a virtual machine described by a TOML file on Linux KVM.")
        {
            configArg, checkOption, logOption, consoleOption, apiOption,
        };
        root.SetAction(parsed => Execute(
            parsed.GetValue(configArg)!,
            parsed.GetValue(checkOption),
            parsed.GetValue(logOption),
            parsed.GetValue(consoleOption) ?? DefaultConsolePath,
            parsed.GetValue(apiOption),
            stdout, stderr, environment, createLogging));

        var vcr = VcrCommand(stdout, stderr);
        root.Subcommands.Add(vcr);

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
                stderr.WriteLine($"{Program}: {error.Message}");
            stderr.WriteLine(parse.CommandResult.Command == vcr ? VcrUsage : RunUsage);
            return ExitUsage;
        }
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    /// <summary><c>vcr</c>: propolis-cli's <c>vcr -u UUID --vcr-replace FILE</c>, with the server
    /// given as <c>--api ADDR</c> (the address the VM's <c>--api</c> serves).</summary>
    private static Command VcrCommand(TextWriter stdout, TextWriter stderr)
    {
        var api = new Option<IPEndPoint?>("--api")
        {
            Description = "The IP:PORT a propolis-standalone serves its management API on (its --api)",
            HelpName = "ADDR",
            Required = true,
            CustomParser = ParseAddress,
        };
        var id = new Option<string>("--uuid", "-u")
        {
            Description = "The Crucible volume: its id (the block_dev's upstairs_id), or the block_dev's name",
            HelpName = "ID",
            Required = true,
        };
        var file = new Option<string>("--vcr-replace")
        {
            Description = "A JSON file: {\"name\": BLOCK_DEV, \"vcr_json\": \"VCR as a string\"} or {\"name\": BLOCK_DEV, \"vcr\": {VCR}}",
            HelpName = "FILE",
            Required = true,
        };
        var command = new Command("vcr", "Sends a volume construction request replacement to a running propolis-standalone (propolis-cli vcr); prints the result")
        {
            api, id, file,
        };
        command.SetAction(parsed => VcrClient.Run(parsed.GetValue(api)!, parsed.GetValue(id)!, parsed.GetValue(file)!, stdout, stderr, Program));
        return command;
    }

    /// <summary>IP:PORT (IPv6 as [ADDR]:PORT), with the port given.</summary>
    private static IPEndPoint? ParseAddress(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        var colon = text.LastIndexOf(':');
        if (colon > 0 && colon > text.LastIndexOf(']') && IPEndPoint.TryParse(text, out var address))
            return address;
        result.AddError($"'{text}' is not an IP:PORT address (for example 127.0.0.1:55400, or [::1]:55400)");
        return null;
    }

    private static int Execute(string configPath, bool check, string? logLevel, string consolePath, IPEndPoint? api,
        TextWriter stdout, TextWriter stderr, Func<string, string?> environment, Func<LogLevel, ILoggerFactory> createLogging)
    {
        var level = LogLevel.Information;
        if (logLevel is not null)
            Logging.TryParseLevel(logLevel, out level);
        else if (environment("PROPOLIS_LOG") is { Length: > 0 } fromEnv && !Logging.TryParseLevel(fromEnv, out level))
        {
            stderr.WriteLine($"{Program}: PROPOLIS_LOG='{fromEnv}' is not a log level; use one of {string.Join(", ", Logging.LevelNames)}");
            return ExitUsage;
        }

        using var logging = createLogging(level);
        var log = logging.CreateLogger(Program);

        if (Directory.Exists(configPath))
        {
            stderr.WriteLine($"{Program}: cannot read {configPath}: it is a directory");
            return ExitConfigError;
        }
        string text;
        try
        {
            text = ConfigLoader.ReadText(configPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException)
        {
            stderr.WriteLine($"{Program}: cannot read {(configPath.Length == 0 ? "''" : configPath)}: {Values.DescribeIoError(e)}");
            return ExitConfigError;
        }

        StandaloneConfig config;
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(configPath)) ?? Directory.GetCurrentDirectory();
            config = ConfigLoader.Load(text, configPath, dir);
        }
        catch (ConfigException e)
        {
            foreach (var error in e.Errors)
                stderr.WriteLine(error.ToString());
            stderr.WriteLine($"{Program}: {configPath}: {e.Errors.Count} error{(e.Errors.Count == 1 ? "" : "s")}; nothing was started");
            return ExitConfigError;
        }

        foreach (var warning in config.Warnings)
            stderr.WriteLine(warning.ToString());
        var spec = MachineSpec.From(config, consolePath);
        log.LogDebug("Configuration {Path} is valid: {Devices} devices, {BlockDevs} block backends",
            config.SourcePath, config.Devices.Count, config.BlockDevs.Count);
        if (config.Main.UseReservoir)
            log.LogInformation("use_reservoir is accepted for compatibility and has no effect on Linux (KVM has no memory reservoir)");

        if (check)
        {
            stdout.Write(SpecPrinter.Format(spec));
            return ExitSuccess;
        }

        return Machine.MachineRunner.Run(spec, logging, stderr, Program, api);
    }
}

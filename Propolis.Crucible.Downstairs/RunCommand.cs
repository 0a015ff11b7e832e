using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Propolis.Crucible.Tls;

namespace Propolis.Crucible.Downstairs;

/// <summary>
/// <c>crucible-downstairs run</c>: serves a region to upstairs on ADDRESS:PORT and its extents
/// to other downstairs (repair) on ADDRESS:PORT+4000, logging to stderr, until SIGINT or
/// SIGTERM (then exit status 0).
/// </summary>
internal static class RunCommand
{
    public static Command Build()
    {
        var address = new Option<string>("--address", "-a")
        {
            Description = "Address the downstairs will listen for the upstairs on.",
            DefaultValueFactory = _ => "0.0.0.0",
            HelpName = "ADDRESS",
        };
        address.Validators.Add(r =>
        {
            string? v = r.GetValueOrDefault<string>();
            if (!IPAddress.TryParse(v, out _))
            {
                r.AddError($"--address: '{v}' is not an IP address");
            }
        });
        var data = new Option<string>("--data", "-d")
        {
            Description = "Directory where the region is located.",
            Required = true,
            HelpName = "DIRECTORY",
        };
        var port = new Option<ushort>("--port", "-p")
        {
            Description = "Listen on this port for the upstairs to connect to us (the repair service uses port + 4000).",
            DefaultValueFactory = _ => (ushort)DownstairsRunOptions.DefaultPort,
        };
        var lossy = new Option<bool>("--lossy") { Description = "Test option, makes the search for new work sleep and sometimes skip doing work." };
        var readErrors = new Option<bool>("--read-errors") { Description = "Randomly return read errors" };
        var writeErrors = new Option<bool>("--write-errors") { Description = "Randomly return write errors" };
        var flushErrors = new Option<bool>("--flush-errors") { Description = "Randomly return flush errors" };
        var mode = new Option<string>("--mode")
        {
            Description = "ro (read-only) or rw.",
            DefaultValueFactory = _ => "rw",
            HelpName = "ro|rw",
        };
        mode.Validators.Add(r =>
        {
            string v = (r.GetValueOrDefault<string>() ?? "").ToLowerInvariant();
            if (v is not ("ro" or "rw"))
            {
                r.AddError($"--mode: '{r.GetValueOrDefault<string>()}' is not a valid mode! (ro or rw)");
            }
        });

        var certPem = new Option<string>("--cert-pem") { Description = "TLS: this downstairs' certificate (PEM; needs --key-pem and --root-cert-pem).", HelpName = "CERT_PEM" };
        var keyPem = new Option<string>("--key-pem") { Description = "TLS: the private key of --cert-pem (PEM).", HelpName = "KEY_PEM" };
        var rootCertPem = new Option<string>("--root-cert-pem") { Description = "TLS: the root certificate(s) upstairs client certificates must chain to (PEM).", HelpName = "ROOT_CERT_PEM" };

        var command = new Command("run", "Serve a region to upstairs (and its extents to other downstairs for repair).")
        {
            address, data, lossy, port, readErrors, writeErrors, flushErrors, certPem, keyPem, rootCertPem, mode,
        };
        // clap's requires_all: the three TLS options come together.
        command.Validators.Add(r =>
        {
            Option<string>[] tls = [certPem, keyPem, rootCertPem];
            string[] given = tls.Where(o => r.GetResult(o) is not null).Select(o => o.Name).ToArray();
            if (given.Length is > 0 and < 3)
            {
                r.AddError($"{given[0]} requires {string.Join(" and ", tls.Select(o => o.Name).Except(given))}");
            }
        });
        command.SetAction(parse =>
        {
            ushort p = parse.GetValue(port);
            if (p + RepairServer.RepairPortOffset > 65535)
            {
                throw new UsageException($"--port {p}: the repair port (port + {RepairServer.RepairPortOffset}) must be below 65536");
            }
            var options = new DownstairsRunOptions
            {
                Address = IPAddress.Parse(parse.GetValue(address)!),
                Port = p,
                DataDirectory = parse.GetValue(data)!,
                ReadOnly = parse.GetValue(mode)!.Equals("ro", StringComparison.OrdinalIgnoreCase),
                Lossy = parse.GetValue(lossy),
                ReadErrors = parse.GetValue(readErrors),
                WriteErrors = parse.GetValue(writeErrors),
                FlushErrors = parse.GetValue(flushErrors),
            };
            if (parse.GetValue(certPem) is { } cert)
            {
                try
                {
                    options = options with
                    {
                        Tls = CrucibleTlsContext.FromPaths(cert, parse.GetValue(keyPem)!, parse.GetValue(rootCertPem)!,
                            ("--cert-pem", "--key-pem", "--root-cert-pem")),
                    };
                }
                catch (CrucibleTlsException e)
                {
                    Console.Error.WriteLine($"crucible-downstairs: {e.Message}");
                    return Program.ExitFailed;
                }
            }
            try
            {
                return Run(options);
            }
            finally
            {
                options.Tls?.Dispose();
            }
        });
        return command;
    }

    private static int Run(DownstairsRunOptions options)
    {
        using ILoggerFactory loggers = LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(LogLevel.Information);
            builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
                o.ColorBehavior = Console.IsErrorRedirected ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Enabled;
            });
        });
        ILogger log = loggers.CreateLogger("crucible-downstairs");

        DownstairsHost host;
        try
        {
            host = DownstairsHost.Start(options, loggers);
        }
        catch (SocketException e)
        {
            log.LogError("cannot listen on {Address} port {Port} (or its repair port {RepairPort}): {Error}",
                options.Address, options.Port, options.Port + RepairServer.RepairPortOffset, e.Message);
            return Program.ExitFailed;
        }

        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            log.LogInformation("{Signal} received, shutting down", ctx.Signal);
            stop.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        try
        {
            host.Completion.WaitAsync(stop.Token).GetAwaiter().GetResult();
            log.LogError("the downstairs stopped serving");
            return Program.ExitFailed;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return Program.ExitOk;
        }
        finally
        {
            host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}

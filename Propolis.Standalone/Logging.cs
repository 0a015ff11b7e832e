using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Propolis.Standalone;

/// <summary>The process's log: everything goes to stderr, one line per event; a compact
/// human format on a terminal, one JSON object per line otherwise (for files and
/// collectors), as upstream propolis-standalone does with slog's term and bunyan drains.</summary>
internal static class Logging
{
    /// <summary>The level names accepted by <c>--log-level</c> and <c>PROPOLIS_LOG</c>,
    /// case-insensitively (slog's names; "warning" and "critical" are also taken).</summary>
    public static readonly string[] LevelNames = { "trace", "debug", "info", "warn", "error" };

    public static bool TryParseLevel(string? text, out LogLevel level)
    {
        level = (text ?? "").Trim().ToLowerInvariant() switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "info" => LogLevel.Information,
            "warn" or "warning" => LogLevel.Warning,
            "error" => LogLevel.Error,
            "critical" or "crit" => LogLevel.Critical,
            _ => LogLevel.None,
        };
        return level != LogLevel.None;
    }

    public static ILoggerFactory Create(LogLevel minimum, bool terminal) =>
        LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(minimum);
            builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            if (terminal)
            {
                builder.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.TimestampFormat = "HH:mm:ss.fff ";
                    o.ColorBehavior = LoggerColorBehavior.Enabled;
                    o.IncludeScopes = true;
                });
            }
            else
            {
                builder.AddJsonConsole(o =>
                {
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                    o.UseUtcTimestamp = true;
                    o.IncludeScopes = true;
                    o.JsonWriterOptions = new JsonWriterOptions { Indented = false };
                });
            }
        });
}

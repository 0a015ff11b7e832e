using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace Propolis.Standalone.Tests;

[CollectionDefinition(nameof(ConsoleRedirection), DisableParallelization = true)]
public sealed class ConsoleRedirection;

/// <summary>The log goes to stderr: one JSON object per line when stderr is not a terminal,
/// one human-readable line with a timestamp when it is.</summary>
[Collection(nameof(ConsoleRedirection))]
public sealed class LoggingTests
{
    private static string CaptureStderr(bool terminal, LogLevel minimum, Action<ILogger> log)
    {
        var saved = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            using (var factory = Logging.Create(minimum, terminal))
                log(factory.CreateLogger("propolis-standalone"));
            return captured.ToString();
        }
        finally
        {
            Console.SetError(saved);
        }
    }

    [Fact]
    public void RedirectedStderrGetsOneJsonObjectPerLine()
    {
        var text = CaptureStderr(terminal: false, LogLevel.Information, log =>
        {
            log.LogInformation("VM {Name} created", "testvm");
            log.LogWarning("second\nline");
            log.LogDebug("filtered out");
        });
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal("Information", first.RootElement.GetProperty("LogLevel").GetString());
        Assert.Equal("VM testvm created", first.RootElement.GetProperty("Message").GetString());
        Assert.Equal("testvm", first.RootElement.GetProperty("State").GetProperty("Name").GetString());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", first.RootElement.GetProperty("Timestamp").GetString());
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal("second\nline", second.RootElement.GetProperty("Message").GetString());
    }

    [Fact]
    public void TerminalGetsOneTimestampedLinePerEvent()
    {
        var text = CaptureStderr(terminal: true, LogLevel.Debug, log =>
        {
            log.LogDebug("probing");
            log.LogError("failed");
        });
        var plain = Regex.Replace(text, "\u001b\\[[0-9;]*m", "");
        var lines = plain.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} dbug: propolis-standalone\[0\] probing$", lines[0]);
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} fail: propolis-standalone\[0\] failed$", lines[1]);
    }

    [Theory]
    [InlineData("trace", LogLevel.Trace)]
    [InlineData("DEBUG", LogLevel.Debug)]
    [InlineData("Info", LogLevel.Information)]
    [InlineData("warn", LogLevel.Warning)]
    [InlineData("warning", LogLevel.Warning)]
    [InlineData("error", LogLevel.Error)]
    [InlineData("critical", LogLevel.Critical)]
    public void LevelNamesAsPropolisTakesThem(string name, LogLevel level)
    {
        Assert.True(Logging.TryParseLevel(name, out var parsed));
        Assert.Equal(level, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("verbose")]
    [InlineData(null)]
    public void OtherLevelNamesAreRejected(string? name) => Assert.False(Logging.TryParseLevel(name, out _));
}

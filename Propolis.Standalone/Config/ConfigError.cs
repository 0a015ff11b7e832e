using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

/// <summary>One problem found in a configuration file, located at the offending text. A
/// warning (<see cref="IsWarning"/>) names something that is valid but has no effect.</summary>
public sealed record ConfigError(string FileName, TomlPosition Position, string Message, bool IsWarning = false)
{
    /// <summary><c>FILE:LINE:COL: message</c> (<c>FILE:LINE:COL: warning: message</c>), the
    /// form editors and compilers use.</summary>
    public override string ToString()
    {
        var where = Position.IsKnown ? $"{FileName}:{Position.Line}:{Position.Column}" : FileName;
        return IsWarning ? $"{where}: warning: {Message}" : $"{where}: {Message}";
    }
}

/// <summary>Thrown by <see cref="ConfigLoader"/> when a file has one or more problems; carries
/// all of them, in file order.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    public IReadOnlyList<ConfigError> Errors { get; }
}

/// <summary>Collects errors for one file; the loader keeps going after each one so that a
/// single run reports every mistake.</summary>
internal sealed class Diagnostics
{
    private readonly List<ConfigError> _errors = new();
    private readonly List<ConfigError> _warnings = new();

    public Diagnostics(string fileName) => FileName = fileName;

    public string FileName { get; }
    public bool HasErrors => _errors.Count > 0;
    public int Count => _errors.Count;

    public void Error(TomlPosition position, string message) =>
        _errors.Add(new ConfigError(FileName, position, message));

    public void Warning(TomlPosition position, string message) =>
        _warnings.Add(new ConfigError(FileName, position, message, IsWarning: true));

    public IReadOnlyList<ConfigError> SortedWarnings() =>
        _warnings.OrderBy(e => e.Position.Line).ThenBy(e => e.Position.Column).ToArray();

    /// <summary>The errors in file order (line, then column); errors without a position first.</summary>
    public IReadOnlyList<ConfigError> Sorted() =>
        _errors.OrderBy(e => e.Position.Line).ThenBy(e => e.Position.Column).ToArray();
}

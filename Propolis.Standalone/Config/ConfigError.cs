using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

/// <summary>One problem found in a configuration file, located at the offending text.</summary>
public sealed record ConfigError(string FileName, TomlPosition Position, string Message)
{
    /// <summary><c>FILE:LINE:COL: message</c>, the form editors and compilers use.</summary>
    public override string ToString() =>
        Position.IsKnown ? $"{FileName}:{Position.Line}:{Position.Column}: {Message}" : $"{FileName}: {Message}";
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

    public Diagnostics(string fileName) => FileName = fileName;

    public string FileName { get; }
    public bool HasErrors => _errors.Count > 0;
    public int Count => _errors.Count;

    public void Error(TomlPosition position, string message) =>
        _errors.Add(new ConfigError(FileName, position, message));

    /// <summary>The errors in file order (line, then column); errors without a position first.</summary>
    public IReadOnlyList<ConfigError> Sorted() =>
        _errors.OrderBy(e => e.Position.Line).ThenBy(e => e.Position.Column).ToArray();
}

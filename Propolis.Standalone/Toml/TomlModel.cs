// The TOML 1.0 document model (https://toml.io/en/v1.0.0). Every node remembers where it
// came from so that configuration errors can name FILE:LINE:COLUMN.
//
// This file is the contract between the parser (TomlParser) and its consumers (the config
// schema, the toml-test decoder). Members may be added; existing ones keep their meaning.

namespace Propolis.Standalone.Toml;

/// <summary>A 1-based line and column in a TOML source text. Columns count Unicode scalar
/// values from the start of the line, as editors show them.</summary>
public readonly record struct TomlPosition(int Line, int Column)
{
    public static readonly TomlPosition None = new(0, 0);
    public bool IsKnown => Line > 0;
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>A syntax or semantic error in a TOML document, located at the offending character.</summary>
public sealed class TomlException : Exception
{
    public TomlException(string message, TomlPosition position, string? fileName = null)
        : base(message)
    {
        Position = position;
        FileName = fileName;
    }

    /// <summary>The error text alone, without location.</summary>
    public string Reason => base.Message;
    public TomlPosition Position { get; }
    public string? FileName { get; }

    /// <summary><c>FILE:LINE:COL: reason</c> (or <c>LINE:COL: reason</c> without a file name).</summary>
    public override string Message =>
        FileName is null ? $"{Position}: {Reason}" : $"{FileName}:{Position}: {Reason}";
}

public enum TomlKind
{
    Table,
    Array,
    String,
    Integer,
    Float,
    Boolean,
    OffsetDateTime,
    LocalDateTime,
    LocalDate,
    LocalTime,
}

/// <summary>Any TOML value. <see cref="Position"/> is where the value starts (for a table
/// header, where the header starts; for an implicitly created table, where the key that
/// created it starts).</summary>
public abstract class TomlNode
{
    protected TomlNode(TomlPosition position) => Position = position;
    public TomlPosition Position { get; }
    public abstract TomlKind Kind { get; }

    /// <summary>The TOML type name used in error messages: "table", "array", "string",
    /// "integer", "float", "boolean", "offset date-time", "local date-time", "local date",
    /// "local time".</summary>
    public string TypeName => Kind switch
    {
        TomlKind.Table => "table",
        TomlKind.Array => "array",
        TomlKind.String => "string",
        TomlKind.Integer => "integer",
        TomlKind.Float => "float",
        TomlKind.Boolean => "boolean",
        TomlKind.OffsetDateTime => "offset date-time",
        TomlKind.LocalDateTime => "local date-time",
        TomlKind.LocalDate => "local date",
        TomlKind.LocalTime => "local time",
        _ => "value",
    };
}

/// <summary>A key within a table, with the position of the key's own text (the last
/// component of a dotted key).</summary>
public readonly record struct TomlKey(string Name, TomlPosition Position);

/// <summary>A table, in document order. Keys are compared ordinally (TOML keys are
/// case-sensitive).</summary>
public sealed class TomlTable : TomlNode
{
    private readonly List<KeyValuePair<TomlKey, TomlNode>> _entries = new();
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

    public TomlTable(TomlPosition position) : base(position) { }

    public override TomlKind Kind => TomlKind.Table;

    /// <summary>True for <c>{ ... }</c> inline tables.</summary>
    public bool IsInline { get; init; }

    /// <summary>Entries in the order they first appeared in the document.</summary>
    public IReadOnlyList<KeyValuePair<TomlKey, TomlNode>> Entries => _entries;

    public int Count => _entries.Count;

    public bool ContainsKey(string name) => _index.ContainsKey(name);

    public bool TryGetValue(string name, out TomlNode value)
    {
        if (_index.TryGetValue(name, out int i))
        {
            value = _entries[i].Value;
            return true;
        }
        value = null!;
        return false;
    }

    public bool TryGetKey(string name, out TomlKey key)
    {
        if (_index.TryGetValue(name, out int i))
        {
            key = _entries[i].Key;
            return true;
        }
        key = default;
        return false;
    }

    public TomlNode this[string name] =>
        TryGetValue(name, out var v) ? v : throw new KeyNotFoundException(name);

    /// <summary>Adds a new key. The parser enforces TOML's redefinition rules before calling
    /// this; here a duplicate is a programming error.</summary>
    public void Add(TomlKey key, TomlNode value)
    {
        if (_index.ContainsKey(key.Name))
            throw new InvalidOperationException($"duplicate key '{key.Name}'");
        _index.Add(key.Name, _entries.Count);
        _entries.Add(new(key, value));
    }
}

/// <summary>An array value, or an array of tables (<c>[[name]]</c>).</summary>
public sealed class TomlArray : TomlNode
{
    private readonly List<TomlNode> _items = new();

    public TomlArray(TomlPosition position) : base(position) { }

    public override TomlKind Kind => TomlKind.Array;

    /// <summary>True when created by <c>[[header]]</c>.</summary>
    public bool IsArrayOfTables { get; init; }

    public IReadOnlyList<TomlNode> Items => _items;
    public int Count => _items.Count;
    public TomlNode this[int index] => _items[index];
    public void Add(TomlNode item) => _items.Add(item);
}

public sealed class TomlString : TomlNode
{
    public TomlString(string value, TomlPosition position) : base(position) => Value = value;
    public override TomlKind Kind => TomlKind.String;
    public string Value { get; }
}

public sealed class TomlInteger : TomlNode
{
    public TomlInteger(long value, TomlPosition position) : base(position) => Value = value;
    public override TomlKind Kind => TomlKind.Integer;
    public long Value { get; }
}

public sealed class TomlFloat : TomlNode
{
    public TomlFloat(double value, TomlPosition position) : base(position) => Value = value;
    public override TomlKind Kind => TomlKind.Float;
    public double Value { get; }
}

public sealed class TomlBoolean : TomlNode
{
    public TomlBoolean(bool value, TomlPosition position) : base(position) => Value = value;
    public override TomlKind Kind => TomlKind.Boolean;
    public bool Value { get; }
}

/// <summary>Any of the four date/time kinds. Components are kept exactly as written
/// (fractional seconds to nanoseconds; TOML allows more digits, which are truncated,
/// as the spec permits).</summary>
public sealed class TomlDateTime : TomlNode
{
    private readonly TomlKind _kind;

    public TomlDateTime(TomlKind kind, TomlPosition position) : base(position)
    {
        if (kind is not (TomlKind.OffsetDateTime or TomlKind.LocalDateTime or TomlKind.LocalDate or TomlKind.LocalTime))
            throw new ArgumentOutOfRangeException(nameof(kind));
        _kind = kind;
    }

    public override TomlKind Kind => _kind;

    public int Year { get; init; }
    public int Month { get; init; }
    public int Day { get; init; }
    public int Hour { get; init; }
    public int Minute { get; init; }
    public int Second { get; init; }
    /// <summary>Nanoseconds, 0..999_999_999.</summary>
    public int Nanosecond { get; init; }
    /// <summary>Number of fractional-second digits written (0 if none), capped at 9.</summary>
    public int FractionDigits { get; init; }
    /// <summary>Offset from UTC in minutes (offset date-times only); <c>Z</c> is 0.</summary>
    public int OffsetMinutes { get; init; }
}

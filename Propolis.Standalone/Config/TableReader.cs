using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

/// <summary>Reads the keys of one TOML table with type and range checks, reporting each
/// problem to <see cref="Diagnostics"/> and remembering which keys were read so that the
/// rest can be reported as unknown.</summary>
internal sealed class TableReader
{
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public TableReader(TomlTable table, string section, Diagnostics diagnostics)
    {
        Table = table;
        Section = section;
        Diagnostics = diagnostics;
    }

    public TomlTable Table { get; }
    /// <summary>The section as written in messages, e.g. "[main]" or "[dev.block0]".</summary>
    public string Section { get; }
    public Diagnostics Diagnostics { get; }
    public TomlPosition HeaderPosition => Table.Position;

    public bool Has(string key) => Table.ContainsKey(key);

    /// <summary>Where the value of <paramref name="key"/> starts (the header when absent).</summary>
    public TomlPosition ValuePosition(string key) =>
        Table.TryGetValue(key, out var node) ? node.Position : Table.Position;

    public TomlPosition KeyPosition(string key) =>
        Table.TryGetKey(key, out var k) ? k.Position : Table.Position;

    /// <summary>The raw node, marking the key as read; reports a missing required key at the
    /// table header.</summary>
    public TomlNode? Node(string key, bool required = false, string? hint = null)
    {
        _read.Add(key);
        if (Table.TryGetValue(key, out var node))
            return node;
        if (required)
            Diagnostics.Error(Table.Position, $"missing required key '{key}' in {Section}{hint}");
        return null;
    }

    public void Error(TomlPosition position, string message) => Diagnostics.Error(position, message);

    private T? Typed<T>(string key, bool required, string article, string typeName, string? hint = null)
        where T : TomlNode
    {
        var node = Node(key, required, hint);
        if (node is null)
            return null;
        if (node is T typed)
            return typed;
        Diagnostics.Error(node.Position, $"'{key}' must be {article} {typeName}, found {node.TypeName}");
        return null;
    }

    public TomlString? StringNode(string key, bool required = false, string? hint = null) =>
        Typed<TomlString>(key, required, "a", "string", hint);

    public string? String(string key, bool required = false, string? hint = null) =>
        StringNode(key, required, hint)?.Value;

    /// <summary>A string that must not be empty.</summary>
    public string? NonEmptyString(string key, bool required = false)
    {
        var node = StringNode(key, required);
        if (node is null)
            return null;
        if (node.Value.Length == 0)
        {
            Diagnostics.Error(node.Position, $"'{key}' must not be empty");
            return null;
        }
        return node.Value;
    }

    public bool? Bool(string key) => Typed<TomlBoolean>(key, false, "a", "boolean")?.Value;

    public TomlArray? Array(string key, bool required = false) =>
        Typed<TomlArray>(key, required, "an", "array");

    /// <summary>An integer in <c>[min, max]</c>.</summary>
    public long? Integer(string key, long min, long max, bool required = false, string? hint = null)
    {
        var node = Typed<TomlInteger>(key, required, "an", "integer", hint);
        if (node is null)
            return null;
        if (node.Value < min || node.Value > max)
        {
            Diagnostics.Error(node.Position, RangeMessage(key, min, max, node.Value));
            return null;
        }
        return node.Value;
    }

    internal static string RangeMessage(string key, long min, long max, long found) =>
        max == long.MaxValue
            ? $"'{key}' must be at least {min}, found {found}"
            : $"'{key}' must be between {min} and {max}, found {found}";

    /// <summary>A number (integer or float) greater than zero.</summary>
    public double? PositiveNumber(string key)
    {
        var node = Node(key);
        switch (node)
        {
            case null:
                return null;
            case TomlInteger i when i.Value > 0:
                return i.Value;
            case TomlFloat f when f.Value > 0 && double.IsFinite(f.Value):
                return f.Value;
            case TomlInteger or TomlFloat:
                Diagnostics.Error(node.Position, $"'{key}' must be a number greater than 0");
                return null;
            default:
                Diagnostics.Error(node.Position, $"'{key}' must be a number, found {node.TypeName}");
                return null;
        }
    }

    /// <summary>Reports every key not read so far. A key that belongs to another variant of
    /// this section (another block_dev type, another driver) is named as such through
    /// <paramref name="otherVariant"/>; anything else gets the closest valid key.</summary>
    public void RejectUnknown(Func<string, string?>? otherVariant = null)
    {
        foreach (var (key, _) in Table.Entries)
        {
            if (_read.Contains(key.Name))
                continue;
            var elsewhere = otherVariant?.Invoke(key.Name);
            if (elsewhere is not null)
            {
                Diagnostics.Error(key.Position, elsewhere);
                continue;
            }
            Diagnostics.Error(key.Position,
                $"unknown key '{key.Name}' in {Section}{Suggest.DidYouMean(key.Name, _read)}");
        }
    }
}

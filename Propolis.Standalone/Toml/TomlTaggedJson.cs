// The tagged JSON form of a TOML document used by toml-test
// (https://github.com/toml-lang/toml-test, "Decoder interface"): tables are JSON objects,
// arrays are JSON arrays, every other value is {"type": TYPE, "value": "TEXT"}.
// Shared by the toml-test decoder program and the conformance tests.

using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Propolis.Standalone.Toml;

public static class TomlTaggedJson
{
    /// <summary>Writes <paramref name="table"/> as a JSON object.</summary>
    public static void Write(Utf8JsonWriter writer, TomlTable table)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(table);
        WriteNode(writer, table);
    }

    /// <summary>The document as UTF-8 JSON.</summary>
    public static byte[] ToUtf8Bytes(TomlTable table, bool indented = false)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions
        {
            Indented = indented,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            Write(writer, table);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static string ToJson(TomlTable table, bool indented = false) =>
        System.Text.Encoding.UTF8.GetString(ToUtf8Bytes(table, indented));

    /// <summary>toml-test's type tag: "string", "integer", "float", "bool", "datetime",
    /// "datetime-local", "date-local", "time-local" (tables and arrays have none).</summary>
    public static string TypeTag(TomlNode node) => node.Kind switch
    {
        TomlKind.String => "string",
        TomlKind.Integer => "integer",
        TomlKind.Float => "float",
        TomlKind.Boolean => "bool",
        TomlKind.OffsetDateTime => "datetime",
        TomlKind.LocalDateTime => "datetime-local",
        TomlKind.LocalDate => "date-local",
        TomlKind.LocalTime => "time-local",
        _ => throw new ArgumentException($"a {node.TypeName} has no type tag", nameof(node)),
    };

    /// <summary>Shortest round-trip text; "inf", "-inf" and "nan" for the special values.</summary>
    public static string FormatFloat(double value)
    {
        if (double.IsNaN(value))
            return "nan";
        if (double.IsPositiveInfinity(value))
            return "inf";
        if (double.IsNegativeInfinity(value))
            return "-inf";
        return value.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>RFC 3339 text: <c>1979-05-27T07:32:00.5-07:00</c>, <c>1979-05-27T07:32:00</c>,
    /// <c>1979-05-27</c>, <c>07:32:00</c>. Fractional seconds keep the digits written (up to 9);
    /// a zero offset is written <c>Z</c>.</summary>
    public static string FormatDateTime(TomlDateTime value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var sb = new System.Text.StringBuilder(35);
        var inv = CultureInfo.InvariantCulture;
        if (value.Kind != TomlKind.LocalTime)
        {
            sb.Append(inv, $"{value.Year:D4}-{value.Month:D2}-{value.Day:D2}");
            if (value.Kind == TomlKind.LocalDate)
                return sb.ToString();
            sb.Append('T');
        }
        sb.Append(inv, $"{value.Hour:D2}:{value.Minute:D2}:{value.Second:D2}");
        if (value.FractionDigits > 0)
        {
            int scale = 1;
            for (int i = value.FractionDigits; i < 9; i++)
                scale *= 10;
            sb.Append('.');
            sb.Append((value.Nanosecond / scale).ToString("D" + value.FractionDigits.ToString(inv), inv));
        }
        if (value.Kind == TomlKind.OffsetDateTime)
        {
            int offset = value.OffsetMinutes;
            if (offset == 0)
            {
                sb.Append('Z');
            }
            else
            {
                sb.Append(offset < 0 ? '-' : '+');
                offset = Math.Abs(offset);
                sb.Append(inv, $"{offset / 60:D2}:{offset % 60:D2}");
            }
        }
        return sb.ToString();
    }

    /// <summary>The text of a scalar value as toml-test expects it in "value".</summary>
    public static string FormatScalar(TomlNode node) => node switch
    {
        TomlString s => s.Value,
        TomlInteger i => i.Value.ToString(CultureInfo.InvariantCulture),
        TomlFloat f => FormatFloat(f.Value),
        TomlBoolean b => b.Value ? "true" : "false",
        TomlDateTime d => FormatDateTime(d),
        _ => throw new ArgumentException($"a {node.TypeName} is not a scalar", nameof(node)),
    };

    private static void WriteNode(Utf8JsonWriter writer, TomlNode node)
    {
        switch (node)
        {
            case TomlTable table:
                writer.WriteStartObject();
                foreach (var (key, value) in table.Entries)
                {
                    writer.WritePropertyName(key.Name);
                    WriteNode(writer, value);
                }
                writer.WriteEndObject();
                break;
            case TomlArray array:
                writer.WriteStartArray();
                foreach (TomlNode item in array.Items)
                    WriteNode(writer, item);
                writer.WriteEndArray();
                break;
            default:
                writer.WriteStartObject();
                writer.WriteString("type", TypeTag(node));
                writer.WriteString("value", FormatScalar(node));
                writer.WriteEndObject();
                break;
        }
    }
}

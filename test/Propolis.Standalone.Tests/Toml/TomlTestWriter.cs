// A minimal canonical TOML writer for the round-trip property: every table below the root is
// written as an inline table, every array inline, every key and string quoted with escapes.

using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Tests.Toml;

internal static class TomlTestWriter
{
    public static string Write(TomlTable root)
    {
        var sb = new StringBuilder();
        foreach (var (key, value) in root.Entries)
        {
            WriteString(sb, key.Name);
            sb.Append(" = ");
            WriteValue(sb, value);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static void WriteValue(StringBuilder sb, TomlNode node)
    {
        switch (node)
        {
            case TomlTable table:
                sb.Append('{');
                bool first = true;
                foreach (var (key, value) in table.Entries)
                {
                    sb.Append(first ? " " : ", ");
                    first = false;
                    WriteString(sb, key.Name);
                    sb.Append(" = ");
                    WriteValue(sb, value);
                }
                sb.Append(first ? "}" : " }");
                break;
            case TomlArray array:
                sb.Append('[');
                for (int i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                        sb.Append(", ");
                    WriteValue(sb, array[i]);
                }
                sb.Append(']');
                break;
            case TomlString s:
                WriteString(sb, s.Value);
                break;
            case TomlFloat f:
                string text = TomlTaggedJson.FormatFloat(f.Value);
                sb.Append(text);
                // "R" prints 3.0 as "3", which TOML would read as an integer.
                if (double.IsFinite(f.Value) && text.IndexOfAny(['.', 'E', 'e']) < 0)
                    sb.Append(".0");
                break;
            case TomlInteger i:
                sb.Append(i.Value.ToString(CultureInfo.InvariantCulture));
                break;
            case TomlBoolean b:
                sb.Append(b.Value ? "true" : "false");
                break;
            case TomlDateTime d:
                sb.Append(TomlTaggedJson.FormatDateTime(d));
                break;
            default:
                throw new ArgumentException($"unexpected node {node.Kind}", nameof(node));
        }
    }

    private static void WriteString(StringBuilder sb, string value)
    {
        sb.Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20 || c == 0x7F)
                        sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}

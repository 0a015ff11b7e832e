// Compares a decoder's tagged JSON with toml-test's expected JSON the way toml-test does
// (toml-test json.go, cmpJSON): same tables and keys, arrays of the same length, the same
// type tags; strings and integers compared as text; floats compared numerically (so 0 and -0
// are equal) with every sign of nan equal; date-times compared as instants after mapping
// ' ' and 't' to 'T' and 'z' to 'Z', fractional seconds by value.

using System.Globalization;
using System.Text.Json;

namespace Propolis.Standalone.Tests.Toml;

internal static class TaggedJsonComparer
{
    /// <summary>Null when equal, else a description of the first difference.</summary>
    public static string? Compare(JsonElement want, JsonElement have) => Compare(want, have, "$");

    private static string? Compare(JsonElement want, JsonElement have, string path)
    {
        switch (want.ValueKind)
        {
            case JsonValueKind.Object:
                if (have.ValueKind != JsonValueKind.Object)
                    return $"{path}: expected a table, got {have.ValueKind}";
                bool wantValue = IsValue(want), haveValue = IsValue(have);
                if (wantValue != haveValue)
                    return $"{path}: expected a {(wantValue ? "value" : "table")}, got a {(haveValue ? "value" : "table")}";
                if (wantValue)
                    return CompareValues(want, have, path);
                foreach (var property in want.EnumerateObject())
                {
                    if (!have.TryGetProperty(property.Name, out _))
                        return $"{path}: key '{property.Name}' missing from the parser's output";
                }
                foreach (var property in have.EnumerateObject())
                {
                    if (!want.TryGetProperty(property.Name, out JsonElement w))
                        return $"{path}: unexpected key '{property.Name}' in the parser's output";
                    if (Compare(w, property.Value, path + "." + property.Name) is string diff)
                        return diff;
                }
                return null;
            case JsonValueKind.Array:
                return CompareArrays(want, have, path);
            default:
                return $"{path}: expected output holds a bare {want.ValueKind}";
        }
    }

    private static string? CompareArrays(JsonElement want, JsonElement have, string path)
    {
        if (have.ValueKind != JsonValueKind.Array)
            return $"{path}: expected an array, got {have.ValueKind}";
        int wantLength = want.GetArrayLength(), haveLength = have.GetArrayLength();
        if (wantLength != haveLength)
            return $"{path}: expected {wantLength} array elements, got {haveLength}";
        for (int i = 0; i < wantLength; i++)
        {
            if (Compare(want[i], have[i], $"{path}[{i}]") is string diff)
                return diff;
        }
        return null;
    }

    private static bool IsValue(JsonElement e)
    {
        int count = 0;
        foreach (var _ in e.EnumerateObject())
            count++;
        return count == 2 && e.TryGetProperty("type", out _) && e.TryGetProperty("value", out _);
    }

    private static string? CompareValues(JsonElement want, JsonElement have, string path)
    {
        string? wantType = want.GetProperty("type").ValueKind == JsonValueKind.String ? want.GetProperty("type").GetString() : null;
        string? haveType = have.GetProperty("type").ValueKind == JsonValueKind.String ? have.GetProperty("type").GetString() : null;
        if (wantType is null)
            return $"{path}: expected output has a non-string type";
        if (wantType != haveType)
            return $"{path}: expected type '{wantType}', got '{haveType}'";
        if (wantType == "array")
            return CompareArrays(want.GetProperty("value"), have.GetProperty("value"), path);
        if (have.GetProperty("value").ValueKind != JsonValueKind.String)
            return $"{path}: value is not a JSON string";
        string w = want.GetProperty("value").GetString()!;
        string h = have.GetProperty("value").GetString()!;
        bool equal = wantType switch
        {
            "float" => FloatsEqual(w, h),
            "datetime" or "datetime-local" or "date-local" or "time-local" => DateTimesEqual(wantType, w, h),
            "bool" => string.Equals(w, h, StringComparison.OrdinalIgnoreCase),
            _ => w == h,
        };
        return equal ? null : $"{path}: expected {wantType} '{w}', got '{h}'";
    }

    private static bool FloatsEqual(string want, string have)
    {
        want = want.ToLowerInvariant();
        have = have.ToLowerInvariant();
        if (want.EndsWith("nan", StringComparison.Ordinal) || have.EndsWith("nan", StringComparison.Ordinal))
            return want.TrimStart('+', '-') == have.TrimStart('+', '-');
        return TryParseGoFloat(want, out double w) && TryParseGoFloat(have, out double h) && w == h;
    }

    /// <summary>The subset of Go's strconv.ParseFloat syntax that decoders print.</summary>
    private static bool TryParseGoFloat(string s, out double value)
    {
        string body = s.TrimStart('+', '-');
        bool negative = s.StartsWith('-');
        if (body is "inf" or "infinity")
        {
            value = negative ? double.NegativeInfinity : double.PositiveInfinity;
            return s.Length - body.Length <= 1;
        }
        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    private static bool DateTimesEqual(string kind, string want, string have) =>
        TryParseInstant(kind, want, out var w) && TryParseInstant(kind, have, out var h) && w == h;

    /// <summary>Parses the layout toml-test uses for <paramref name="kind"/> (RFC 3339 with
    /// nanoseconds for "datetime") into seconds and nanoseconds since 0001-01-01 UTC.</summary>
    private static bool TryParseInstant(string kind, string text, out (long Seconds, int Nanos) instant)
    {
        instant = default;
        string s = text.Replace(' ', 'T').Replace('t', 'T').Replace('z', 'Z');
        int p = 0;
        int year = 1, month = 1, day = 1, hour = 0, minute = 0, second = 0, nanos = 0, offset = 0;
        if (kind != "time-local")
        {
            if (!Digits(s, ref p, 4, out year) || !Char(s, ref p, '-') || !Digits(s, ref p, 2, out month) ||
                !Char(s, ref p, '-') || !Digits(s, ref p, 2, out day))
                return false;
            if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(Math.Max(year, 1), month))
                return false;
            if (kind == "date-local")
                return p == s.Length && Set(out instant, year, month, day, 0, 0, 0, 0, 0);
            if (!Char(s, ref p, 'T'))
                return false;
        }
        if (!Digits(s, ref p, 2, out hour) || !Char(s, ref p, ':') || !Digits(s, ref p, 2, out minute) ||
            !Char(s, ref p, ':') || !Digits(s, ref p, 2, out second) || hour > 23 || minute > 59 || second > 60)
            return false;
        if (p < s.Length && s[p] == '.')
        {
            p++;
            int digits = 0;
            while (p < s.Length && char.IsAsciiDigit(s[p]))
            {
                if (digits < 9)
                {
                    nanos = nanos * 10 + (s[p] - '0');
                    digits++;
                }
                p++;
            }
            if (digits == 0)
                return false;
            for (; digits < 9; digits++)
                nanos *= 10;
        }
        if (kind == "datetime")
        {
            if (p < s.Length && s[p] == 'Z')
            {
                p++;
            }
            else if (p < s.Length && (s[p] == '+' || s[p] == '-'))
            {
                int sign = s[p] == '-' ? -1 : 1;
                p++;
                if (!Digits(s, ref p, 2, out int oh) || !Char(s, ref p, ':') || !Digits(s, ref p, 2, out int om))
                    return false;
                offset = sign * (oh * 60 + om);
            }
            else
            {
                return false;
            }
        }
        return p == s.Length && Set(out instant, year, month, day, hour, minute, second, nanos, offset);
    }

    private static bool Set(out (long, int) instant, int year, int month, int day, int hour, int minute, int second, int nanos, int offsetMinutes)
    {
        long days = new DateOnly(Math.Max(year, 1), month, day).DayNumber;
        instant = (((days * 24 + hour) * 60 + minute - offsetMinutes) * 60 + second, nanos);
        return true;
    }

    private static bool Digits(string s, ref int p, int count, out int value)
    {
        value = 0;
        if (p + count > s.Length)
            return false;
        for (int i = 0; i < count; i++)
        {
            char c = s[p + i];
            if (!char.IsAsciiDigit(c))
                return false;
            value = value * 10 + (c - '0');
        }
        p += count;
        return true;
    }

    private static bool Char(string s, ref int p, char c)
    {
        if (p >= s.Length || s[p] != c)
            return false;
        p++;
        return true;
    }
}

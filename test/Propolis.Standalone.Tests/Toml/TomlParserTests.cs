// What a configuration consumer relies on: the values, the order of keys, and where each
// key and value sits in the file.

using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Tests.Toml;

public class TomlParserTests
{
    private static TomlPosition P(int line, int column) => new(line, column);

    [Fact]
    public void KeysAndValuesRememberWhereTheyStart()
    {
        const string toml =
            "title = \"x\"\n" +
            "[server]\n" +
            "  port = 8080\n" +
            "[a.b.c]\n" +
            "x.y.z = 1\n" +
            "[[arr]]\n" +
            "[[arr]]\n" +
            "e = { a = \"\U0001F600\", b = 2 }\n";
        TomlTable root = TomlParser.Parse(toml);

        Assert.True(root.TryGetKey("title", out var titleKey));
        Assert.Equal(P(1, 1), titleKey.Position);
        Assert.Equal(P(1, 9), root["title"].Position);

        var server = (TomlTable)root["server"];
        Assert.Equal(P(2, 1), server.Position);
        Assert.True(root.TryGetKey("server", out var serverKey));
        Assert.Equal(P(2, 2), serverKey.Position);
        Assert.True(server.TryGetKey("port", out var portKey));
        Assert.Equal(P(3, 3), portKey.Position);
        Assert.Equal(P(3, 10), server["port"].Position);

        // Implicitly created tables take the position of the key that created them.
        var a = (TomlTable)root["a"];
        var b = (TomlTable)a["b"];
        var c = (TomlTable)b["c"];
        Assert.Equal(P(4, 2), a.Position);
        Assert.Equal(P(4, 4), b.Position);
        Assert.Equal(P(4, 1), c.Position);
        Assert.True(b.TryGetKey("c", out var cKey));
        Assert.Equal(P(4, 6), cKey.Position);

        var x = (TomlTable)c["x"];
        var y = (TomlTable)x["y"];
        Assert.Equal(P(5, 1), x.Position);
        Assert.Equal(P(5, 3), y.Position);
        Assert.True(y.TryGetKey("z", out var zKey));
        Assert.Equal(P(5, 5), zKey.Position);
        Assert.Equal(P(5, 9), y["z"].Position);

        var arr = (TomlArray)root["arr"];
        Assert.True(arr.IsArrayOfTables);
        Assert.Equal(P(6, 1), arr.Position);
        Assert.Equal(2, arr.Count);
        Assert.Equal(P(6, 1), arr[0].Position);
        Assert.Equal(P(7, 1), arr[1].Position);

        var e = (TomlTable)((TomlTable)arr[1])["e"];
        Assert.True(e.IsInline);
        Assert.Equal(P(8, 5), e.Position);
        Assert.Equal(P(8, 11), e["a"].Position);
        Assert.True(e.TryGetKey("b", out var bKey));
        Assert.Equal(P(8, 16), bKey.Position); // the emoji counts as one column
        Assert.Equal(P(8, 20), e["b"].Position);
    }

    [Fact]
    public void PositionsAfterMultiLineStringsCountTheirLines()
    {
        TomlTable root = TomlParser.Parse("s = \"\"\"\none\\\n   two\r\n\"\"\"\nt = '''\nx'''  ;n = 1\n".Replace(";", "\n"));
        Assert.Equal("onetwo\n", ((TomlString)root["s"]).Value);
        Assert.Equal(P(5, 5), root["t"].Position);
        Assert.Equal(P(7, 5), root["n"].Position);
    }

    [Fact]
    public void EntriesKeepDocumentOrder()
    {
        TomlTable root = TomlParser.Parse("z = 1\na = 2\n[m]\n[b]\n");
        Assert.Equal(["z", "a", "m", "b"], root.Entries.Select(e => e.Key.Name));
    }

    [Theory]
    [InlineData("\"tab\\there\"", "tab\there")]
    [InlineData("\"\\b\\f\\n\\r\\\"\\\\\"", "\b\f\n\r\"\\")]
    [InlineData("\"\\u00E9\\U0001F600\"", "\u00E9\U0001F600")]
    [InlineData("'C:\\Users\\nodejs'", "C:\\Users\\nodejs")]
    [InlineData("\"\"\"\nRoses\nViolets\"\"\"", "Roses\nViolets")]
    [InlineData("\"\"\"\r\nRoses\r\nViolets\"\"\"", "Roses\nViolets")]
    [InlineData("\"\"\"The quick \\\n\n    brown fox\"\"\"", "The quick brown fox")]
    [InlineData("\"\"\"a \\  \t\r\n  b\"\"\"", "a b")]
    [InlineData("\"\"\"\"\"\"\"\"", "\"\"")]
    [InlineData("'''''quoted'''''", "''quoted''")]
    [InlineData("'''\nraw \\n '''", "raw \\n ")]
    [InlineData("\"\"", "")]
    public void Strings(string literal, string expected) =>
        Assert.Equal(expected, ((TomlString)TomlParser.Parse("s = " + literal)["s"]).Value);

    [Theory]
    [InlineData("+99", 99)]
    [InlineData("-17", -17)]
    [InlineData("-0", 0)]
    [InlineData("1_000_000", 1_000_000)]
    [InlineData("0xDEAD_beef", 0xDEADBEEF)]
    [InlineData("0o755", 493)]
    [InlineData("0b1101_0110", 0b1101_0110)]
    [InlineData("0x7FFFFFFFFFFFFFFF", long.MaxValue)]
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("-9223372036854775808", long.MinValue)]
    public void Integers(string literal, long expected) =>
        Assert.Equal(expected, ((TomlInteger)TomlParser.Parse("n = " + literal)["n"]).Value);

    [Theory]
    [InlineData("3.1415", 3.1415)]
    [InlineData("-0.01", -0.01)]
    [InlineData("5e+22", 5e+22)]
    [InlineData("1e06", 1e6)]
    [InlineData("-2E-2", -2e-2)]
    [InlineData("6.626e-34", 6.626e-34)]
    [InlineData("224_617.445_991", 224617.445991)]
    [InlineData("inf", double.PositiveInfinity)]
    [InlineData("+inf", double.PositiveInfinity)]
    [InlineData("-inf", double.NegativeInfinity)]
    [InlineData("nan", double.NaN)]
    [InlineData("-nan", double.NaN)]
    public void Floats(string literal, double expected) =>
        Assert.Equal(expected, ((TomlFloat)TomlParser.Parse("f = " + literal)["f"]).Value);

    [Fact]
    public void NegativeZeroKeepsItsSign() =>
        Assert.True(double.IsNegative(((TomlFloat)TomlParser.Parse("f = -0.0")["f"]).Value));

    [Theory]
    [InlineData("1e400")]
    [InlineData("-1e400")]
    public void FloatsBeyondBinary64AreRejected(string literal) =>
        Assert.Throws<TomlException>(() => TomlParser.Parse("f = " + literal));

    [Fact]
    public void OffsetDateTime()
    {
        var d = (TomlDateTime)TomlParser.Parse("d = 1979-05-27T00:32:00.999999-07:30")["d"];
        Assert.Equal(TomlKind.OffsetDateTime, d.Kind);
        Assert.Equal((1979, 5, 27, 0, 32, 0), (d.Year, d.Month, d.Day, d.Hour, d.Minute, d.Second));
        Assert.Equal(999_999_000, d.Nanosecond);
        Assert.Equal(6, d.FractionDigits);
        Assert.Equal(-450, d.OffsetMinutes);
        Assert.Equal("1979-05-27T00:32:00.999999-07:30", TomlTaggedJson.FormatDateTime(d));
    }

    [Theory]
    [InlineData("1979-05-27T07:32:00Z", TomlKind.OffsetDateTime, "1979-05-27T07:32:00Z")]
    [InlineData("1979-05-27t07:32:00z", TomlKind.OffsetDateTime, "1979-05-27T07:32:00Z")]
    [InlineData("1979-05-27 07:32:00+00:00", TomlKind.OffsetDateTime, "1979-05-27T07:32:00Z")]
    [InlineData("1979-05-27 07:32:00", TomlKind.LocalDateTime, "1979-05-27T07:32:00")]
    [InlineData("1979-05-27", TomlKind.LocalDate, "1979-05-27")]
    [InlineData("00:32:00.5", TomlKind.LocalTime, "00:32:00.5")]
    [InlineData("23:59:60", TomlKind.LocalTime, "23:59:60")]
    [InlineData("2000-02-29T12:00:00.1234567891", TomlKind.LocalDateTime, "2000-02-29T12:00:00.123456789")]
    public void DateTimes(string literal, TomlKind kind, string formatted)
    {
        var d = (TomlDateTime)TomlParser.Parse("d = " + literal)["d"];
        Assert.Equal(kind, d.Kind);
        Assert.Equal(formatted, TomlTaggedJson.FormatDateTime(d));
    }

    [Fact]
    public void ArraysMayMixTypesAndSpanLinesWithComments()
    {
        TomlTable root = TomlParser.Parse("a = [\n  1, # one\n  \"two\",\n  [3.0],\n  { four = 4 },\n]\n");
        var a = (TomlArray)root["a"];
        Assert.False(a.IsArrayOfTables);
        Assert.Equal([TomlKind.Integer, TomlKind.String, TomlKind.Array, TomlKind.Table], a.Items.Select(i => i.Kind));
    }

    [Fact]
    public void ImplicitTableMayBeDefinedOnceLater()
    {
        TomlTable root = TomlParser.Parse("[a.b]\nx = 1\n[a]\ny = 2\n");
        var a = (TomlTable)root["a"];
        Assert.Equal(2L, ((TomlInteger)a["y"]).Value);
        Assert.Throws<TomlException>(() => TomlParser.Parse("[a.b]\n[a]\n[a]\n"));
    }

    [Fact]
    public void HeadersMayAddSubTablesBeneathDottedKeyTables()
    {
        TomlTable root = TomlParser.Parse("[fruit]\napple.color = \"red\"\n[fruit.apple.texture]\nsmooth = true\n");
        var apple = (TomlTable)((TomlTable)root["fruit"])["apple"];
        Assert.True(((TomlBoolean)((TomlTable)apple["texture"])["smooth"]).Value);
    }

    [Fact]
    public void HeaderAfterArrayOfTablesGoesIntoTheLastElement()
    {
        TomlTable root = TomlParser.Parse("[[fruit]]\nname = \"apple\"\n[fruit.physical]\ncolor = \"red\"\n[[fruit]]\nname = \"banana\"\n");
        var fruit = (TomlArray)root["fruit"];
        Assert.Equal(2, fruit.Count);
        Assert.True(((TomlTable)fruit[0]).ContainsKey("physical"));
        Assert.False(((TomlTable)fruit[1]).ContainsKey("physical"));
    }

    [Fact]
    public void ByteOrderMarkAndCrLfAreAccepted()
    {
        TomlTable root = TomlParser.Parse("\uFEFFa = 1\r\n# c\r\nb = 2\r\n");
        Assert.Equal(2, root.Count);
        Assert.Equal(P(3, 5), root["b"].Position);
    }
}

// Typical mistakes in a configuration file: the error names the offending character's
// line and column and says what is wrong.

using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Tests.Toml;

public class TomlParserErrorTests
{
    private static TomlException Reject(string toml, string? fileName = null) =>
        Assert.Throws<TomlException>(() => TomlParser.Parse(toml, fileName));

    private static void AssertError(string toml, int line, int column, string reason)
    {
        TomlException e = Reject(toml);
        Assert.Equal(reason, e.Reason);
        Assert.Equal(new TomlPosition(line, column), e.Position);
    }

    [Fact]
    public void DuplicateKeyPointsAtTheSecondKeyAndNamesTheFirst()
    {
        TomlException e = Reject("name = \"a\"\nother = 1\nname = \"b\"\n", "vm.toml");
        Assert.Equal("duplicate key 'name' (first defined at 1:1)", e.Reason);
        Assert.Equal(new TomlPosition(3, 1), e.Position);
        Assert.Equal("vm.toml", e.FileName);
        Assert.Equal("vm.toml:3:1: duplicate key 'name' (first defined at 1:1)", e.Message);
    }

    [Fact]
    public void MessageWithoutFileNameStartsWithTheLocation() =>
        Assert.Equal("2:1: duplicate key 'a' (first defined at 1:1)", Reject("a = 1\na = 2").Message);

    [Fact]
    public void DuplicateKeyInsideDottedAndQuotedKeys() =>
        AssertError("[server]\nhttp.port = 1\n\"http\".'port' = 2", 3, 8, "duplicate key 'port' (first defined at 2:6)");

    [Fact]
    public void DuplicateKeyInInlineTable() =>
        AssertError("t = { a = 1, b = 2, a = 3 }", 1, 21, "duplicate key 'a' (first defined at 1:7)");

    [Fact]
    public void InvalidEscapePointsAtTheBackslash() =>
        AssertError("s = \"ab\\qc\"", 1, 8,
            "invalid escape sequence '\\q' (valid escapes: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)");

    [Fact]
    public void LineEndingBackslashOnlyInMultiLineStrings() =>
        AssertError("s = \"abc \\\n def\"", 1, 10, "a line-ending backslash is only allowed in multi-line basic strings (\"\"\")");

    [Fact]
    public void NonAsciiEscapeIsShownAsWritten() =>
        AssertError("s = \"\\\u00E9\"", 1, 6,
            "invalid escape sequence '\\\u00E9' (valid escapes: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)");

    [Fact]
    public void EscapeOfASurrogateIsRejected() =>
        AssertError("s = \"x\\uD800\"", 1, 7,
            "escape sequence '\\uD800' is not a Unicode scalar value (surrogates and values above 10FFFF are not allowed)");

    [Fact]
    public void ShortUnicodeEscapeIsRejected() =>
        AssertError("s = \"\\u12G4\"", 1, 6, "invalid escape sequence '\\u12': \\u must be followed by 4 hexadecimal digits");

    [Fact]
    public void UnterminatedStringPointsAtTheEndOfTheLine() =>
        AssertError("s = \"abc\nx = 1\n", 1, 9,
            "unterminated string (opened at 1:5): basic strings cannot span lines; use \"\"\" for a multi-line string");

    [Fact]
    public void UnterminatedMultiLineStringPointsAtTheEndOfTheFile() =>
        AssertError("a = 1\ns = \"\"\"abc\n\ndef", 4, 4, "unterminated multi-line string (opened at 2:5)");

    [Fact]
    public void UnderscoreMustSitBetweenDigits() =>
        AssertError("n = 0x_1F", 1, 7, "an underscore in a hexadecimal integer must be between two digits");

    [Fact]
    public void DoubleUnderscoreIsRejected() =>
        AssertError("n = 1__000", 1, 6, "an underscore in an integer must be between two digits");

    [Fact]
    public void LeadingZeroIsRejected() =>
        AssertError("n = 012", 1, 5, "leading zeros are not allowed in integers ('012')");

    [Fact]
    public void IntegerOverflowIsRejected() =>
        AssertError("n = 9_223_372_036_854_775_808", 1, 5,
            "integer '9_223_372_036_854_775_808' does not fit in 64 bits (range -9223372036854775808 to 9223372036854775807)");

    [Fact]
    public void HexOverflowIsRejected() =>
        AssertError("n = 0x8000000000000000", 1, 5,
            "integer '0x8000000000000000' does not fit in 64 bits (maximum 9223372036854775807)");

    [Fact]
    public void SignedHexIsRejected() =>
        AssertError("n = -0x10", 1, 5, "a sign is not allowed on hexadecimal integers");

    [Fact]
    public void FloatWithoutFractionDigitsIsRejected() =>
        AssertError("f = 1.e5", 1, 7, "expected a digit after the decimal point, found 'e'");

    [Fact]
    public void TableRedefinitionPointsAtTheHeaderKey() =>
        AssertError("[a]\nx = 1\n\n[a]\ny = 2\n", 4, 2, "table [a] is already defined at 1:1");

    [Fact]
    public void TableDefinedByDottedKeysCannotGetAHeader() =>
        AssertError("[fruit]\napple.color = \"red\"\n\n[fruit.apple]\n", 4, 8,
            "table [fruit.apple] is already defined by dotted keys at 2:1");

    [Fact]
    public void TableDefinedByHeaderCannotBeExtendedWithDottedKeys() =>
        AssertError("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", 4, 1,
            "cannot add keys to table 'b' with a dotted key: it is defined by a table header at 1:4");

    [Fact]
    public void InlineTableCannotBeExtendedByAHeader() =>
        AssertError("a = { b = 1 }\n[a.c]\n", 2, 2,
            "cannot extend inline table 'a' (defined at 1:1) with a table header: inline tables are immutable");

    [Fact]
    public void InlineTableCannotBeExtendedByDottedKeys() =>
        AssertError("a = { b = 1 }\na.c = 2\n", 2, 1,
            "cannot add keys to inline table 'a' (defined at 1:1): inline tables are immutable");

    [Fact]
    public void StaticArrayCannotBeAppendedToByAHeader() =>
        AssertError("a = [1]\n[[a]]\n", 2, 3, "cannot append to [[a]]: 'a' is a static array defined at 1:1");

    [Fact]
    public void TableCannotBecomeAnArrayOfTables() =>
        AssertError("[a]\n[[a]]\n", 2, 3, "cannot define array of tables [[a]]: 'a' is already defined as a table at 1:2");

    [Fact]
    public void ValueCannotBecomeATable() =>
        AssertError("a = 1\n[a.b]\n", 2, 2, "cannot use 'a' as a table: it is already defined as an integer at 1:1");

    [Fact]
    public void MissingEqualsSign() =>
        AssertError("key value", 1, 5, "expected '=' after key 'key', found 'v'");

    [Fact]
    public void MissingValue() =>
        AssertError("key =\n", 1, 6, "expected a value, found end of line");

    [Fact]
    public void UnquotedStringValue() =>
        AssertError("kernel = vmlinuz", 1, 10,
            "invalid value 'vmlinuz' (strings must be quoted; booleans are 'true' and 'false' in lower case)");

    [Fact]
    public void TwoValuesOnOneLine() =>
        AssertError("a = 1 b = 2", 1, 7, "expected a newline after the value, found 'b'");

    [Fact]
    public void TrailingCommaInInlineTable() =>
        AssertError("t = { a = 1, }", 1, 14, "a trailing comma is not allowed in an inline table");

    [Fact]
    public void NewlineInInlineTable() =>
        AssertError("t = { a = 1,\n b = 2 }", 1, 13,
            "inline table (opened at 1:5) must be on a single line: expected a key, found end of line");

    [Fact]
    public void UnterminatedArray() =>
        AssertError("a = [1, 2\n", 2, 1, "unterminated array (opened at 1:5): expected ']'");

    [Fact]
    public void InvalidCalendarDate() =>
        AssertError("d = 2021-02-29", 1, 13, "day 29 is out of range for 2021-02 (01 to 28)");

    [Fact]
    public void LeapDayIsAccepted() =>
        Assert.Equal(29, ((TomlDateTime)TomlParser.Parse("d = 2024-02-29")["d"]).Day);

    [Fact]
    public void TimeWithoutSeconds() =>
        AssertError("t = 07:32", 1, 10, "expected ':' after the minute (seconds are required), found end of file");

    [Fact]
    public void OffsetHourOutOfRange() =>
        AssertError("d = 1985-06-18 17:04:07+25:00", 1, 25, "offset hour 25 is out of range (00 to 23)");

    [Fact]
    public void ColumnsCountUnicodeScalarValuesNotUtf16Units() =>
        // U+1F600 is two UTF-16 code units but one column.
        AssertError("s = \"\U0001F600\" x", 1, 9, "expected a newline after the value, found 'x'");

    [Fact]
    public void ControlCharacterInComment() =>
        AssertError("a = 1 # note\u0001\n", 1, 13, "control character U+0001 is not allowed in a comment");

    [Fact]
    public void ControlCharacterInString() =>
        AssertError("a = \"x\u007Fy\"", 1, 7, "control character U+007F is not allowed in a string; use an escape sequence");

    [Fact]
    public void BareCarriageReturn() =>
        AssertError("a = 1\r\nb = 2\rc = 3", 2, 6, "a carriage return must be followed by a line feed");

    [Fact]
    public void ByteOrderMarkIsNotAColumn() =>
        AssertError("\uFEFFa = ?", 1, 5, "expected a value, found '?'");

    [Fact]
    public void InvalidUtf8IsLocated()
    {
        byte[] bytes = [.. "a = 1\nb = \""u8, 0xFF, .. "\""u8];
        var e = Assert.Throws<TomlException>(() => TomlParser.ParseUtf8(bytes, "x.toml"));
        Assert.Equal("x.toml:2:6: invalid UTF-8 byte 0xFF (TOML documents must be UTF-8)", e.Message);
    }

    [Fact]
    public void LoneSurrogateInStringIsRejected() =>
        AssertError("a = \"\uD800\"", 1, 6, "unpaired surrogate U+D800");

    [Fact]
    public void DeepNestingIsRejectedWithoutExhaustingTheStack()
    {
        string toml = "a = " + new string('[', 100_000) + new string(']', 100_000);
        TomlException e = Reject(toml);
        Assert.Equal(new TomlPosition(1, 5 + TomlParser.MaxNestingDepth), e.Position);
        Assert.Equal($"arrays and inline tables are nested more than {TomlParser.MaxNestingDepth} deep", e.Reason);
    }

    [Fact]
    public void ErrorOnALaterLineAfterMultiLineStringsAndCrLf()
    {
        string toml = "a = \"\"\"\r\none\r\ntwo\"\"\"\r\nb = '''x\ny'''\r\nc = @";
        AssertError(toml, 6, 5, "expected a value, found '@'");
    }
}

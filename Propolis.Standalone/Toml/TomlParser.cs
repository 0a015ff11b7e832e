// A TOML 1.0.0 parser (https://toml.io/en/v1.0.0, grammar: toml.abnf of the same tag).
//
// One hand-written scanner over the source string: no regular expressions, no token objects.
// Strings without escapes are cut out of the source with one Substring; strings with escapes
// are assembled in one reusable buffer. Every error is a TomlException located at the
// offending character (1-based line, column in Unicode scalar values).

using System.Globalization;
using System.Text;

namespace Propolis.Standalone.Toml;

public static class TomlParser
{
    /// <summary>Arrays and inline tables nested deeper than this are rejected, so that a
    /// hostile document cannot exhaust the stack.</summary>
    public const int MaxNestingDepth = 128;

    /// <summary>Parses a TOML 1.0 document. A leading byte order mark is ignored.</summary>
    /// <exception cref="TomlException">The text is not valid TOML 1.0.</exception>
    public static TomlTable Parse(string text, string? fileName = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new Parser(text, fileName).ParseDocument();
    }

    /// <summary>Parses a TOML 1.0 document encoded as UTF-8 (with or without a byte order
    /// mark). Invalid UTF-8 is reported, like any other error, at its line and column.</summary>
    /// <exception cref="TomlException">The bytes are not valid UTF-8 or not valid TOML 1.0.</exception>
    public static TomlTable ParseUtf8(ReadOnlySpan<byte> utf8, string? fileName = null)
    {
        int line = 1, column = 1;
        int offset = 0;
        while (offset < utf8.Length)
        {
            byte b = utf8[offset];
            if (b < 0x80)
            {
                offset++;
                if (b == (byte)'\n') { line++; column = 1; }
                else column++;
                continue;
            }
            var status = Rune.DecodeFromUtf8(utf8[offset..], out _, out int consumed);
            if (status != System.Buffers.OperationStatus.Done)
                throw new TomlException($"invalid UTF-8 byte 0x{b:X2} (TOML documents must be UTF-8)", new TomlPosition(line, column), fileName);
            offset += consumed;
            // A leading BOM is not a column of the first line.
            if (!(offset == 3 && consumed == 3 && utf8[0] == 0xEF && utf8[1] == 0xBB && utf8[2] == 0xBF))
                column++;
        }
        return Parse(Encoding.UTF8.GetString(utf8), fileName);
    }

    /// <summary>How a table came to exist; decides which later definitions may touch it.</summary>
    private enum TableOrigin : byte
    {
        Root,
        /// <summary>An intermediate of a header path (<c>a</c> in <c>[a.b]</c>); one later
        /// <c>[a]</c> header may still define it.</summary>
        Implicit,
        /// <summary>Defined by <c>[header]</c> or as an element of <c>[[header]]</c>.</summary>
        Header,
        /// <summary>Created by a dotted key (<c>a.b = 1</c>); dotted keys of the same table may
        /// extend it, headers may only define sub-tables beneath it.</summary>
        Dotted,
        /// <summary><c>{ ... }</c>: complete and immutable once written.</summary>
        Inline,
    }

    private sealed class Parser
    {
        private const int Eof = -1;

        private readonly string _text;
        private readonly string? _fileName;
        private readonly Dictionary<TomlTable, TableOrigin> _origins = new();
        private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _keyLookup =
            new Dictionary<string, string>(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();

        private int _pos;
        private int _line = 1;
        private int _lineStart;
        // Column cache for the current line: the column of the character at _colIndex.
        private int _colIndex;
        private int _colValue = 1;
        private int _depth;

        // Scratch buffer for strings with escapes or normalised newlines.
        private char[] _buf = new char[128];
        private int _bufLen;

        public Parser(string text, string? fileName)
        {
            _text = text;
            _fileName = fileName;
            if (text.Length > 0 && text[0] == '\uFEFF')
            {
                _pos = 1;
                _lineStart = 1;
                _colIndex = 1;
            }
        }

        private int Cur => _pos < _text.Length ? _text[_pos] : Eof;
        private int PeekAt(int index) => index < _text.Length ? _text[index] : Eof;

        // ---------------------------------------------------------------- document

        public TomlTable ParseDocument()
        {
            var root = new TomlTable(new TomlPosition(1, 1));
            _origins[root] = TableOrigin.Root;
            TomlTable current = root;
            while (true)
            {
                SkipWhitespace();
                int c = Cur;
                switch (c)
                {
                    case Eof:
                        return root;
                    case '#':
                        SkipComment();
                        break;
                    case '\n':
                    case '\r':
                        ConsumeNewline();
                        break;
                    case '[':
                        current = ParseHeader(root);
                        ExpectLineEnd("after the table header");
                        break;
                    default:
                        if (!IsKeyStart(c))
                            throw ErrorAt(_pos, $"expected a key or a table header, found {Describe(_pos)}");
                        ParseKeyValue(current);
                        ExpectLineEnd("after the value");
                        break;
                }
            }
        }

        /// <summary>After a key/value pair or a header: optional whitespace and comment, then a
        /// newline or the end of the document.</summary>
        private void ExpectLineEnd(string what)
        {
            SkipWhitespace();
            int c = Cur;
            if (c == '#')
            {
                SkipComment();
                c = Cur;
            }
            if (c == Eof)
                return;
            if (c == '\n' || c == '\r')
            {
                ConsumeNewline();
                return;
            }
            throw ErrorAt(_pos, $"expected a newline {what}, found {Describe(_pos)}");
        }

        // ---------------------------------------------------------------- whitespace, comments

        private void SkipWhitespace()
        {
            string t = _text;
            int p = _pos;
            while (p < t.Length && (t[p] == ' ' || t[p] == '\t'))
                p++;
            _pos = p;
        }

        /// <summary>Whitespace, newlines and comments, as allowed between array elements.</summary>
        private void SkipWhitespaceCommentsAndNewlines()
        {
            while (true)
            {
                SkipWhitespace();
                int c = Cur;
                if (c == '#')
                    SkipComment();
                else if (c == '\n' || c == '\r')
                    ConsumeNewline();
                else
                    return;
            }
        }

        /// <summary>At '#': skips to (not past) the end of the line. Comments may hold any
        /// character but control characters other than tab (TOML 1.0 "comment").</summary>
        private void SkipComment()
        {
            string t = _text;
            int p = _pos + 1;
            while (p < t.Length)
            {
                char c = t[p];
                if (c >= 0x20 && c < 0x7F || c == '\t')
                {
                    p++;
                    continue;
                }
                if (c == '\n')
                    break;
                if (c == '\r')
                {
                    if (p + 1 < t.Length && t[p + 1] == '\n')
                        break;
                    throw ErrorAt(p, "a carriage return must be followed by a line feed");
                }
                if (c < 0x80)
                    throw ErrorAt(p, $"control character {Describe(p)} is not allowed in a comment");
                p = SkipNonAscii(p);
            }
            _pos = p;
        }

        /// <summary>Validates the non-ASCII character at <paramref name="p"/> (a surrogate must be
        /// part of a pair) and returns the index after it.</summary>
        private int SkipNonAscii(int p)
        {
            char c = _text[p];
            if (char.IsHighSurrogate(c))
            {
                if (p + 1 < _text.Length && char.IsLowSurrogate(_text[p + 1]))
                    return p + 2;
                throw ErrorAt(p, $"unpaired surrogate U+{(int)c:X4}");
            }
            if (char.IsLowSurrogate(c))
                throw ErrorAt(p, $"unpaired surrogate U+{(int)c:X4}");
            return p + 1;
        }

        /// <summary>At '\n' or '\r': consumes LF or CRLF.</summary>
        private void ConsumeNewline()
        {
            if (_text[_pos] == '\r')
            {
                if (PeekAt(_pos + 1) != '\n')
                    throw ErrorAt(_pos, "a carriage return must be followed by a line feed");
                _pos += 2;
            }
            else
            {
                _pos++;
            }
            StartLine();
        }

        /// <summary>Records that a new line starts at <see cref="_pos"/>.</summary>
        private void StartLine()
        {
            _line++;
            _lineStart = _pos;
            _colIndex = _pos;
            _colValue = 1;
        }

        // ---------------------------------------------------------------- positions and errors

        /// <summary>The position of <paramref name="index"/>, which must lie on the current line.
        /// Amortised O(1) for increasing indices.</summary>
        private TomlPosition Here(int index)
        {
            if (index < _colIndex)
            {
                _colIndex = _lineStart;
                _colValue = 1;
            }
            string t = _text;
            int col = _colValue;
            for (int i = _colIndex; i < index; i++)
            {
                if (!char.IsLowSurrogate(t[i]))
                    col++;
            }
            _colIndex = index;
            _colValue = col;
            return new TomlPosition(_line, col);
        }

        /// <summary>The position of any index, computed from the start (error paths only).</summary>
        private TomlPosition PositionOf(int index)
        {
            string t = _text;
            int line = 1;
            int col = 1;
            int start = t.Length > 0 && t[0] == '\uFEFF' ? 1 : 0;
            index = Math.Min(index, t.Length);
            for (int i = start; i < index; i++)
            {
                char c = t[i];
                if (c == '\n')
                {
                    line++;
                    col = 1;
                }
                else if (!char.IsLowSurrogate(c))
                {
                    col++;
                }
            }
            return new TomlPosition(line, col);
        }

        private TomlException ErrorAt(int index, string message) => new(message, PositionOf(index), _fileName);

        private TomlException ErrorAt(TomlPosition position, string message) => new(message, position, _fileName);

        /// <summary>Names the character at <paramref name="index"/> for an error message.</summary>
        private string Describe(int index)
        {
            if (index >= _text.Length)
                return "end of file";
            char c = _text[index];
            if (c == '\n' || c == '\r')
                return "end of line";
            if (c < 0x20 || c == 0x7F)
                return $"U+{(int)c:X4}";
            if (c < 0x7F)
                return $"'{c}'";
            if (char.IsHighSurrogate(c) && index + 1 < _text.Length && char.IsLowSurrogate(_text[index + 1]))
                return $"'{_text.Substring(index, 2)}'";
            if (char.IsSurrogate(c))
                return $"U+{(int)c:X4}";
            return $"'{c}' (U+{(int)c:X4})";
        }

        private static string Article(string typeName) =>
            typeName[0] is 'a' or 'e' or 'i' or 'o' or 'u' ? "an " + typeName : "a " + typeName;

        // ---------------------------------------------------------------- keys

        private static bool IsBareKeyChar(int c) =>
            (uint)((c | 0x20) - 'a') <= 'z' - 'a' || (uint)(c - '0') <= 9 || c == '_' || c == '-';

        private static bool IsKeyStart(int c) => IsBareKeyChar(c) || c == '"' || c == '\'';

        /// <summary>One component of a key: bare, basic-quoted or literal-quoted.</summary>
        private string ParseSimpleKey()
        {
            int c = Cur;
            if (c == '"' || c == '\'')
            {
                if (PeekAt(_pos + 1) == c && PeekAt(_pos + 2) == c)
                    throw ErrorAt(_pos, "a multi-line string cannot be used as a key");
                return c == '"' ? ParseBasicString() : ParseLiteralString();
            }
            int start = _pos;
            int p = _pos;
            string t = _text;
            while (p < t.Length && IsBareKeyChar(t[p]))
                p++;
            if (p == start)
                throw ErrorAt(p, $"expected a key, found {Describe(p)}");
            _pos = p;
            // Configuration files repeat the same bare keys in every section; allocate each once.
            ReadOnlySpan<char> key = t.AsSpan(start, p - start);
            if (_keyLookup.TryGetValue(key, out string? known))
                return known;
            string name = key.ToString();
            _keyLookup[key] = name;
            return name;
        }

        /// <summary>A key/value pair in <paramref name="table"/> (the current section or an inline
        /// table). Dotted keys create or extend tables that were themselves created by dotted keys.</summary>
        private void ParseKeyValue(TomlTable table)
        {
            int keyStart = _pos;
            string name = ParseSimpleKey();
            TomlPosition keyPos = Here(keyStart);
            SkipWhitespace();
            while (Cur == '.')
            {
                _pos++;
                SkipWhitespace();
                table = DescendDottedKey(table, name, keyPos);
                keyStart = _pos;
                if (!IsKeyStart(Cur))
                    throw ErrorAt(_pos, $"expected a key after '.', found {Describe(_pos)}");
                name = ParseSimpleKey();
                keyPos = Here(keyStart);
                SkipWhitespace();
            }
            if (Cur != '=')
                throw ErrorAt(_pos, $"expected '=' after key '{name}', found {Describe(_pos)}");
            _pos++;
            SkipWhitespace();
            if (table.TryGetKey(name, out TomlKey existing))
                throw ErrorAt(keyPos, $"duplicate key '{name}' (first defined at {existing.Position})");
            TomlNode value = ParseValue();
            table.Add(new TomlKey(name, keyPos), value);
        }

        private TomlTable DescendDottedKey(TomlTable table, string name, TomlPosition keyPos)
        {
            if (!table.TryGetValue(name, out TomlNode node))
            {
                var created = new TomlTable(keyPos);
                _origins[created] = TableOrigin.Dotted;
                table.Add(new TomlKey(name, keyPos), created);
                return created;
            }
            table.TryGetKey(name, out TomlKey existing);
            switch (node)
            {
                case TomlTable sub:
                    switch (_origins[sub])
                    {
                        case TableOrigin.Dotted:
                            return sub;
                        case TableOrigin.Inline:
                            throw ErrorAt(keyPos, $"cannot add keys to inline table '{name}' (defined at {existing.Position}): inline tables are immutable");
                        default:
                            throw ErrorAt(keyPos, $"cannot add keys to table '{name}' with a dotted key: it is defined by a table header at {sub.Position}");
                    }
                case TomlArray array:
                    throw ErrorAt(keyPos, $"cannot add keys to '{name}' with a dotted key: it is {(array.IsArrayOfTables ? "an array of tables" : "an array")} (defined at {existing.Position})");
                default:
                    throw ErrorAt(keyPos, $"cannot use '{name}' as a table: it is already defined as {Article(node.TypeName)} at {existing.Position}");
            }
        }

        // ---------------------------------------------------------------- table headers

        /// <summary>At '[': parses <c>[a.b]</c> or <c>[[a.b]]</c> and returns the table that
        /// following key/value pairs go into.</summary>
        private TomlTable ParseHeader(TomlTable root)
        {
            int headerStart = _pos;
            TomlPosition headerPos = Here(headerStart);
            bool isArray = PeekAt(_pos + 1) == '[';
            _pos += isArray ? 2 : 1;
            SkipWhitespace();

            TomlTable table = root;
            while (true)
            {
                int keyStart = _pos;
                if (!IsKeyStart(Cur))
                    throw ErrorAt(_pos, $"expected a key in the table header, found {Describe(_pos)}");
                string name = ParseSimpleKey();
                TomlPosition keyPos = Here(keyStart);
                SkipWhitespace();
                if (Cur == '.')
                {
                    _pos++;
                    SkipWhitespace();
                    table = DescendHeader(table, name, keyPos, headerStart);
                    continue;
                }
                if (Cur != ']')
                    throw ErrorAt(_pos, $"expected '.' or '{(isArray ? "]]" : "]")}' in the table header, found {Describe(_pos)}");
                int headerEnd = _pos;
                _pos++;
                if (isArray)
                {
                    if (Cur != ']')
                        throw ErrorAt(_pos, $"expected ']]' to close the array of tables header, found {Describe(_pos)}");
                    _pos++;
                }
                return isArray
                    ? DefineArrayTable(table, name, keyPos, headerPos, headerStart, headerEnd)
                    : DefineTable(table, name, keyPos, headerPos, headerStart, headerEnd);
            }
        }

        private string HeaderText(int headerStart, int headerEnd, bool isArray)
        {
            int nameStart = headerStart + (isArray ? 2 : 1);
            string inner = _text.Substring(nameStart, headerEnd - nameStart).Trim(' ', '\t');
            return isArray ? $"[[{inner}]]" : $"[{inner}]";
        }

        /// <summary>An intermediate component of a header path.</summary>
        private TomlTable DescendHeader(TomlTable table, string name, TomlPosition keyPos, int headerStart)
        {
            if (!table.TryGetValue(name, out TomlNode node))
            {
                var created = new TomlTable(keyPos);
                _origins[created] = TableOrigin.Implicit;
                table.Add(new TomlKey(name, keyPos), created);
                return created;
            }
            table.TryGetKey(name, out TomlKey existing);
            switch (node)
            {
                case TomlTable sub when _origins[sub] == TableOrigin.Inline:
                    throw ErrorAt(keyPos, $"cannot extend inline table '{name}' (defined at {existing.Position}) with a table header: inline tables are immutable");
                case TomlTable sub:
                    return sub;
                case TomlArray { IsArrayOfTables: true } array:
                    return (TomlTable)array[array.Count - 1];
                case TomlArray:
                    throw ErrorAt(keyPos, $"cannot extend array '{name}' (defined at {existing.Position}) with a table header");
                default:
                    throw ErrorAt(keyPos, $"cannot use '{name}' as a table: it is already defined as {Article(node.TypeName)} at {existing.Position}");
            }
        }

        private TomlTable DefineTable(TomlTable parent, string name, TomlPosition keyPos, TomlPosition headerPos, int headerStart, int headerEnd)
        {
            if (!parent.TryGetValue(name, out TomlNode node))
            {
                var created = new TomlTable(headerPos);
                _origins[created] = TableOrigin.Header;
                parent.Add(new TomlKey(name, keyPos), created);
                return created;
            }
            parent.TryGetKey(name, out TomlKey existing);
            string header = HeaderText(headerStart, headerEnd, isArray: false);
            switch (node)
            {
                case TomlTable table:
                    switch (_origins[table])
                    {
                        case TableOrigin.Implicit:
                            _origins[table] = TableOrigin.Header;
                            return table;
                        case TableOrigin.Header:
                            throw ErrorAt(keyPos, $"table {header} is already defined at {table.Position}");
                        case TableOrigin.Dotted:
                            throw ErrorAt(keyPos, $"table {header} is already defined by dotted keys at {existing.Position}");
                        default:
                            throw ErrorAt(keyPos, $"table {header} is already defined as an inline table at {existing.Position}");
                    }
                case TomlArray { IsArrayOfTables: true }:
                    throw ErrorAt(keyPos, $"table {header} is already defined as an array of tables at {existing.Position}");
                default:
                    throw ErrorAt(keyPos, $"cannot define table {header}: key '{name}' is already defined as {Article(node.TypeName)} at {existing.Position}");
            }
        }

        private TomlTable DefineArrayTable(TomlTable parent, string name, TomlPosition keyPos, TomlPosition headerPos, int headerStart, int headerEnd)
        {
            TomlArray array;
            if (!parent.TryGetValue(name, out TomlNode node))
            {
                array = new TomlArray(headerPos) { IsArrayOfTables = true };
                parent.Add(new TomlKey(name, keyPos), array);
            }
            else if (node is TomlArray { IsArrayOfTables: true } existingArray)
            {
                array = existingArray;
            }
            else
            {
                parent.TryGetKey(name, out TomlKey existing);
                string header = HeaderText(headerStart, headerEnd, isArray: true);
                throw node switch
                {
                    TomlArray => ErrorAt(keyPos, $"cannot append to {header}: '{name}' is a static array defined at {existing.Position}"),
                    TomlTable => ErrorAt(keyPos, $"cannot define array of tables {header}: '{name}' is already defined as a table at {existing.Position}"),
                    _ => ErrorAt(keyPos, $"cannot define array of tables {header}: key '{name}' is already defined as {Article(node.TypeName)} at {existing.Position}"),
                };
            }
            var element = new TomlTable(headerPos);
            _origins[element] = TableOrigin.Header;
            array.Add(element);
            return element;
        }

        // ---------------------------------------------------------------- values

        private TomlNode ParseValue()
        {
            int c = Cur;
            switch (c)
            {
                case '"':
                {
                    TomlPosition pos = Here(_pos);
                    string s = PeekAt(_pos + 1) == '"' && PeekAt(_pos + 2) == '"' ? ParseMultiLineString('"') : ParseBasicString();
                    return new TomlString(s, pos);
                }
                case '\'':
                {
                    TomlPosition pos = Here(_pos);
                    string s = PeekAt(_pos + 1) == '\'' && PeekAt(_pos + 2) == '\'' ? ParseMultiLineString('\'') : ParseLiteralString();
                    return new TomlString(s, pos);
                }
                case '[':
                    return ParseArray();
                case '{':
                    return ParseInlineTable();
                case '+':
                case '-':
                    return ParseNumber();
                case Eof:
                    throw ErrorAt(_pos, "expected a value, found end of file");
                case '\n':
                case '\r':
                    throw ErrorAt(_pos, "expected a value, found end of line");
            }
            if ((uint)(c - '0') <= 9)
            {
                if (IsDigitAt(_pos + 1) && IsDigitAt(_pos + 2) && IsDigitAt(_pos + 3) && PeekAt(_pos + 4) == '-')
                    return ParseDateOrDateTime();
                if (IsDigitAt(_pos + 1) && PeekAt(_pos + 2) == ':')
                    return ParseLocalTime();
                return ParseNumber();
            }
            if ((uint)((c | 0x20) - 'a') <= 'z' - 'a')
                return ParseWord();
            throw ErrorAt(_pos, $"expected a value, found {Describe(_pos)}");
        }

        private bool IsDigitAt(int index) => (uint)(PeekAt(index) - '0') <= 9;

        /// <summary>A value starting with a letter: true, false, inf, nan.</summary>
        private TomlNode ParseWord()
        {
            int start = _pos;
            int end = ScanToken(start);
            ReadOnlySpan<char> word = _text.AsSpan(start, end - start);
            TomlPosition pos = Here(start);
            _pos = end;
            if (word.SequenceEqual("true"))
                return new TomlBoolean(true, pos);
            if (word.SequenceEqual("false"))
                return new TomlBoolean(false, pos);
            if (word.SequenceEqual("inf"))
                return new TomlFloat(double.PositiveInfinity, pos);
            if (word.SequenceEqual("nan"))
                return new TomlFloat(double.NaN, pos);
            throw ErrorAt(start, $"invalid value '{word}' (strings must be quoted; booleans are 'true' and 'false' in lower case)");
        }

        /// <summary>The end of a run of characters that can make up a number, boolean or
        /// date-time token, so that errors can quote the whole token.</summary>
        private int ScanToken(int start)
        {
            string t = _text;
            int p = start;
            while (p < t.Length)
            {
                char c = t[p];
                if (IsBareKeyChar(c) || c == '.' || c == ':')
                    p++;
                else if (c == '+' && p > start && (t[p - 1] | 0x20) == 'e')
                    p++;
                else if (c == '+' && p == start)
                    p++;
                else
                    break;
            }
            return p;
        }

        // ---------------------------------------------------------------- numbers

        private TomlNode ParseNumber()
        {
            int start = _pos;
            int end = ScanToken(start);
            TomlPosition pos = Here(start);
            _pos = end;

            int p = start;
            bool negative = false;
            bool signed = false;
            char first = _text[p];
            if (first == '+' || first == '-')
            {
                negative = first == '-';
                signed = true;
                p++;
            }
            if (p == end)
                throw ErrorAt(p, $"expected a number after '{first}', found {Describe(p)}");

            ReadOnlySpan<char> body = _text.AsSpan(p, end - p);
            if (body.SequenceEqual("inf"))
                return new TomlFloat(negative ? double.NegativeInfinity : double.PositiveInfinity, pos);
            if (body.SequenceEqual("nan"))
                return new TomlFloat(negative ? -double.NaN : double.NaN, pos);

            if (body.Length >= 2 && body[0] == '0' && body[1] is 'x' or 'o' or 'b')
            {
                if (signed)
                    throw ErrorAt(start, $"a sign is not allowed on {RadixName(body[1])} integers");
                return new TomlInteger(ParseRadixInteger(p + 2, end, body[1]), pos);
            }

            if ((uint)(body[0] - '0') > 9)
                throw ErrorAt(p, $"invalid number '{_text.AsSpan(start, end - start)}'");

            for (int i = p; i < end; i++)
            {
                char c = _text[i];
                if (c == '.' || c == 'e' || c == 'E')
                    return new TomlFloat(ParseFloat(start, p, end), pos);
            }
            return new TomlInteger(ParseDecimalInteger(start, p, end, negative), pos);
        }

        private static string RadixName(char prefix) => prefix switch
        {
            'x' => "hexadecimal",
            'o' => "octal",
            _ => "binary",
        };

        /// <summary>Checks the run of digits with single underscores between them starting at
        /// <paramref name="p"/> and returns its end. <paramref name="radix"/> decides the alphabet;
        /// <paramref name="what"/> names the value in errors.</summary>
        private int ScanDigits(int p, int end, int radix, string what)
        {
            int start = p;
            while (p < end)
            {
                char c = _text[p];
                if (IsRadixDigit(c, radix))
                {
                    p++;
                    continue;
                }
                if (c == '_')
                {
                    if (p == start || !IsRadixDigit(_text[p - 1], radix))
                        throw ErrorAt(p, $"an underscore in {what} must be between two digits");
                    if (p + 1 >= end || !IsRadixDigit(_text[p + 1], radix))
                        throw ErrorAt(p, $"an underscore in {what} must be between two digits");
                    p++;
                    continue;
                }
                break;
            }
            if (p == start)
                throw ErrorAt(p, $"expected a digit in {what}, found {Describe(p)}");
            return p;
        }

        private static bool IsRadixDigit(char c, int radix) => radix switch
        {
            16 => char.IsAsciiHexDigit(c),
            8 => (uint)(c - '0') <= 7,
            2 => c is '0' or '1',
            _ => (uint)(c - '0') <= 9,
        };

        private long ParseRadixInteger(int p, int end, char prefix)
        {
            int radix = prefix switch { 'x' => 16, 'o' => 8, _ => 2 };
            string what = prefix switch { 'x' => "a hexadecimal integer", 'o' => "an octal integer", _ => "a binary integer" };
            int digitsEnd = ScanDigits(p, end, radix, what);
            if (digitsEnd != end)
                throw ErrorAt(digitsEnd, $"invalid character {Describe(digitsEnd)} in {what}");
            int shift = radix switch { 16 => 4, 8 => 3, _ => 1 };
            ulong value = 0;
            for (int i = p; i < end; i++)
            {
                char c = _text[i];
                if (c == '_')
                    continue;
                int digit = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
                if (value > (ulong)long.MaxValue >> shift)
                    throw ErrorAt(p - 2, $"integer '{_text.AsSpan(p - 2, end - p + 2)}' does not fit in 64 bits (maximum {long.MaxValue})");
                value = value << shift | (uint)digit;
            }
            if (value > long.MaxValue)
                throw ErrorAt(p - 2, $"integer '{_text.AsSpan(p - 2, end - p + 2)}' does not fit in 64 bits (maximum {long.MaxValue})");
            return (long)value;
        }

        private long ParseDecimalInteger(int start, int p, int end, bool negative)
        {
            const string what = "an integer";
            if (_text[p] == '0' && p + 1 < end)
                throw ErrorAt(p, $"leading zeros are not allowed in integers ('{_text.AsSpan(start, end - start)}')");
            int digitsEnd = ScanDigits(p, end, 10, what);
            if (digitsEnd != end)
                throw ErrorAt(digitsEnd, $"invalid character {Describe(digitsEnd)} in {what}");
            ulong limit = negative ? (ulong)long.MaxValue + 1 : long.MaxValue;
            ulong value = 0;
            for (int i = p; i < end; i++)
            {
                char c = _text[i];
                if (c == '_')
                    continue;
                uint digit = (uint)(c - '0');
                if (value > (limit - digit) / 10)
                    throw ErrorAt(start, $"integer '{_text.AsSpan(start, end - start)}' does not fit in 64 bits (range {long.MinValue} to {long.MaxValue})");
                value = value * 10 + digit;
            }
            return negative ? (long)(0 - value) : (long)value;
        }

        /// <summary>float = [sign] int-part ( exp / frac [exp] ), with underscores between digits.</summary>
        private double ParseFloat(int start, int p, int end)
        {
            const string what = "a float";
            if (_text[p] == '0' && p + 1 < end && (uint)(_text[p + 1] - '0') <= 9 || _text[p] == '0' && p + 1 < end && _text[p + 1] == '_')
                throw ErrorAt(p, $"leading zeros are not allowed in floats ('{_text.AsSpan(start, end - start)}')");
            int q = ScanDigits(p, end, 10, what);
            if (q < end && _text[q] == '.')
            {
                q++;
                if (q >= end || (uint)(_text[q] - '0') > 9)
                    throw ErrorAt(q, $"expected a digit after the decimal point, found {Describe(q)}");
                q = ScanDigits(q, end, 10, what);
            }
            if (q < end && (_text[q] | 0x20) == 'e')
            {
                q++;
                if (q < end && _text[q] is '+' or '-')
                    q++;
                if (q >= end || (uint)(_text[q] - '0') > 9)
                    throw ErrorAt(q, $"expected a digit in the exponent, found {Describe(q)}");
                q = ScanDigits(q, end, 10, what);
            }
            if (q != end)
                throw ErrorAt(q, $"invalid character {Describe(q)} in {what}");

            int length = end - start;
            Span<char> digits = length <= 256 ? stackalloc char[length] : new char[length];
            int n = 0;
            for (int i = start; i < end; i++)
            {
                char c = _text[i];
                if (c != '_')
                    digits[n++] = c;
            }
            double value = double.Parse(digits[..n], NumberStyles.Float, CultureInfo.InvariantCulture);
            if (double.IsInfinity(value))
                throw ErrorAt(start, $"float '{_text.AsSpan(start, end - start)}' is out of range for a 64-bit float");
            return value;
        }

        // ---------------------------------------------------------------- dates and times

        private int ReadTwoDigits(ref int p, string field)
        {
            if (!IsDigitAt(p) || !IsDigitAt(p + 1))
                throw ErrorAt(IsDigitAt(p) ? p + 1 : p, $"expected a two-digit {field}, found {Describe(IsDigitAt(p) ? p + 1 : p)}");
            int value = (_text[p] - '0') * 10 + (_text[p + 1] - '0');
            p += 2;
            return value;
        }

        private void Expect(ref int p, char c, string context)
        {
            if (PeekAt(p) != c)
                throw ErrorAt(p, $"expected '{c}' {context}, found {Describe(p)}");
            p++;
        }

        private static bool IsLeapYear(int year) => year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

        private static int DaysInMonth(int year, int month) => month switch
        {
            2 => IsLeapYear(year) ? 29 : 28,
            4 or 6 or 9 or 11 => 30,
            _ => 31,
        };

        /// <summary>full-date [ ("T" / "t" / " ") partial-time [ time-offset ] ] (RFC 3339 §5.6).</summary>
        private TomlDateTime ParseDateOrDateTime()
        {
            int start = _pos;
            TomlPosition pos = Here(start);
            int p = start;
            int year = (_text[p] - '0') * 1000 + (_text[p + 1] - '0') * 100 + (_text[p + 2] - '0') * 10 + (_text[p + 3] - '0');
            p += 4;
            Expect(ref p, '-', "after the year");
            int monthAt = p;
            int month = ReadTwoDigits(ref p, "month");
            Expect(ref p, '-', "after the month");
            int dayAt = p;
            int day = ReadTwoDigits(ref p, "day");
            if (month < 1 || month > 12)
                throw ErrorAt(monthAt, $"month {month:D2} is out of range (01 to 12)");
            if (day < 1 || day > DaysInMonth(year, month))
                throw ErrorAt(dayAt, $"day {day:D2} is out of range for {year:D4}-{month:D2} (01 to {DaysInMonth(year, month):D2})");

            int c = PeekAt(p);
            bool hasTime = c is 'T' or 't' || c == ' ' && IsDigitAt(p + 1);
            if (!hasTime)
            {
                _pos = p;
                CheckDateTimeEnd();
                return new TomlDateTime(TomlKind.LocalDate, pos) { Year = year, Month = month, Day = day };
            }
            p++;
            ParseTime(ref p, out int hour, out int minute, out int second, out int nanos, out int fractionDigits);

            c = PeekAt(p);
            int offset = 0;
            TomlKind kind = TomlKind.LocalDateTime;
            if (c is 'Z' or 'z')
            {
                p++;
                kind = TomlKind.OffsetDateTime;
            }
            else if (c is '+' or '-')
            {
                p++;
                int hourAt = p;
                int offsetHours = ReadTwoDigits(ref p, "offset hour");
                Expect(ref p, ':', "in the time offset");
                int minuteAt = p;
                int offsetMinutes = ReadTwoDigits(ref p, "offset minute");
                if (offsetHours > 23)
                    throw ErrorAt(hourAt, $"offset hour {offsetHours:D2} is out of range (00 to 23)");
                if (offsetMinutes > 59)
                    throw ErrorAt(minuteAt, $"offset minute {offsetMinutes:D2} is out of range (00 to 59)");
                offset = offsetHours * 60 + offsetMinutes;
                if (c == '-')
                    offset = -offset;
                kind = TomlKind.OffsetDateTime;
            }
            _pos = p;
            CheckDateTimeEnd();
            return new TomlDateTime(kind, pos)
            {
                Year = year,
                Month = month,
                Day = day,
                Hour = hour,
                Minute = minute,
                Second = second,
                Nanosecond = nanos,
                FractionDigits = fractionDigits,
                OffsetMinutes = offset,
            };
        }

        private TomlDateTime ParseLocalTime()
        {
            int start = _pos;
            TomlPosition pos = Here(start);
            int p = start;
            ParseTime(ref p, out int hour, out int minute, out int second, out int nanos, out int fractionDigits);
            _pos = p;
            CheckDateTimeEnd();
            return new TomlDateTime(TomlKind.LocalTime, pos)
            {
                Hour = hour,
                Minute = minute,
                Second = second,
                Nanosecond = nanos,
                FractionDigits = fractionDigits,
            };
        }

        /// <summary>time-hour ":" time-minute ":" time-second [ "." 1*DIGIT ].</summary>
        private void ParseTime(ref int p, out int hour, out int minute, out int second, out int nanos, out int fractionDigits)
        {
            int hourAt = p;
            hour = ReadTwoDigits(ref p, "hour");
            Expect(ref p, ':', "after the hour");
            int minuteAt = p;
            minute = ReadTwoDigits(ref p, "minute");
            Expect(ref p, ':', "after the minute (seconds are required)");
            int secondAt = p;
            second = ReadTwoDigits(ref p, "second");
            if (hour > 23)
                throw ErrorAt(hourAt, $"hour {hour:D2} is out of range (00 to 23)");
            if (minute > 59)
                throw ErrorAt(minuteAt, $"minute {minute:D2} is out of range (00 to 59)");
            if (second > 60)
                throw ErrorAt(secondAt, $"second {second:D2} is out of range (00 to 60)");
            nanos = 0;
            fractionDigits = 0;
            if (PeekAt(p) == '.')
            {
                p++;
                if (!IsDigitAt(p))
                    throw ErrorAt(p, $"expected a digit after the decimal point in the seconds, found {Describe(p)}");
                while (IsDigitAt(p))
                {
                    if (fractionDigits < 9)
                    {
                        nanos = nanos * 10 + (_text[p] - '0');
                        fractionDigits++;
                    }
                    p++;
                }
                for (int i = fractionDigits; i < 9; i++)
                    nanos *= 10;
            }
        }

        /// <summary>A date-time must not run on into more token characters (e.g. "2001-01-01x").</summary>
        private void CheckDateTimeEnd()
        {
            int c = Cur;
            if (IsBareKeyChar(c) || c is '.' or ':' or '+')
                throw ErrorAt(_pos, $"unexpected {Describe(_pos)} in date-time");
        }

        // ---------------------------------------------------------------- strings

        private void BufferAppend(ReadOnlySpan<char> chars)
        {
            if (_bufLen + chars.Length > _buf.Length)
                Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _bufLen + chars.Length));
            chars.CopyTo(_buf.AsSpan(_bufLen));
            _bufLen += chars.Length;
        }

        private void BufferAppend(char c)
        {
            if (_bufLen == _buf.Length)
                Array.Resize(ref _buf, _buf.Length * 2);
            _buf[_bufLen++] = c;
        }

        /// <summary>The string made of the buffer (when <paramref name="buffered"/>) followed by
        /// the source run [runStart, runEnd).</summary>
        private string FinishString(bool buffered, int runStart, int runEnd)
        {
            if (!buffered)
                return runStart == runEnd ? string.Empty : _text.Substring(runStart, runEnd - runStart);
            BufferAppend(_text.AsSpan(runStart, runEnd - runStart));
            return new string(_buf, 0, _bufLen);
        }

        /// <summary>At '"': a single-line basic string.</summary>
        private string ParseBasicString()
        {
            int open = _pos;
            string t = _text;
            int p = open + 1;
            int runStart = p;
            bool buffered = false;
            while (true)
            {
                if (p >= t.Length)
                    throw ErrorAt(p, $"unterminated string (opened at {Here(open)})");
                char c = t[p];
                if (c == '"')
                {
                    _pos = p + 1;
                    return FinishString(buffered, runStart, p);
                }
                if (c == '\\')
                {
                    if (!buffered)
                    {
                        buffered = true;
                        _bufLen = 0;
                    }
                    BufferAppend(t.AsSpan(runStart, p - runStart));
                    p = ParseEscape(p, multiLine: false);
                    runStart = p;
                    continue;
                }
                if (c >= 0x20 && c < 0x7F || c == '\t')
                {
                    p++;
                    continue;
                }
                if (c == '\n' || c == '\r')
                    throw ErrorAt(p, $"unterminated string (opened at {Here(open)}): basic strings cannot span lines; use \"\"\" for a multi-line string");
                if (c < 0x80)
                    throw ErrorAt(p, $"control character {Describe(p)} is not allowed in a string; use an escape sequence");
                p = SkipNonAscii(p);
            }
        }

        /// <summary>At '\'': a single-line literal string.</summary>
        private string ParseLiteralString()
        {
            int open = _pos;
            string t = _text;
            int p = open + 1;
            while (true)
            {
                if (p >= t.Length)
                    throw ErrorAt(p, $"unterminated literal string (opened at {Here(open)})");
                char c = t[p];
                if (c == '\'')
                {
                    _pos = p + 1;
                    return p == open + 1 ? string.Empty : t.Substring(open + 1, p - open - 1);
                }
                if (c >= 0x20 && c < 0x7F || c == '\t')
                {
                    p++;
                    continue;
                }
                if (c == '\n' || c == '\r')
                    throw ErrorAt(p, $"unterminated literal string (opened at {Here(open)}): literal strings cannot span lines; use ''' for a multi-line string");
                if (c < 0x80)
                    throw ErrorAt(p, $"control character {Describe(p)} is not allowed in a literal string");
                p = SkipNonAscii(p);
            }
        }

        /// <summary>At <c>"""</c> or <c>'''</c>. A newline right after the opening delimiter is
        /// trimmed; CRLF inside is normalised to LF; up to two quotes may precede the closing
        /// delimiter.</summary>
        private string ParseMultiLineString(char quote)
        {
            bool basic = quote == '"';
            int open = _pos;
            string t = _text;
            int p = open + 3;
            _bufLen = 0;
            if (p < t.Length && t[p] == '\n')
            {
                p++;
                _pos = p;
                StartLine();
            }
            else if (p + 1 < t.Length && t[p] == '\r' && t[p + 1] == '\n')
            {
                p += 2;
                _pos = p;
                StartLine();
            }
            int runStart = p;
            bool buffered = false;
            while (true)
            {
                if (p >= t.Length)
                    throw ErrorAt(p, $"unterminated multi-line string (opened at {PositionOf(open)})");
                char c = t[p];
                if (c == quote)
                {
                    int n = 1;
                    while (p + n < t.Length && t[p + n] == quote)
                        n++;
                    if (n < 3)
                    {
                        p += n;
                        continue;
                    }
                    if (n > 5)
                        throw ErrorAt(p + 5, $"too many quotes: at most two {quote} may precede the closing {quote}{quote}{quote}");
                    _pos = p + n;
                    return FinishString(buffered, runStart, p + n - 3);
                }
                if (c >= 0x20 && c < 0x7F && c != '\\' || c == '\t')
                {
                    p++;
                    continue;
                }
                if (c == '\\' && basic)
                {
                    if (!buffered)
                        buffered = true;
                    BufferAppend(t.AsSpan(runStart, p - runStart));
                    p = ParseEscape(p, multiLine: true);
                    runStart = p;
                    continue;
                }
                if (c == '\\')
                {
                    p++;
                    continue;
                }
                if (c == '\n')
                {
                    p++;
                    _pos = p;
                    StartLine();
                    continue;
                }
                if (c == '\r')
                {
                    if (p + 1 >= t.Length || t[p + 1] != '\n')
                        throw ErrorAt(p, "a carriage return must be followed by a line feed");
                    buffered = true;
                    BufferAppend(t.AsSpan(runStart, p - runStart));
                    BufferAppend('\n');
                    p += 2;
                    runStart = p;
                    _pos = p;
                    StartLine();
                    continue;
                }
                if (c < 0x80)
                    throw ErrorAt(p, $"control character {Describe(p)} is not allowed in a string{(basic ? "; use an escape sequence" : "")}");
                p = SkipNonAscii(p);
            }
        }

        /// <summary>At '\\' in a basic string: appends the escaped character(s) to the buffer and
        /// returns the index after the escape.</summary>
        private int ParseEscape(int p, bool multiLine)
        {
            string t = _text;
            int esc = p;
            p++;
            if (p >= t.Length)
                throw ErrorAt(p, "unterminated string after '\\'");
            char c = t[p];
            switch (c)
            {
                case 'b': BufferAppend('\b'); return p + 1;
                case 't': BufferAppend('\t'); return p + 1;
                case 'n': BufferAppend('\n'); return p + 1;
                case 'f': BufferAppend('\f'); return p + 1;
                case 'r': BufferAppend('\r'); return p + 1;
                case '"': BufferAppend('"'); return p + 1;
                case '\\': BufferAppend('\\'); return p + 1;
                case 'u': return ParseUnicodeEscape(esc, 4);
                case 'U': return ParseUnicodeEscape(esc, 8);
            }
            if (multiLine && c is ' ' or '\t' or '\n' or '\r')
            {
                // Line-ending backslash: whitespace up to the newline, then every whitespace
                // character and newline up to the next non-whitespace character is trimmed.
                int q = p;
                while (q < t.Length && t[q] is ' ' or '\t')
                    q++;
                if (q >= t.Length || t[q] is not ('\n' or '\r'))
                    throw ErrorAt(esc, "invalid escape sequence '\\ ': a line-ending backslash must be followed only by whitespace up to the end of the line");
                while (q < t.Length)
                {
                    char w = t[q];
                    if (w is ' ' or '\t')
                    {
                        q++;
                    }
                    else if (w == '\n')
                    {
                        q++;
                        _pos = q;
                        StartLine();
                    }
                    else if (w == '\r')
                    {
                        if (q + 1 >= t.Length || t[q + 1] != '\n')
                            throw ErrorAt(q, "a carriage return must be followed by a line feed");
                        q += 2;
                        _pos = q;
                        StartLine();
                    }
                    else
                    {
                        break;
                    }
                }
                return q;
            }
            if (c is '\n' or '\r')
                throw ErrorAt(esc, "a line-ending backslash is only allowed in multi-line basic strings (\"\"\")");
            string shown = c < 0x20 || c == 0x7F ? Describe(p)
                : char.IsHighSurrogate(c) && p + 1 < t.Length && char.IsLowSurrogate(t[p + 1]) ? t.Substring(p, 2)
                : c.ToString();
            throw ErrorAt(esc, $"invalid escape sequence '\\{shown}' (valid escapes: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)");
        }

        private int ParseUnicodeEscape(int esc, int digits)
        {
            string t = _text;
            int p = esc + 2;
            uint value = 0;
            for (int i = 0; i < digits; i++)
            {
                int c = PeekAt(p + i);
                if (c == Eof || !char.IsAsciiHexDigit((char)c))
                {
                    int shownEnd = p + i;
                    throw ErrorAt(esc, $"invalid escape sequence '{t.AsSpan(esc, shownEnd - esc)}': \\{t[esc + 1]} must be followed by {digits} hexadecimal digits");
                }
                value = value << 4 | (uint)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            }
            if (!Rune.IsValid(value))
                throw ErrorAt(esc, $"escape sequence '{t.AsSpan(esc, digits + 2)}' is not a Unicode scalar value (surrogates and values above 10FFFF are not allowed)");
            Span<char> utf16 = stackalloc char[2];
            int n = new Rune(value).EncodeToUtf16(utf16);
            BufferAppend(utf16[..n]);
            return p + digits;
        }

        // ---------------------------------------------------------------- arrays and inline tables

        private void Enter(int at)
        {
            if (++_depth > MaxNestingDepth)
                throw ErrorAt(at, $"arrays and inline tables are nested more than {MaxNestingDepth} deep");
        }

        private TomlArray ParseArray()
        {
            int open = _pos;
            Enter(open);
            var array = new TomlArray(Here(open));
            _pos++;
            while (true)
            {
                SkipWhitespaceCommentsAndNewlines();
                int c = Cur;
                if (c == ']')
                    break;
                if (c == Eof)
                    throw ErrorAt(_pos, $"unterminated array (opened at {PositionOf(open)}): expected ']'");
                array.Add(ParseValue());
                SkipWhitespaceCommentsAndNewlines();
                c = Cur;
                if (c == ',')
                {
                    _pos++;
                    continue;
                }
                if (c == ']')
                    break;
                if (c == Eof)
                    throw ErrorAt(_pos, $"unterminated array (opened at {PositionOf(open)}): expected ']'");
                throw ErrorAt(_pos, $"expected ',' or ']' after an array element, found {Describe(_pos)}");
            }
            _pos++;
            _depth--;
            return array;
        }

        private TomlTable ParseInlineTable()
        {
            int open = _pos;
            Enter(open);
            var table = new TomlTable(Here(open)) { IsInline = true };
            // Its own key/value pairs (dotted ones included) go in through ParseKeyValue below;
            // once closed, nothing reaches it again because every path to it and to the
            // tables its dotted keys created passes through this Inline origin.
            _origins[table] = TableOrigin.Inline;
            _pos++;
            SkipWhitespace();
            if (Cur == '}')
            {
                _pos++;
                _depth--;
                return table;
            }
            while (true)
            {
                int c = Cur;
                if (!IsKeyStart(c))
                    throw InlineTableError(open, "a key");
                ParseKeyValue(table);
                SkipWhitespace();
                c = Cur;
                if (c == '}')
                    break;
                if (c != ',')
                    throw InlineTableError(open, "',' or '}'");
                _pos++;
                SkipWhitespace();
                if (Cur == '}')
                    throw ErrorAt(_pos, "a trailing comma is not allowed in an inline table");
            }
            _pos++;
            _depth--;
            return table;
        }

        private TomlException InlineTableError(int open, string expected)
        {
            int c = Cur;
            if (c is '\n' or '\r' or '#')
                return ErrorAt(_pos, $"inline table (opened at {PositionOf(open)}) must be on a single line: expected {expected}, found {(c == '#' ? "a comment" : "end of line")}");
            if (c == Eof)
                return ErrorAt(_pos, $"unterminated inline table (opened at {PositionOf(open)}): expected {expected}");
            return ErrorAt(_pos, $"expected {expected} in inline table, found {Describe(_pos)}");
        }
    }
}

using System.Text;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>Hex literals for golden tests: whitespace and <c>//</c> comments are ignored.</summary>
internal static class Hex
{
    public static byte[] Parse(string annotated)
    {
        var digits = new StringBuilder();
        foreach (string line in annotated.Split('\n'))
        {
            int comment = line.IndexOf("//", StringComparison.Ordinal);
            string code = comment >= 0 ? line[..comment] : line;
            foreach (char c in code)
            {
                if (!char.IsWhiteSpace(c))
                {
                    digits.Append(c);
                }
            }
        }
        return Convert.FromHexString(digits.ToString());
    }

    public static string Format(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}

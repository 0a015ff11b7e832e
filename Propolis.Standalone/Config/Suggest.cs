namespace Propolis.Standalone.Config;

/// <summary>"Did you mean" suggestions for misspelt keys, section names and references.</summary>
internal static class Suggest
{
    /// <summary>The candidate closest to <paramref name="name"/> by edit distance (with
    /// adjacent transpositions, and '-' and '_' treated as the same character), or null when
    /// none is close enough to be a plausible typo.</summary>
    public static string? Closest(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            int d = Distance(name, candidate);
            if (d < bestDistance)
            {
                best = candidate;
                bestDistance = d;
            }
        }
        if (best is null)
            return null;
        // A typo changes a few characters; beyond a third of the word it is another word.
        int allowed = Math.Max(1, Math.Min(3, Math.Max(name.Length, best.Length) / 3));
        return bestDistance <= allowed ? best : null;
    }

    /// <summary>"; did you mean 'x'?" or the empty string.</summary>
    public static string DidYouMean(string name, IEnumerable<string> candidates, string quote = "'")
    {
        var c = Closest(name, candidates);
        return c is null ? "" : $"; did you mean {quote}{c}{quote}?";
    }

    /// <summary>Optimal string alignment distance, case-insensitive, '-' equal to '_'.</summary>
    internal static int Distance(string a, string b)
    {
        static char Norm(char c) => c == '-' ? '_' : char.ToLowerInvariant(c);

        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = Norm(a[i - 1]) == Norm(b[j - 1]) ? 0 : 1;
                int v = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && Norm(a[i - 1]) == Norm(b[j - 2]) && Norm(a[i - 2]) == Norm(b[j - 1]))
                    v = Math.Min(v, d[i - 2, j - 2] + 1);
                d[i, j] = v;
            }
        }
        return d[a.Length, b.Length];
    }

    /// <summary>"'a', 'b' and 'c'" for listing the names a reference could have used.</summary>
    public static string List(IEnumerable<string> names)
    {
        var quoted = names.Select(n => $"'{n}'").ToArray();
        return quoted.Length switch
        {
            0 => "none",
            1 => quoted[0],
            _ => string.Join(", ", quoted[..^1]) + " and " + quoted[^1],
        };
    }
}

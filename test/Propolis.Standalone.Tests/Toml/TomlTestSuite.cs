// Locates the toml-test corpus (https://github.com/toml-lang/toml-test, tests/ folder) that
// the repository expects beside itself, and lists the TOML 1.0.0 cases.

namespace Propolis.Standalone.Tests.Toml;

internal static class TomlTestSuite
{
    public const string ListFile = "files-toml-1.0.0";

    /// <summary>Set to a toml-test "tests" directory to override the search.</summary>
    public const string EnvironmentVariable = "TOML_TEST_DIR";

    private static readonly Lazy<(string? Directory, string Searched)> Location = new(Find);

    /// <summary>The suite directory, or an exception that says where it was looked for.</summary>
    public static string Directory =>
        Location.Value.Directory ?? throw new DirectoryNotFoundException(
            $"toml-test suite not found (a directory holding '{ListFile}'); looked in: {Location.Value.Searched}. " +
            $"Put the toml-test tests/ folder at <repository root>/../shared/toml-test or set {EnvironmentVariable}.");

    public static bool IsAvailable => Location.Value.Directory is not null;

    private static (string?, string) Find()
    {
        var searched = new List<string>();
        string? overridden = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(overridden))
        {
            searched.Add(Path.GetFullPath(overridden));
            return (File.Exists(Path.Combine(overridden, ListFile)) ? Path.GetFullPath(overridden) : null, string.Join(", ", searched));
        }

        string? root = FindRepositoryRoot();
        if (root is null)
            return (null, $"no directory holding global.json above {AppContext.BaseDirectory}");

        // <root>/../shared/toml-test is the layout of the main checkout; a git worktree kept one
        // level deeper (<dir>/wt/<name>) finds the same folder one more level up.
        foreach (string relative in new[] { "../shared/toml-test", "../../shared/toml-test" })
        {
            string candidate = Path.GetFullPath(Path.Combine(root, relative));
            searched.Add(candidate);
            if (File.Exists(Path.Combine(candidate, ListFile)))
                return (candidate, string.Join(", ", searched));
        }
        return (null, string.Join(", ", searched));
    }

    private static string? FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "global.json")))
                return dir.FullName;
        }
        return null;
    }

    /// <summary>Case names without extension ("valid/array/array"), in list order.</summary>
    public static IReadOnlyList<string> Cases(string kind)
    {
        string list = Path.Combine(Directory, ListFile);
        var cases = new List<string>();
        foreach (string raw in File.ReadLines(list))
        {
            string line = raw.Trim();
            if (line.StartsWith(kind + "/", StringComparison.Ordinal) && line.EndsWith(".toml", StringComparison.Ordinal))
                cases.Add(line[..^".toml".Length]);
        }
        return cases;
    }

    public static byte[] ReadToml(string name) => File.ReadAllBytes(Path.Combine(Directory, name + ".toml"));

    public static string ReadExpectedJson(string name) => File.ReadAllText(Path.Combine(Directory, name + ".json"));
}

// Conformance with the toml-test corpus, TOML 1.0.0 cases: every valid document decodes to
// the expected tagged JSON, every invalid document is rejected with a located TomlException.

using System.Text.Json;
using Propolis.Standalone.Toml;
using Xunit.Abstractions;

namespace Propolis.Standalone.Tests.Toml;

public class TomlTestSuiteTests
{
    private const string MissingSuite = "(toml-test suite not found)";

    private readonly ITestOutputHelper _output;

    public TomlTestSuiteTests(ITestOutputHelper output) => _output = output;

    public static TheoryData<string> ValidCases => CaseData("valid");

    public static TheoryData<string> InvalidCases => CaseData("invalid");

    private static TheoryData<string> CaseData(string kind)
    {
        var data = new TheoryData<string>();
        if (!TomlTestSuite.IsAvailable)
        {
            // One case that fails and says where the suite was looked for.
            data.Add(MissingSuite);
            return data;
        }
        foreach (string name in TomlTestSuite.Cases(kind))
            data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void ValidDocumentDecodesToExpectedJson(string name)
    {
        string? failure = CheckValid(name);
        Assert.True(failure is null, failure);
    }

    [Theory]
    [MemberData(nameof(InvalidCases))]
    public void InvalidDocumentIsRejected(string name)
    {
        string? failure = CheckInvalid(name);
        Assert.True(failure is null, failure);
    }

    [Fact]
    public void AllTomlOneCasesPass()
    {
        var valid = TomlTestSuite.Cases("valid");
        var invalid = TomlTestSuite.Cases("invalid");
        var failures = new List<string>();
        int validPassed = 0, invalidPassed = 0;
        foreach (string name in valid)
        {
            if (CheckValid(name) is string failure)
                failures.Add(failure);
            else
                validPassed++;
        }
        foreach (string name in invalid)
        {
            if (CheckInvalid(name) is string failure)
                failures.Add(failure);
            else
                invalidPassed++;
        }
        _output.WriteLine($"toml-test {TomlTestSuite.ListFile} in {TomlTestSuite.Directory}");
        _output.WriteLine($"valid:   {validPassed}/{valid.Count} passed");
        _output.WriteLine($"invalid: {invalidPassed}/{invalid.Count} passed");
        Assert.True(valid.Count > 0 && invalid.Count > 0, "the case list is empty");
        Assert.True(failures.Count == 0,
            $"{failures.Count} of {valid.Count + invalid.Count} cases failed:\n" + string.Join("\n", failures));
    }

    /// <summary>Null when the case passes, else why not.</summary>
    private static string? CheckValid(string name)
    {
        if (name == MissingSuite)
            _ = TomlTestSuite.Directory; // throws, naming the places searched
        byte[] toml = TomlTestSuite.ReadToml(name);
        TomlTable document;
        try
        {
            document = TomlParser.ParseUtf8(toml, name + ".toml");
        }
        catch (TomlException e)
        {
            return $"{name}: rejected a valid document: {e.Message}";
        }
        using var expected = JsonDocument.Parse(TomlTestSuite.ReadExpectedJson(name));
        using var actual = JsonDocument.Parse(TomlTaggedJson.ToUtf8Bytes(document));
        string? diff = TaggedJsonComparer.Compare(expected.RootElement, actual.RootElement);
        return diff is null ? null : $"{name}: {diff}\n  output: {TomlTaggedJson.ToJson(document)}";
    }

    private static string? CheckInvalid(string name)
    {
        if (name == MissingSuite)
            _ = TomlTestSuite.Directory;
        byte[] toml = TomlTestSuite.ReadToml(name);
        try
        {
            TomlTable document = TomlParser.ParseUtf8(toml, name + ".toml");
            return $"{name}: accepted an invalid document: {TomlTaggedJson.ToJson(document)}";
        }
        catch (TomlException e)
        {
            if (!e.Position.IsKnown)
                return $"{name}: error has no position: {e.Message}";
            return null;
        }
        catch (Exception e)
        {
            return $"{name}: threw {e.GetType().Name} instead of TomlException: {e.Message}";
        }
    }
}

using System.Text.Json.Serialization;

namespace Propolis.Crucible.Upstairs;

/// <summary>
/// crucible-client-types <c>ReplaceResult</c>, serialized in snake_case: what a target
/// replacement request did.
/// </summary>
public enum ReplaceResult
{
    /// <summary><c>started</c>: the replacement (live repair onto the new target) has begun.</summary>
    [JsonStringEnumMemberName("started")]
    Started,
    /// <summary><c>started_already</c>: the same replacement is already running.</summary>
    [JsonStringEnumMemberName("started_already")]
    StartedAlready,
    /// <summary><c>completed_already</c>: the same replacement has already finished.</summary>
    [JsonStringEnumMemberName("completed_already")]
    CompletedAlready,
    /// <summary><c>missing</c>: the old target is not part of this volume.</summary>
    [JsonStringEnumMemberName("missing")]
    Missing,
    /// <summary><c>vcr_matches</c>: the new request equals the current one; nothing to do.</summary>
    [JsonStringEnumMemberName("vcr_matches")]
    VcrMatches,
}

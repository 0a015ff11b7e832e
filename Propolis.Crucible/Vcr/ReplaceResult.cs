namespace Propolis.Crucible.Upstairs;

/// <summary>
/// crucible-client-types <c>ReplaceResult</c>, serialized in snake_case: what a target
/// replacement request did.
/// </summary>
public enum ReplaceResult
{
    /// <summary><c>started</c>: the replacement (live repair onto the new target) has begun.</summary>
    Started,
    /// <summary><c>started_already</c>: the same replacement is already running.</summary>
    StartedAlready,
    /// <summary><c>completed_already</c>: the same replacement has already finished.</summary>
    CompletedAlready,
    /// <summary><c>missing</c>: the old target is not part of this volume.</summary>
    Missing,
    /// <summary><c>vcr_matches</c>: the new request equals the current one; nothing to do.</summary>
    VcrMatches,
}

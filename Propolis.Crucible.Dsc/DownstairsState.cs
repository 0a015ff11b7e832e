namespace Propolis.Crucible.Dsc;

/// <summary>State of a downstairs process (dsc <c>DownstairsState</c>; serialized snake_case).</summary>
public enum DownstairsState
{
    /// <summary>Not started yet.</summary>
    Stopped,
    /// <summary>Asked to stop (SIGTERM sent), not exited yet.</summary>
    Stopping,
    /// <summary>Being spawned.</summary>
    Starting,
    /// <summary>The process is running.</summary>
    Running,
    /// <summary>Ended by a signal or by a stop request.</summary>
    Exit,
    /// <summary>Could not be spawned or waited for.</summary>
    Error,
    /// <summary>Exited on its own with a status: not restarted, even with auto-restart on.</summary>
    Failed,
}

public static class DownstairsStateNames
{
    /// <summary>The JSON name (serde <c>rename_all = "snake_case"</c>).</summary>
    public static string ToJsonName(this DownstairsState s) => s.ToString().ToLowerInvariant();

    public static bool TryParseJsonName(string name, out DownstairsState state)
    {
        foreach (DownstairsState s in Enum.GetValues<DownstairsState>())
        {
            if (s.ToJsonName() == name)
            {
                state = s;
                return true;
            }
        }
        state = default;
        return false;
    }
}

/// <summary>dsc's <c>RegionExtentInfo</c>: the shape shared by every region in the set.</summary>
public readonly record struct RegionExtentInfo(ulong BlockSize, ulong BlocksPerExtent, uint ExtentCount)
{
    /// <summary>As Rust's Debug prints it (what <c>dsc cmd region-info</c> shows).</summary>
    public override string ToString() =>
        $"RegionExtentInfo {{ block_size: {BlockSize}, blocks_per_extent: {BlocksPerExtent}, extent_count: {ExtentCount} }}";
}

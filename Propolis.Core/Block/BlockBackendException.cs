namespace Propolis.Core.Block;

/// <summary>A backend could not be created: the message says which disk, what is wrong and what to do.</summary>
public sealed class BlockBackendException : IOException
{
    public BlockBackendException(string message) : base(message) { }

    public BlockBackendException(string message, Exception inner) : base(message, inner) { }
}

using System.Buffers;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// A pooled receive buffer with a reference count: the connection holds one reference, and
/// each received message whose bulk data is a slice of the buffer holds another. The array
/// goes back to the pool when the last reference is released; while any message holds it,
/// the connection never moves or overwrites the bytes before its read position.
/// </summary>
internal sealed class ReceiveBuffer
{
    private int _references = 1;

    public ReceiveBuffer(int minimumLength) => Array = ArrayPool<byte>.Shared.Rent(minimumLength);

    public byte[] Array { get; }

    /// <summary>True when some received message still refers to the buffer.</summary>
    public bool IsShared => Volatile.Read(ref _references) > 1;

    public void AddReference() => Interlocked.Increment(ref _references);

    public void Release()
    {
        int left = Interlocked.Decrement(ref _references);
        if (left == 0)
        {
            ArrayPool<byte>.Shared.Return(Array);
        }
    }
}

/// <summary>
/// A message received by <see cref="CrucibleFrameConnection"/>. The bulk data of Write,
/// WriteUnwritten and ReadResponse is a slice of the connection's receive buffer and stays
/// valid until this object is disposed; dispose it once the data has been used (written to
/// the region, copied to the guest). Dispose is idempotent; an undisposed message only
/// keeps its buffer from returning to the pool.
/// </summary>
public sealed class ReceivedMessage : IDisposable
{
    private ReceiveBuffer? _buffer;

    internal ReceivedMessage(Message message, ReceiveBuffer? buffer)
    {
        Message = message;
        _buffer = buffer;
    }

    public Message Message { get; }

    public void Dispose() => Interlocked.Exchange(ref _buffer, null)?.Release();
}

using System.Buffers;

namespace Propolis.Crucible.Protocol;

/// <summary>An <see cref="IBufferWriter{T}"/> over one rented array, reused from frame to frame.</summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private byte[] _array;
    private int _written;

    public PooledBufferWriter(int initialCapacity) => _array = ArrayPool<byte>.Shared.Rent(initialCapacity);

    public ArraySegment<byte> WrittenSegment => new(_array, 0, _written);

    public ReadOnlyMemory<byte> WrittenMemory => _array.AsMemory(0, _written);

    public void Reset() => _written = 0;

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _array.Length - _written);
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Grow(sizeHint);
        return _array.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Grow(sizeHint);
        return _array.AsSpan(_written);
    }

    private void Grow(int sizeHint)
    {
        int need = Math.Max(sizeHint, 1);
        if (_array.Length - _written >= need)
        {
            return;
        }
        byte[] bigger = ArrayPool<byte>.Shared.Rent(checked(_written + need));
        _array.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_array);
        _array = bigger;
    }

    public void Dispose()
    {
        byte[] a = _array;
        _array = [];
        _written = 0;
        if (a.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(a);
        }
    }
}

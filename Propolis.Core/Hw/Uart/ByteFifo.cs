using System.Runtime.CompilerServices;

namespace Propolis.Core.Hw.Uart;

/// <summary>A FIFO of up to <see cref="Depth"/> bytes, stored inline (no heap object) so a UART's
/// whole state is one allocation. Not thread-safe: the UART's lock guards it.</summary>
internal struct ByteFifo
{
    public const int Depth = 16;

    [InlineArray(Depth)]
    private struct Storage
    {
        private byte _element0;
    }

    private Storage _data;
    private int _head;
    private int _count;

    public readonly int Count => _count;

    public readonly bool IsEmpty => _count == 0;

    /// <summary>Appends <paramref name="value"/> unless <paramref name="capacity"/> bytes are
    /// already queued; returns whether it was stored.</summary>
    public bool TryPush(byte value, int capacity)
    {
        if (_count >= capacity)
            return false;
        _data[(_head + _count) % Depth] = value;
        _count++;
        return true;
    }

    /// <summary>Replaces the newest byte (a 16450's receiver buffer being overwritten).</summary>
    public void ReplaceLast(byte value)
    {
        if (_count > 0)
            _data[(_head + _count - 1) % Depth] = value;
    }

    public bool TryPop(out byte value)
    {
        if (_count == 0)
        {
            value = 0;
            return false;
        }
        value = _data[_head];
        _head = (_head + 1) % Depth;
        _count--;
        return true;
    }

    /// <summary>Copies the queued bytes, oldest first, to <paramref name="destination"/>
    /// (which holds at least <see cref="Count"/> bytes); returns the count.</summary>
    public readonly int CopyTo(Span<byte> destination)
    {
        for (int i = 0; i < _count; i++)
            destination[i] = _data[(_head + i) % Depth];
        return _count;
    }

    /// <summary>Removes the <paramref name="count"/> oldest bytes.</summary>
    public void Discard(int count)
    {
        count = Math.Clamp(count, 0, _count);
        _head = (_head + count) % Depth;
        _count -= count;
    }

    public void Clear()
    {
        _head = 0;
        _count = 0;
    }
}

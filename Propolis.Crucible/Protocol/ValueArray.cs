using System.Collections;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// An immutable array with value equality: the C# face of a Rust <c>Vec&lt;T&gt;</c> inside a
/// message, so that messages compare by content. <c>default</c> is the empty array.
/// </summary>
public readonly struct ValueArray<T> : IEquatable<ValueArray<T>>, IReadOnlyList<T>
{
    private readonly T[]? _items;

    /// <summary>Wraps <paramref name="items"/> without copying; the caller gives up mutating it.</summary>
    public ValueArray(T[] items) => _items = items;

    public static ValueArray<T> Empty => default;

    public int Count => _items?.Length ?? 0;

    public T this[int index] => (_items ?? [])[index];

    public ReadOnlySpan<T> AsSpan() => _items;

    public static implicit operator ValueArray<T>(T[] items) => new(items);

    public bool Equals(ValueArray<T> other) =>
        AsSpan().SequenceEqual(other.AsSpan(), EqualityComparer<T>.Default);

    public override bool Equals(object? obj) => obj is ValueArray<T> other && Equals(other);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (T item in AsSpan())
        {
            h.Add(item);
        }
        return h.ToHashCode();
    }

    public static bool operator ==(ValueArray<T> left, ValueArray<T> right) => left.Equals(right);

    public static bool operator !=(ValueArray<T> left, ValueArray<T> right) => !left.Equals(right);

    public override string ToString() => "[" + string.Join(", ", _items ?? []) + "]";

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)(_items ?? [])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

namespace Propolis.Crucible.Protocol;

/// <summary>
/// <c>Result&lt;T, CrucibleError&gt;</c>: on the wire an enum, variant 0 <c>Ok(T)</c>,
/// variant 1 <c>Err(CrucibleError)</c>. (<c>Result&lt;(), CrucibleError&gt;</c> in acks is modelled
/// as a nullable <see cref="CrucibleError"/> instead: null is <c>Ok(())</c>.)
/// </summary>
public readonly struct CrucibleResult<T> : IEquatable<CrucibleResult<T>>
{
    private readonly T _value;

    private CrucibleResult(T value, CrucibleError? error)
    {
        _value = value;
        Error = error;
    }

    public static CrucibleResult<T> Ok(T value) => new(value, null);

    public static CrucibleResult<T> Err(CrucibleError error) => new(default!, error ?? throw new ArgumentNullException(nameof(error)));

    public bool IsOk => Error is null;

    /// <summary>The error of an <c>Err</c>, null for <c>Ok</c>.</summary>
    public CrucibleError? Error { get; }

    /// <summary>The value of an <c>Ok</c>; throws for an <c>Err</c>.</summary>
    public T Value => IsOk ? _value : throw new InvalidOperationException($"Result is Err({Error})");

    public bool Equals(CrucibleResult<T> other) =>
        IsOk ? other.IsOk && EqualityComparer<T>.Default.Equals(_value, other._value) : Error!.Equals(other.Error);

    public override bool Equals(object? obj) => obj is CrucibleResult<T> other && Equals(other);

    public override int GetHashCode() => IsOk ? HashCode.Combine(0, _value) : HashCode.Combine(1, Error);

    public static bool operator ==(CrucibleResult<T> left, CrucibleResult<T> right) => left.Equals(right);

    public static bool operator !=(CrucibleResult<T> left, CrucibleResult<T> right) => !left.Equals(right);

    public override string ToString() => IsOk ? $"Ok({_value})" : $"Err({Error})";
}

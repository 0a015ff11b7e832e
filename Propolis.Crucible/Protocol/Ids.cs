using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary><c>JobId(pub u64)</c>: identifies a job to the downstairs; used to resolve dependencies.</summary>
public readonly record struct JobId(ulong Value) : IComparable<JobId>
{
    public int CompareTo(JobId other) => Value.CompareTo(other.Value);
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    internal static JobId Read(ref BincodeReader r) => new(r.ReadU64());
    internal void Write(ref BincodeWriter w) => w.WriteU64(Value);
}

/// <summary><c>ReconciliationId(pub u64)</c>: a reconciliation (repair) job during startup.</summary>
public readonly record struct ReconciliationId(ulong Value)
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary><c>ExtentId(pub u32)</c>.</summary>
public readonly record struct ExtentId(uint Value)
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary><c>BlockIndex(pub u64)</c>: an absolute block position in the region.</summary>
public readonly record struct BlockIndex(ulong Value)
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary><c>Block { value: u64, shift: u32 }</c>: a count of blocks of size <c>1 &lt;&lt; shift</c>.</summary>
public readonly record struct Block(ulong Value, uint Shift)
{
    /// <summary><c>MIN_SHIFT</c>: 512-byte blocks.</summary>
    public const uint MinShift = 9;

    /// <summary><c>MAX_SHIFT</c>: 32 KiB blocks.</summary>
    public const uint MaxShift = 15;

    /// <summary>Block size in bytes; meaningful only for a shift in MinShift..=MaxShift.</summary>
    public ulong BlockSizeInBytes => 1UL << (int)Shift;

    internal static Block Read(ref BincodeReader r) => new(r.ReadU64(), r.ReadU32());

    internal void Write(ref BincodeWriter w)
    {
        w.WriteU64(Value);
        w.WriteU32(Shift);
    }
}

/// <summary>
/// <c>ClientId(u8)</c>: which of the three downstairs of a region set; always 0, 1 or 2.
/// The real type keeps that invariant by construction; this decoder also enforces it on
/// received bytes (<see cref="ProtocolErrorKind.InvalidClientId"/>).
/// </summary>
public readonly record struct ClientId
{
    public ClientId(byte value)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(value, (byte)3);
        Value = value;
    }

    public byte Value { get; }

    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    internal static ClientId Read(ref BincodeReader r)
    {
        int at = r.Position;
        byte b = r.ReadU8();
        if (b >= 3)
        {
            ProtocolThrow.Throw(ProtocolErrorKind.InvalidClientId, at, $"ClientId is {b}, not 0, 1 or 2");
        }
        return new ClientId(b);
    }
}

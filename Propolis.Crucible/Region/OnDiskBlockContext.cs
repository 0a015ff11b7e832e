using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Regions;

/// <summary>
/// <c>crucible_raw_extent::OnDiskDownstairsBlockContext</c>: a block context as kept in a context slot,
/// with the hash of the bytes on disk (<see cref="OnDiskHash"/>, what recovery compares against) and the
/// low 16 bits of the extent's last flush number when it was written (<see cref="FlushId"/>, kept for
/// debugging only).
/// </summary>
public readonly record struct OnDiskBlockContext(BlockContext BlockContext, ulong OnDiskHash, ushort FlushId);

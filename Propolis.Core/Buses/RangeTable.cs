namespace Propolis.Core.Buses;

/// <summary>An address range a handler claimed on a bus. <see cref="Last"/> is inclusive, so a
/// range may end at the top of the address space without overflowing.</summary>
public readonly record struct BusRange(ulong Start, ulong Last, string Owner)
{
    public ulong Length => Last - Start + 1;

    public bool Overlaps(ulong start, ulong last) => start <= Last && Start <= last;

    public override string ToString() => $"{Owner} [0x{Start:X}-0x{Last:X}]";
}

/// <summary>A registration overlaps a range that is already claimed.</summary>
public sealed class BusConflictException : InvalidOperationException
{
    public BusConflictException(string message) : base(message) { }
}

/// <summary>Sorted, non-overlapping ranges with lock-free lookup: registration (rare, at machine
/// build and on BAR moves) copies the array under a lock; lookup binary-searches the current
/// snapshot and allocates nothing.</summary>
internal sealed class RangeTable<THandler> where THandler : class
{
    internal readonly struct Entry(BusRange range, THandler handler)
    {
        public readonly BusRange Range = range;
        public readonly THandler Handler = handler;
    }

    private readonly object _gate = new();
    private Entry[] _entries = [];

    public Entry[] Snapshot => Volatile.Read(ref _entries);

    public void Add(ulong start, ulong last, THandler handler, string owner, string busName)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        if (last < start)
        {
            throw new ArgumentOutOfRangeException(nameof(last), $"{busName} range for {owner} is empty or wraps");
        }
        lock (_gate)
        {
            var current = _entries;
            var at = 0;
            while (at < current.Length && current[at].Range.Start < start)
            {
                at++;
            }
            foreach (var neighbour in (ReadOnlySpan<int>)[at - 1, at])
            {
                if (neighbour >= 0 && neighbour < current.Length && current[neighbour].Range.Overlaps(start, last))
                {
                    throw new BusConflictException(
                        $"{busName}: {owner} [0x{start:X}-0x{last:X}] overlaps {current[neighbour].Range}");
                }
            }
            var next = new Entry[current.Length + 1];
            Array.Copy(current, next, at);
            next[at] = new Entry(new BusRange(start, last, owner), handler);
            Array.Copy(current, at, next, at + 1, current.Length - at);
            Volatile.Write(ref _entries, next);
        }
    }

    /// <summary>Removes the range starting at <paramref name="start"/>; false if none does.</summary>
    public bool Remove(ulong start)
    {
        lock (_gate)
        {
            var current = _entries;
            var index = Array.FindIndex(current, e => e.Range.Start == start);
            if (index < 0)
            {
                return false;
            }
            var next = new Entry[current.Length - 1];
            Array.Copy(current, next, index);
            Array.Copy(current, index + 1, next, index, current.Length - index - 1);
            Volatile.Write(ref _entries, next);
            return true;
        }
    }

    /// <summary>The entry whose range contains <paramref name="address"/>.</summary>
    public bool TryFind(ulong address, out Entry entry)
    {
        var entries = Volatile.Read(ref _entries);
        int lo = 0, hi = entries.Length - 1;
        while (lo <= hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            ref readonly var e = ref entries[mid];
            if (address < e.Range.Start)
            {
                hi = mid - 1;
            }
            else if (address > e.Range.Last)
            {
                lo = mid + 1;
            }
            else
            {
                entry = e;
                return true;
            }
        }
        entry = default;
        return false;
    }
}

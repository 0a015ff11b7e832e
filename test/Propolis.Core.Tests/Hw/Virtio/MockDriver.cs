using System.Buffers.Binary;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>The driver side of a split virtqueue, written the way a guest driver writes it: descriptors
/// into the table, heads into the available ring, then avail.idx; reads the used ring back.</summary>
internal sealed class MockDriver
{
    public const ulong DescAddress = 0x1000;
    public const ulong AvailAddress = 0x3000;
    public const ulong UsedAddress = 0x4000;

    private readonly GuestMemory _mem;
    private ushort _nextDesc;
    private ushort _availIdx;
    private ushort _usedSeen;
    private ulong _bump = 0x1_0000;

    public MockDriver(GuestMemory mem, ushort size)
    {
        _mem = mem;
        Size = size;
    }

    public ushort Size { get; }

    public ushort AvailIdx => _availIdx;

    /// <summary>Configures and enables <paramref name="q"/> at the driver's ring addresses.</summary>
    public void Attach(VirtQueue q, bool eventIdx = false, bool indirect = true)
    {
        Assert.True(q.TrySetSize(Size));
        q.SetAddresses(DescAddress, AvailAddress, UsedAddress);
        q.EventIdx = eventIdx;
        q.IndirectDescriptors = indirect;
        Assert.True(q.TryEnable());
    }

    /// <summary>A fresh buffer in the data arena (0x10000 up), filled with <paramref name="fill"/>.</summary>
    public ulong Alloc(uint length, byte fill = 0)
    {
        var a = _bump;
        _bump = (_bump + length + 15) & ~15UL;
        Assert.True(_mem.TryFill(a, (int)length, fill));
        return a;
    }

    public void ResetArena() => _bump = 0x1_0000;

    public static void WriteDescriptor(GuestMemory mem, ulong table, int index, ulong addr, uint len, DescriptorFlags flags, ushort next)
    {
        var d = table + (ulong)index * 16;
        Assert.True(mem.TryWriteUInt64(d, addr));
        Assert.True(mem.TryWriteUInt32(d + 8, len));
        Assert.True(mem.TryWriteUInt16(d + 12, (ushort)flags));
        Assert.True(mem.TryWriteUInt16(d + 14, next));
    }

    public void WriteDescriptor(int index, ulong addr, uint len, DescriptorFlags flags, ushort next) =>
        WriteDescriptor(_mem, DescAddress, index, addr, len, flags, next);

    /// <summary>Lays out a chain in the next free table slots, linked with NEXT; returns its head.</summary>
    public ushort AddChain(params (ulong Addr, uint Len, bool Write)[] buffers)
    {
        var head = _nextDesc;
        for (var i = 0; i < buffers.Length; i++)
        {
            var index = (ushort)((head + i) % Size);
            var next = (ushort)((head + i + 1) % Size);
            var flags = (buffers[i].Write ? DescriptorFlags.Write : 0) | (i + 1 < buffers.Length ? DescriptorFlags.Next : 0);
            WriteDescriptor(index, buffers[i].Addr, buffers[i].Len, flags, next);
        }
        _nextDesc = (ushort)((head + buffers.Length) % Size);
        return head;
    }

    /// <summary>Writes an indirect table at <paramref name="table"/> and one direct descriptor naming it.</summary>
    public ushort AddIndirectChain(ulong table, params (ulong Addr, uint Len, bool Write)[] buffers)
    {
        for (var i = 0; i < buffers.Length; i++)
        {
            var flags = (buffers[i].Write ? DescriptorFlags.Write : 0) | (i + 1 < buffers.Length ? DescriptorFlags.Next : 0);
            WriteDescriptor(_mem, table, i, buffers[i].Addr, buffers[i].Len, flags, (ushort)(i + 1));
        }
        var head = _nextDesc;
        WriteDescriptor(head, table, (uint)buffers.Length * 16, DescriptorFlags.Indirect, 0);
        _nextDesc = (ushort)((head + 1) % Size);
        return head;
    }

    /// <summary>Puts <paramref name="head"/> in the available ring and publishes it (§2.7.13).</summary>
    public void Publish(ushort head)
    {
        Assert.True(_mem.TryWriteUInt16(AvailAddress + 4 + 2UL * (ushort)(_availIdx % Size), head));
        _availIdx++;
        Assert.True(_mem.TryWriteUInt16(AvailAddress + 2, _availIdx));
    }

    public void SetAvailIdx(ushort idx)
    {
        _availIdx = idx;
        Assert.True(_mem.TryWriteUInt16(AvailAddress + 2, idx));
    }

    public void SetAvailFlags(ushort flags) => Assert.True(_mem.TryWriteUInt16(AvailAddress, flags));

    public void SetUsedEvent(ushort value) => Assert.True(_mem.TryWriteUInt16(AvailAddress + 4 + 2UL * Size, value));

    public ushort AvailEvent => Read16(UsedAddress + 4 + 8UL * Size);

    public ushort UsedFlags => Read16(UsedAddress);

    public ushort UsedIdx => Read16(UsedAddress + 2);

    public (uint Id, uint Len) UsedElem(ushort i)
    {
        var e = UsedAddress + 4 + 8UL * (ushort)(i % Size);
        Assert.True(_mem.TryReadUInt32(e, out var id));
        Assert.True(_mem.TryReadUInt32(e + 4, out var len));
        return (id, len);
    }

    /// <summary>The used entries published since the last call.</summary>
    public List<(uint Id, uint Len)> TakeUsed()
    {
        var list = new List<(uint, uint)>();
        var idx = UsedIdx;
        while (_usedSeen != idx)
        {
            list.Add(UsedElem(_usedSeen));
            _usedSeen++;
        }
        return list;
    }

    private ushort Read16(ulong gpa)
    {
        Assert.True(_mem.TryReadUInt16(gpa, out var v));
        return v;
    }

    public static byte[] Bytes(GuestMemory mem, ulong gpa, int length)
    {
        var b = new byte[length];
        Assert.True(mem.TryRead(gpa, b));
        return b;
    }

    /// <summary>struct virtio_blk_outhdr: le32 type, le32 reserved, le64 sector.</summary>
    public static byte[] BlockHeader(uint type, ulong sector)
    {
        var h = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), sector);
        return h;
    }
}

/// <summary>Counts what a queue reports to its transport.</summary>
internal sealed class RecordingEvents : IVirtQueueEvents
{
    private int _interrupts;
    private int _needsReset;

    public int Interrupts => Volatile.Read(ref _interrupts);

    public int NeedsReset => Volatile.Read(ref _needsReset);

    public void QueueInterrupt(VirtQueue queue) => Interlocked.Increment(ref _interrupts);

    public void QueueNeedsReset(VirtQueue queue) => Interlocked.Increment(ref _needsReset);
}

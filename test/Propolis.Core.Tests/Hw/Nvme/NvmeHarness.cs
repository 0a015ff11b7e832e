using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Propolis.Core.Hw.Nvme;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Hw.Nvme;

/// <summary>An in-memory namespace. Completes inline, or holds requests until <see cref="CompleteAll"/>.</summary>
internal sealed class FakeBackend : INvmeBlockBackend
{
    public readonly byte[] Data;
    private readonly ConcurrentQueue<NvmeIoRequest> _held = new();

    /// <summary>Guest memory the segments address (set by the harness).</summary>
    public GuestMemory? Memory { get; set; }

    public FakeBackend(ulong capacity, int blockSize = 512, bool readOnly = false)
    {
        Data = new byte[capacity];
        BlockSize = blockSize;
        IsReadOnly = readOnly;
    }

    public ulong Capacity => (ulong)Data.Length;
    public int BlockSize { get; }
    public bool IsReadOnly { get; }
    public bool Hold { get; set; }

    /// <summary>When set, every segment must lie below this guest-physical address.</summary>
    public ulong? GuestLimit { get; set; }
    public bool Fail { get; set; }
    public int Flushes;
    public readonly List<(NvmeIoOperation Op, ulong Offset, ulong Length)> Log = [];
    public readonly List<ByteRange> Discards = [];
    public int HeldCount => _held.Count;

    public bool Record = true;

    public void Submit(NvmeIoRequest r)
    {
        if (Record) { lock (Log) { Log.Add((r.Operation, r.Offset, r.Length)); } }
        if (Hold) { _held.Enqueue(r); return; }
        Run(r);
    }

    public void CompleteAll()
    {
        while (_held.TryDequeue(out var r)) { Run(r); }
    }

    private void Run(NvmeIoRequest r)
    {
        if (GuestLimit is { } limit)
        {
            foreach (var s in r.Segments)
            {
                Assert.True(s.Address < limit && s.Length <= limit - s.Address, "segment outside guest RAM");
            }
        }
        Assert.True(r.Offset <= Capacity && r.Length <= Capacity - r.Offset, "request beyond the namespace");
        foreach (var d in r.Ranges)
        {
            Assert.True(d.Offset <= Capacity && d.Length <= Capacity - d.Offset, "discard beyond the namespace");
        }
        if (Fail) { r.Complete(NvmeIoResult.Failure); return; }
        switch (r.Operation)
        {
            case NvmeIoOperation.Read:
            {
                var pos = (int)r.Offset;
                foreach (var s in r.Segments)
                {
                    Assert.True(Memory!.TryWrite(s.Address, Data.AsSpan(pos, (int)s.Length)));
                    pos += (int)s.Length;
                }
                if (r.Offset + r.Length != (ulong)pos) { Assert.Fail("segment lengths do not add up to the request length"); }
                break;
            }
            case NvmeIoOperation.Write:
            {
                var pos = (int)r.Offset;
                foreach (var s in r.Segments)
                {
                    Assert.True(Memory!.TryRead(s.Address, Data.AsSpan(pos, (int)s.Length)));
                    pos += (int)s.Length;
                }
                if (r.Offset + r.Length != (ulong)pos) { Assert.Fail("segment lengths do not add up to the request length"); }
                break;
            }
            case NvmeIoOperation.WriteZeroes:
                Data.AsSpan((int)r.Offset, (int)r.Length).Clear();
                break;
            case NvmeIoOperation.Discard:
                foreach (var d in r.Ranges)
                {
                    lock (Log) { Discards.Add(d); }
                    Data.AsSpan((int)d.Offset, (int)d.Length).Clear();
                }
                break;
            case NvmeIoOperation.Flush:
                Interlocked.Increment(ref Flushes);
                break;
        }
        r.Complete(NvmeIoResult.Success);
    }
}

internal sealed class RecordingInterrupts : INvmeInterrupts
{
    public readonly ConcurrentQueue<ushort> Raised = new();
    public bool Record = true;
    public int Count;

    public void Raise(ushort vector)
    {
        Interlocked.Increment(ref Count);
        if (Record) { Raised.Enqueue(vector); }
    }
}

internal readonly record struct Cqe(uint Dw0, ushort SqHead, ushort SqId, ushort CommandId, bool Phase, NvmeStatus Status);

/// <summary>Builds a 64-byte submission queue entry (NVMe 1.4 Figure 104).</summary>
internal struct Command
{
    public byte Opcode;
    public ushort CommandId;
    public uint Cdw0Flags;
    public uint Nsid;
    public ulong Prp1, Prp2;
    public uint Cdw10, Cdw11, Cdw12, Cdw13;

    public readonly void WriteTo(Span<byte> b)
    {
        b[..64].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, Opcode | Cdw0Flags | ((uint)CommandId << 16));
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Nsid);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], Prp1);
        BinaryPrimitives.WriteUInt64LittleEndian(b[32..], Prp2);
        BinaryPrimitives.WriteUInt32LittleEndian(b[40..], Cdw10);
        BinaryPrimitives.WriteUInt32LittleEndian(b[44..], Cdw11);
        BinaryPrimitives.WriteUInt32LittleEndian(b[48..], Cdw12);
        BinaryPrimitives.WriteUInt32LittleEndian(b[52..], Cdw13);
    }
}

/// <summary>The host side of one queue pair, as a driver keeps it.</summary>
internal sealed class HostQueue
{
    public ushort Id;
    public ulong SqBase, CqBase;
    public uint SqSize, CqSize;
    public uint SqTail, CqHead;
    public bool Phase = true;
}

/// <summary>A mock host driver over real guest memory: writes registers, lays out queues and
/// commands, rings doorbells and reads completions the way a driver does.</summary>
internal sealed class NvmeHarness : IDisposable
{
    public const ulong RamSize = 16 << 20;
    public const ulong AdminSq = 0x1_0000, AdminCq = 0x2_0000;
    public const ulong IdentifyBuffer = 0x3_0000;
    public const ulong QueueArea = 0x10_0000;    // I/O queue n: SQ at QueueArea + n*0x4_0000, CQ 0x2_0000 above
    public const ulong Arena = 0x80_0000;         // data buffers and PRP lists: 8 MiB
    public const ulong OutsideRam = 0x4000_0000;

    public readonly GuestMemory Memory = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, RamSize)]));
    public readonly FakeBackend Backend;
    public readonly RecordingInterrupts Interrupts = new();
    public readonly NvmeController Controller;
    public readonly HostQueue Admin = new() { Id = 0, SqBase = AdminSq, CqBase = AdminCq, SqSize = 64, CqSize = 64 };
    public readonly Dictionary<ushort, HostQueue> Io = [];
    private ushort _nextCid = 1;

    public NvmeHarness(FakeBackend? backend = null, string serial = "disk0")
    {
        Backend = backend ?? new FakeBackend(4 << 20);
        Backend.Memory = Memory;
        Controller = new NvmeController(Memory, Backend, Interrupts, new NvmeControllerOptions { SerialNumber = serial });
    }

    /// <summary>A controller over another backend (<see cref="Backend"/> is then unused).</summary>
    public NvmeHarness(Func<GuestMemory, INvmeBlockBackend> backend)
    {
        Backend = new FakeBackend(512);
        Controller = new NvmeController(Memory, backend(Memory), Interrupts, new NvmeControllerOptions { SerialNumber = "disk0" });
    }

    /// <summary>Waits for the next completion (backends with worker threads).</summary>
    public Cqe PollWait(HostQueue q)
    {
        var deadline = Environment.TickCount64 + 10_000;
        while (Environment.TickCount64 < deadline)
        {
            if (TryPoll(q, out var cqe)) { return cqe; }
            Thread.Sleep(1);
        }
        throw new TimeoutException($"no completion on queue {q.Id} within 10 s");
    }

    public Cqe RunWait(HostQueue q, Command c)
    {
        c.CommandId = NextCid();
        Submit(q, c);
        var cqe = PollWait(q);
        Assert.Equal(c.CommandId, cqe.CommandId);
        return cqe;
    }

    public void Dispose() => Memory.Dispose();

    public uint Read32(ulong offset)
    {
        Span<byte> b = stackalloc byte[4];
        Controller.MmioRead(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public ulong Read64(ulong offset)
    {
        Span<byte> b = stackalloc byte[8];
        Controller.MmioRead(offset, b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    public void Write32(ulong offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Controller.MmioWrite(offset, b);
    }

    public void Write64(ulong offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Controller.MmioWrite(offset, b);
    }

    public const uint CcIoEntrySizes = (6u << 16) | (4u << 20);

    /// <summary>§7.6.1: AQA, ASQ, ACQ, then CC.EN = 1; waits for CSTS.RDY.</summary>
    public void Enable(uint ccExtra = CcIoEntrySizes)
    {
        Write32(0x24, ((Admin.CqSize - 1) << 16) | (Admin.SqSize - 1));
        Write64(0x28, Admin.SqBase);
        Write64(0x30, Admin.CqBase);
        Write32(0x14, ccExtra | 1);
        Assert.Equal(1u, Read32(0x1C) & 1);
    }

    public ushort NextCid() => _nextCid++;

    public void Submit(HostQueue q, Command c, bool ring = true)
    {
        Span<byte> b = stackalloc byte[64];
        c.WriteTo(b);
        Assert.True(Memory.TryWrite(q.SqBase + q.SqTail * 64, b));
        q.SqTail = (q.SqTail + 1) % q.SqSize;
        if (ring) { RingSq(q); }
    }

    public void RingSq(HostQueue q) => Write32(0x1000 + (ulong)(2 * q.Id) * 4, q.SqTail);

    public bool TryPoll(HostQueue q, out Cqe cqe, bool ring = true)
    {
        var gpa = q.CqBase + q.CqHead * 16;
        Assert.True(Memory.TryReadUInt32(gpa + 12, out var dw3));
        if (((dw3 >> 16) & 1) != (q.Phase ? 1u : 0u))
        {
            cqe = default;
            return false;
        }
        Memory.TryReadUInt32(gpa, out var dw0);
        Memory.TryReadUInt32(gpa + 8, out var dw2);
        var field = (ushort)(dw3 >> 17);
        cqe = new Cqe(dw0, (ushort)dw2, (ushort)(dw2 >> 16), (ushort)dw3, ((dw3 >> 16) & 1) != 0,
            new NvmeStatus((StatusCodeType)((field >> 8) & 7), (byte)field));
        q.CqHead = (q.CqHead + 1) % q.CqSize;
        if (q.CqHead == 0) { q.Phase = !q.Phase; }
        if (ring) { Write32(0x1000 + (ulong)(2 * q.Id + 1) * 4, q.CqHead); }
        return true;
    }

    public Cqe Poll(HostQueue q)
    {
        Assert.True(TryPoll(q, out var cqe), $"no completion on queue {q.Id}");
        return cqe;
    }

    /// <summary>Submits and returns its completion (which must be the next one).</summary>
    public Cqe Run(HostQueue q, Command c)
    {
        c.CommandId = NextCid();
        Submit(q, c);
        var cqe = Poll(q);
        Assert.Equal(c.CommandId, cqe.CommandId);
        Assert.Equal(q.Id, cqe.SqId);
        return cqe;
    }

    public Cqe Admin_(Command c) => Run(Admin, c);

    public NvmeStatus CreateIoQueuePair(ushort qid, uint size = 16, ushort vector = 1, ushort? cqid = null)
    {
        var cq = cqid ?? qid;
        var q = new HostQueue { Id = qid, SqBase = QueueArea + (ulong)qid * 0x4_0000, CqBase = QueueArea + (ulong)cq * 0x4_0000 + 0x2_0000, SqSize = size, CqSize = size };
        if (cqid is null)
        {
            var s1 = Admin_(new Command { Opcode = 0x05, Prp1 = q.CqBase, Cdw10 = ((size - 1) << 16) | qid, Cdw11 = ((uint)vector << 16) | 0b11 }).Status;
            if (!s1.IsSuccess) { return s1; }
        }
        else
        {
            var shared = Io[cq];
            q.CqSize = shared.CqSize;
        }
        var s2 = Admin_(new Command { Opcode = 0x01, Prp1 = q.SqBase, Cdw10 = ((size - 1) << 16) | qid, Cdw11 = ((uint)cq << 16) | 1 }).Status;
        if (s2.IsSuccess) { Io[qid] = q; }
        return s2;
    }

    public Cqe ReadBlocks(HostQueue q, ulong lba, uint blocks, ulong prp1, ulong prp2 = 0) =>
        Run(q, new Command { Opcode = 0x02, Nsid = 1, Prp1 = prp1, Prp2 = prp2, Cdw10 = (uint)lba, Cdw11 = (uint)(lba >> 32), Cdw12 = blocks - 1 });

    public Cqe WriteBlocks(HostQueue q, ulong lba, uint blocks, ulong prp1, ulong prp2 = 0) =>
        Run(q, new Command { Opcode = 0x01, Nsid = 1, Prp1 = prp1, Prp2 = prp2, Cdw10 = (uint)lba, Cdw11 = (uint)(lba >> 32), Cdw12 = blocks - 1 });

    public byte[] ReadGuest(ulong gpa, int length)
    {
        var b = new byte[length];
        Assert.True(Memory.TryRead(gpa, b));
        return b;
    }

    public void WriteGuest(ulong gpa, ReadOnlySpan<byte> data) => Assert.True(Memory.TryWrite(gpa, data));

    public void WritePrpList(ulong gpa, params ulong[] entries)
    {
        var b = new byte[entries.Length * 8];
        for (var i = 0; i < entries.Length; i++) { BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(i * 8), entries[i]); }
        WriteGuest(gpa, b);
    }

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }
}

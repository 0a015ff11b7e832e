using System.Buffers.Binary;
using Propolis.Core.Hw.Nvme;

namespace Propolis.Core.Tests.Hw.Nvme;

/// <summary>The I/O path (doorbell → PRP walk → backend → completion entry → interrupt → CQ
/// head doorbell) allocates nothing once warm.</summary>
public sealed class NvmeAllocationTests
{
    [Fact]
    public void SteadyStateIoAllocatesNothing()
    {
        using var h = new NvmeHarness();
        h.Enable();
        Assert.Equal(NvmeStatus.Success, h.CreateIoQueuePair(1, size: 64, vector: 1));
        var q = h.Io[1];
        h.Backend.Record = false;
        h.Interrupts.Record = false;
        var list = NvmeHarness.Arena + 0x10_0000;
        for (var i = 0; i < 16; i++)
        {
            h.Memory.TryWriteUInt64(list + (ulong)i * 8, NvmeHarness.Arena + (ulong)(i + 1) * 4096);
        }

        // Quietest of three rounds: the test host may allocate on this thread for its own reasons.
        RunRound(h, q, list, 200);
        var best = long.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            RunRound(h, q, list, 1000);
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, best);
        Assert.True(h.Interrupts.Count >= 3200);
    }

    private static void RunRound(NvmeHarness h, HostQueue q, ulong list, int commands)
    {
        Span<byte> sqe = stackalloc byte[64];
        Span<byte> db = stackalloc byte[4];
        for (var i = 0; i < commands; i++)
        {
            // Alternate a one-page read and a 64 KiB write through a PRP list.
            var c = (i & 1) == 0
                ? new Command { Opcode = 0x02, CommandId = (ushort)i, Nsid = 1, Prp1 = NvmeHarness.Arena, Cdw10 = (uint)(i % 1000), Cdw12 = 7 }
                : new Command { Opcode = 0x01, CommandId = (ushort)i, Nsid = 1, Prp1 = NvmeHarness.Arena, Prp2 = list, Cdw10 = (uint)(i % 1000), Cdw12 = 127 };
            c.WriteTo(sqe);
            h.Memory.TryWrite(q.SqBase + q.SqTail * 64, sqe);
            q.SqTail = (q.SqTail + 1) % q.SqSize;
            BinaryPrimitives.WriteUInt32LittleEndian(db, q.SqTail);
            h.Controller.MmioWrite(0x1000 + (ulong)(2 * q.Id) * 4, db);

            h.Memory.TryReadUInt32(q.CqBase + q.CqHead * 16 + 12, out var dw3);
            if ((ushort)dw3 != (ushort)i || (dw3 >> 17) != 0 || (((dw3 >> 16) & 1) != 0) != q.Phase)
            {
                Assert.Fail("unexpected completion");
            }
            q.CqHead = (q.CqHead + 1) % q.CqSize;
            if (q.CqHead == 0) { q.Phase = !q.Phase; }
            BinaryPrimitives.WriteUInt32LittleEndian(db, q.CqHead);
            h.Controller.MmioWrite(0x1000 + (ulong)(2 * q.Id + 1) * 4, db);
        }
    }
}

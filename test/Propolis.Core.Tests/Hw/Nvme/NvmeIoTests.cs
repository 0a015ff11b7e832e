using System.Buffers.Binary;
using Propolis.Core.Hw.Nvme;

namespace Propolis.Core.Tests.Hw.Nvme;

public sealed class NvmeIoTests : IDisposable
{
    private const ulong Page = 4096;
    private readonly NvmeHarness _h;
    private readonly HostQueue _q;

    public NvmeIoTests() : this(new NvmeHarness()) { }

    private NvmeIoTests(NvmeHarness h)
    {
        _h = h;
        _h.Enable();
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(1, size: 16, vector: 3));
        _q = _h.Io[1];
    }

    public void Dispose() => _h.Dispose();

    private static ulong P(int n) => NvmeHarness.Arena + (ulong)n * Page;

    [Fact]
    public void WriteThenReadWithPrp1Only()
    {
        var data = NvmeHarness.Pattern(1024, 1);
        _h.WriteGuest(P(0) + 0x400, data);
        Assert.Equal(NvmeStatus.Success, _h.WriteBlocks(_q, 10, 2, P(0) + 0x400).Status);
        Assert.Equal(data, _h.Backend.Data.AsSpan(10 * 512, 1024).ToArray());
        Assert.Equal(NvmeStatus.Success, _h.ReadBlocks(_q, 10, 2, P(1) + 0x200).Status);
        Assert.Equal(data, _h.ReadGuest(P(1) + 0x200, 1024));
        Assert.Equal(0, _h.ReadGuest(P(1) + 0x600, 1)[0]); // nothing past the transfer
        Assert.Contains((ushort)3, _h.Interrupts.Raised);
    }

    [Fact]
    public void ReadWithPrp1AndPrp2ScattersOverTwoPages()
    {
        var data = NvmeHarness.Pattern(8192, 2);
        data.CopyTo(_h.Backend.Data, 0);
        var c = _h.ReadBlocks(_q, 0, 16, P(7), P(3));
        Assert.Equal(NvmeStatus.Success, c.Status);
        Assert.Equal(data[..4096], _h.ReadGuest(P(7), 4096));
        Assert.Equal(data[4096..], _h.ReadGuest(P(3), 4096));
    }

    [Fact]
    public void PrpListAcrossPagesWithOffsetFirstEntry()
    {
        // 64 KiB starting 0x800 into its first page: 0x800 bytes there, then 15.5 pages from a list.
        var data = NvmeHarness.Pattern(65536, 3);
        data.CopyTo(_h.Backend.Data, 4096);
        var pages = Enumerable.Range(0, 16).Select(i => P(40 - 2 * i)).ToArray(); // descending, non-contiguous
        _h.WritePrpList(P(100), pages);
        Assert.Equal(NvmeStatus.Success, _h.ReadBlocks(_q, 8, 128, P(50) + 0x800, P(100)).Status);
        var got = new List<byte>(_h.ReadGuest(P(50) + 0x800, 0x800));
        foreach (var p in pages.Take(15)) { got.AddRange(_h.ReadGuest(p, 4096)); }
        got.AddRange(_h.ReadGuest(pages[15], 0x800));
        Assert.Equal(data, got.ToArray());
    }

    [Fact]
    public void ChainedPrpListsFollowTheLastEntry()
    {
        // The list starts 0xFE0 into its page: 4 slots, the last links to a second list.
        var data = NvmeHarness.Pattern(9 * 4096, 4);
        _h.WriteGuest(P(10), data.AsSpan(0, 4096));
        var dataPages = Enumerable.Range(0, 8).Select(i => P(20 + 3 * i)).ToArray();
        for (var i = 0; i < 8; i++) { _h.WriteGuest(dataPages[i], data.AsSpan((i + 1) * 4096, 4096)); }
        _h.WritePrpList(P(60) + 0xFE0, dataPages[0], dataPages[1], dataPages[2], P(61));
        _h.WritePrpList(P(61), dataPages[3..]);
        Assert.Equal(NvmeStatus.Success, _h.WriteBlocks(_q, 100, 72, P(10), P(60) + 0xFE0).Status);
        Assert.Equal(data, _h.Backend.Data.AsSpan(100 * 512, data.Length).ToArray());
    }

    [Fact]
    public void PrpListThatOnlyLinksIsRejected()
    {
        // A list pointer in the last slot of a page links to itself: no data, would never end.
        _h.WritePrpList(P(60) + 0xFF8, P(60) + 0xFF8);
        Assert.Equal(NvmeStatus.InvalidField, _h.ReadBlocks(_q, 0, 24, P(10), P(60) + 0xFF8).Status);
    }

    [Fact]
    public void PrpValidationStatuses()
    {
        Assert.Equal(NvmeStatus.DataTransferError, _h.ReadBlocks(_q, 0, 1, NvmeHarness.OutsideRam).Status);
        Assert.Equal(NvmeStatus.DataTransferError, _h.ReadBlocks(_q, 0, 16, P(0), NvmeHarness.OutsideRam).Status);
        Assert.Equal(NvmeStatus.PrpOffsetInvalid, _h.ReadBlocks(_q, 0, 1, P(0) + 2).Status);
        Assert.Equal(NvmeStatus.PrpOffsetInvalid, _h.ReadBlocks(_q, 0, 16, P(0), P(1) + 0x10).Status);
        _h.WritePrpList(P(60), P(1), P(2) + 8);
        Assert.Equal(NvmeStatus.PrpOffsetInvalid, _h.ReadBlocks(_q, 0, 24, P(0), P(60)).Status);
        _h.WritePrpList(P(60), P(1), NvmeHarness.OutsideRam);
        Assert.Equal(NvmeStatus.DataTransferError, _h.ReadBlocks(_q, 0, 24, P(0), P(60)).Status);
        Assert.Equal(NvmeStatus.DataTransferError, _h.ReadBlocks(_q, 0, 24, P(0), NvmeHarness.OutsideRam).Status);
        Assert.Empty(_h.Backend.Log);
    }

    [Fact]
    public void TransfersAboveMdtsAreInvalidField()
    {
        var pages = Enumerable.Range(1, 256).Select(i => P(i)).ToArray();
        _h.WritePrpList(P(300), pages);
        Assert.Equal(NvmeStatus.Success, _h.ReadBlocks(_q, 0, 2048, P(0), P(300)).Status); // exactly 1 MiB
        Assert.Equal(NvmeStatus.InvalidField, _h.ReadBlocks(_q, 0, 2049, P(0), P(300)).Status);
    }

    [Fact]
    public void LbaRangeBeyondTheNamespace()
    {
        var nsze = (ulong)_h.Backend.Data.Length / 512;
        Assert.Equal(NvmeStatus.Success, _h.ReadBlocks(_q, nsze - 1, 1, P(0)).Status);
        Assert.Equal(NvmeStatus.LbaOutOfRange, _h.ReadBlocks(_q, nsze - 1, 2, P(0)).Status);
        Assert.Equal(NvmeStatus.LbaOutOfRange, _h.WriteBlocks(_q, ulong.MaxValue, 1, P(0)).Status);
        Assert.Equal(NvmeStatus.LbaOutOfRange, _h.Run(_q, new Command { Opcode = 0x08, Nsid = 1, Cdw10 = (uint)nsze, Cdw12 = 0 }).Status);
    }

    [Fact]
    public void InvalidOpcodeAndNamespace()
    {
        Assert.Equal(NvmeStatus.InvalidOpcode, _h.Run(_q, new Command { Opcode = 0x05, Nsid = 1 }).Status); // Compare
        Assert.Equal(NvmeStatus.InvalidOpcode, _h.Run(_q, new Command { Opcode = 0x7F, Nsid = 1 }).Status);
        Assert.Equal(NvmeStatus.InvalidNamespace, _h.Run(_q, new Command { Opcode = 0x02, Nsid = 2, Prp1 = P(0) }).Status);
        Assert.Equal(NvmeStatus.InvalidNamespace, _h.Run(_q, new Command { Opcode = 0x00, Nsid = 0 }).Status);
        Assert.Equal(NvmeStatus.InvalidField, _h.Run(_q, new Command { Opcode = 0x02, Nsid = 1, Cdw0Flags = 1u << 14, Prp1 = P(0) }).Status);
    }

    [Fact]
    public void FlushReachesTheBackend()
    {
        Assert.Equal(NvmeStatus.Success, _h.Run(_q, new Command { Opcode = 0x00, Nsid = 1 }).Status);
        Assert.Equal(NvmeStatus.Success, _h.Run(_q, new Command { Opcode = 0x00, Nsid = 0xFFFF_FFFF }).Status);
        Assert.Equal(2, _h.Backend.Flushes);
    }

    [Fact]
    public void WriteZeroesAndDeallocate()
    {
        Array.Fill(_h.Backend.Data, (byte)0x5A);
        Assert.Equal(NvmeStatus.Success, _h.Run(_q, new Command { Opcode = 0x08, Nsid = 1, Cdw10 = 4, Cdw12 = 3 }).Status);
        Assert.All(_h.Backend.Data.AsSpan(4 * 512, 4 * 512).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(0x5A, _h.Backend.Data[8 * 512]);

        // Dataset Management: two ranges (one empty), AD set.
        var ranges = new byte[48];
        BinaryPrimitives.WriteUInt32LittleEndian(ranges.AsSpan(4), 16);
        BinaryPrimitives.WriteUInt64LittleEndian(ranges.AsSpan(8), 64);
        BinaryPrimitives.WriteUInt32LittleEndian(ranges.AsSpan(16 + 4), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(ranges.AsSpan(32 + 4), 1);
        BinaryPrimitives.WriteUInt64LittleEndian(ranges.AsSpan(32 + 8), 200);
        // The range list straddles a page: 16 bytes at the end of PRP1's page, the rest at PRP2.
        _h.WriteGuest(P(5) + 0xFF0, ranges.AsSpan(0, 16));
        _h.WriteGuest(P(9), ranges.AsSpan(16));
        Assert.Equal(NvmeStatus.Success, _h.Run(_q, new Command { Opcode = 0x09, Nsid = 1, Prp1 = P(5) + 0xFF0, Prp2 = P(9), Cdw10 = 2, Cdw11 = 1 << 2 }).Status);
        Assert.Equal([new ByteRange(64 * 512, 16 * 512), new ByteRange(200 * 512, 512)], _h.Backend.Discards);

        // Without AD nothing happens; a range past the end is LBA Out of Range.
        _h.Backend.Discards.Clear();
        Assert.Equal(NvmeStatus.Success, _h.Run(_q, new Command { Opcode = 0x09, Nsid = 1, Prp1 = P(5) + 0xFF0, Prp2 = P(9), Cdw10 = 2, Cdw11 = 1 }).Status);
        Assert.Empty(_h.Backend.Discards);
        BinaryPrimitives.WriteUInt64LittleEndian(ranges.AsSpan(8), (ulong)_h.Backend.Data.Length / 512 - 8);
        _h.WriteGuest(P(12), ranges.AsSpan(0, 16));
        Assert.Equal(NvmeStatus.LbaOutOfRange, _h.Run(_q, new Command { Opcode = 0x09, Nsid = 1, Prp1 = P(12), Cdw10 = 0, Cdw11 = 1 << 2 }).Status);
    }

    [Fact]
    public void PhaseTagFlipsOnEveryWrapOfTheCompletionQueue()
    {
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(2, size: 4, vector: 2));
        var q = _h.Io[2];
        var phases = new List<bool>();
        for (var i = 0; i < 10; i++)
        {
            var c = _h.ReadBlocks(q, (ulong)i, 1, P(i));
            Assert.Equal(NvmeStatus.Success, c.Status);
            Assert.Equal((ushort)((i + 1) % 4), c.SqHead);
            phases.Add(c.Phase);
        }
        Assert.Equal([true, true, true, true, false, false, false, false, true, true], phases);
    }

    [Fact]
    public void AFullCompletionQueueHoldsCommandsUntilTheHostReleasesEntries()
    {
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(2, size: 4, vector: 2));
        var q = _h.Io[2];
        _h.Backend.Hold = true;
        var cids = new List<ushort>();
        for (var i = 0; i < 3; i++)
        {
            var cid = _h.NextCid();
            cids.Add(cid);
            _h.Submit(q, new Command { Opcode = 0x02, CommandId = cid, Nsid = 1, Prp1 = P(i) });
        }
        // A CQ of 4 entries holds 3 completions: all three were taken.
        Assert.Equal(3, _h.Backend.HeldCount);
        var cid4 = _h.NextCid();
        cids.Add(cid4);
        _h.Submit(q, new Command { Opcode = 0x02, CommandId = cid4, Nsid = 1, Prp1 = P(3) });
        Assert.Equal(3, _h.Backend.HeldCount);
        _h.Backend.CompleteAll();
        _h.Backend.Hold = false;
        var got = new List<ushort> { _h.Poll(q).CommandId, _h.Poll(q).CommandId };
        // Releasing entries (CQ head doorbell) lets the fourth command run.
        got.Add(_h.Poll(q).CommandId);
        got.Add(_h.Poll(q).CommandId);
        Assert.Equal(cids, got);
        Assert.False(_h.TryPoll(q, out _));
    }

    [Fact]
    public void SubmissionQueuesMayShareACompletionQueue()
    {
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(2, size: 8, cqid: 1));
        var q2 = _h.Io[2];
        var cid = _h.NextCid();
        _h.Submit(q2, new Command { Opcode = 0x00, CommandId = cid, Nsid = 1 });
        var c = _h.Poll(_q);
        Assert.Equal(cid, c.CommandId);
        Assert.Equal((ushort)2, c.SqId);
        Assert.Equal(NvmeStatus.InvalidQueueDeletion, _h.Admin_(new Command { Opcode = 0x04, Cdw10 = 1 }).Status);
    }

    [Fact]
    public void BackendFailuresAreMediaErrors()
    {
        _h.Backend.Fail = true;
        Assert.Equal(NvmeStatus.UnrecoveredReadError, _h.ReadBlocks(_q, 0, 1, P(0)).Status);
        Assert.Equal(NvmeStatus.WriteFault, _h.WriteBlocks(_q, 0, 1, P(0)).Status);
    }

    [Fact]
    public void DeletingASubmissionQueueAbortsCommandsInFlight()
    {
        _h.Backend.Hold = true;
        var cid = _h.NextCid();
        _h.Submit(_q, new Command { Opcode = 0x02, CommandId = cid, Nsid = 1, Prp1 = P(0) });
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x00, Cdw10 = 1 }).Status);
        var aborted = _h.Poll(_q);
        Assert.Equal(cid, aborted.CommandId);
        Assert.Equal(NvmeStatus.AbortedSqDeletion, aborted.Status);
        // The backend's late completion is dropped: nothing more on the CQ.
        _h.Backend.CompleteAll();
        Assert.False(_h.TryPoll(_q, out _));
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x04, Cdw10 = 1 }).Status);
    }

    [Fact]
    public void ResetWithCommandsInFlightDropsTheirCompletions()
    {
        _h.Backend.Hold = true;
        _h.Submit(_q, new Command { Opcode = 0x02, CommandId = 77, Nsid = 1, Prp1 = P(0) });
        var cqBefore = _h.ReadGuest(_q.CqBase, 64);
        _h.Write32(0x14, NvmeHarness.CcIoEntrySizes);
        Assert.Equal(0u, _h.Read32(0x1C));
        _h.Backend.CompleteAll();
        Assert.Equal(cqBefore, _h.ReadGuest(_q.CqBase, 64));
        Assert.DoesNotContain((ushort)3, _h.Interrupts.Raised);
    }

    [Fact]
    public void SubmissionQueueDoorbellBeyondItsSizeIsIgnored()
    {
        _h.Write32(0x1000 + 8, 16);
        _h.Write32(0x1000 + 8, 9999);
        Assert.Empty(_h.Backend.Log);
        Assert.Equal(NvmeStatus.Success, _h.ReadBlocks(_q, 0, 1, P(0)).Status);
    }

    [Fact]
    public void InterruptCoalescingHoldsInterruptsUntilTheThresholdOrTheQueueGoesIdle()
    {
        int Raised() => _h.Interrupts.Raised.Count(v => v == 3);
        void Batch(int n)
        {
            _h.Backend.Hold = true;
            for (var i = 0; i < n; i++)
                _h.Submit(_q, new Command { Opcode = 0x02, CommandId = _h.NextCid(), Nsid = 1, Prp1 = P(i) });
            _h.Backend.Hold = false;
            _h.Backend.CompleteAll();
            for (var i = 0; i < n; i++)
                Assert.Equal(NvmeStatus.Success, _h.Poll(_q).Status);
        }

        Batch(4);
        Assert.Equal(4, Raised());                 // off by default: one interrupt per completion

        // THR = 1 (two entries), TIME = 25.5 ms: four completions, two interrupts.
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x08, Cdw11 = 1 | (255u << 8) }).Status);
        Batch(4);
        Assert.Equal(6, Raised());

        // THR = 7: three completions never reach it; the last one finds the queue idle and signals.
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x08, Cdw11 = 7 | (255u << 8) }).Status);
        Batch(3);
        Assert.Equal(7, Raised());

        // Interrupt Vector Configuration CD = 1 for vector 3: every completion signals again.
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x09, Cdw11 = 3 | 0x1_0000 }).Status);
        Batch(3);
        Assert.Equal(10, Raised());
    }

    [Fact]
    public void ShadowDoorbellsReplaceMostMmioWrites()
    {
        ulong shadow = P(200), eventIdx = P(201);
        _h.WriteGuest(shadow, new byte[4096]);
        _h.WriteGuest(eventIdx, new byte[4096]);
        // A queue already in use: its doorbell values seed the buffers, so nothing is replayed.
        Assert.Equal(NvmeStatus.Success, _h.Run(_q, new Command { Opcode = 0x00, Nsid = 1 }).Status);
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x7C, Prp1 = shadow, Prp2 = eventIdx }).Status);
        Assert.True(_h.Memory.TryReadUInt32(shadow + 8, out var seededTail));
        Assert.True(_h.Memory.TryReadUInt32(shadow + 12, out var seededHead));
        Assert.Equal((1u, 1u), (seededTail, seededHead));
        Assert.Equal(0u, _h.Memory.TryReadUInt32(shadow, out var adminSlot) ? adminSlot : 99); // admin keeps MMIO
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x7C, Prp1 = shadow + 8, Prp2 = eventIdx }).Status);

        // Two commands: the host updates the shadow tail, then rings the doorbell once.
        _h.Submit(_q, new Command { Opcode = 0x00, CommandId = 501, Nsid = 1 }, ring: false);
        _h.Submit(_q, new Command { Opcode = 0x00, CommandId = 502, Nsid = 1 }, ring: false);
        _h.Memory.TryWriteUInt32(shadow + 8, _q.SqTail);
        _h.Write32(0x1000 + 8, 1); // a stale value in the register: the shadow tail wins
        Assert.True(_h.Memory.TryReadUInt32(eventIdx + 8, out var sqEventIdx));
        Assert.Equal(3u, sqEventIdx);
        // Completions are released through the shadow CQ head only (no MMIO).
        Assert.Equal(501, _h.Poll2(_q).CommandId);
        Assert.Equal(502, _h.Poll2(_q).CommandId);
        _h.Memory.TryWriteUInt32(shadow + 12, _q.CqHead);

        // Fill the CQ (16 entries hold 15) through the shadow tail; the controller reads the
        // shadow head when it runs out of room.
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < 10; i++)
            {
                _h.Submit(_q, new Command { Opcode = 0x00, CommandId = (ushort)(600 + i), Nsid = 1 }, ring: false);
            }
            _h.Memory.TryWriteUInt32(shadow + 8, _q.SqTail);
            _h.Write32(0x1000 + 8, _q.SqTail);
            for (var i = 0; i < 10; i++)
            {
                Assert.Equal(600 + i, _h.Poll2(_q).CommandId);
                _h.Memory.TryWriteUInt32(shadow + 12, _q.CqHead);
            }
        }
    }
}

public sealed class NvmeIoEventDoorbellTests : IDisposable
{
    private const int Page = 4096;
    private readonly NvmeHarness _h = new();
    private readonly HostQueue _q;
    private readonly List<bool> _changes = [];

    public NvmeIoEventDoorbellTests()
    {
        _h.Controller.ShadowDoorbellsChanged = active => _changes.Add(active);
        _h.Enable();
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(1, size: 16, vector: 3));
        _q = _h.Io[1];
    }

    public void Dispose() => _h.Dispose();

    private static ulong P(int n) => NvmeHarness.Arena + (ulong)n * Page;

    [Fact]
    public void ADoorbellWhoseValueWasSwallowedIsReadFromTheShadowBuffer()
    {
        ulong shadow = P(200), eventIdx = P(201);
        _h.WriteGuest(shadow, new byte[4096]);
        _h.WriteGuest(eventIdx, new byte[4096]);
        Assert.Empty(_changes);
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x7C, Prp1 = shadow, Prp2 = eventIdx }).Status);
        Assert.Equal([true], _changes);

        // The host writes the tail to the shadow buffer; the MMIO doorbell write went to an
        // ioeventfd (no value), which lands here as "SQ 1 tail doorbell rang".
        _h.Submit(_q, new Command { Opcode = 0x00, CommandId = 71, Nsid = 1 }, ring: false);
        _h.Submit(_q, new Command { Opcode = 0x00, CommandId = 72, Nsid = 1 }, ring: false);
        _h.Memory.TryWriteUInt32(shadow + 8, _q.SqTail);
        _h.Controller.ShadowDoorbellRung(2);
        Assert.Equal(71, _h.Poll2(_q).CommandId);
        Assert.Equal(72, _h.Poll2(_q).CommandId);
        Assert.Equal(2, _h.Interrupts.Raised.Count(v => v == 3));

        // A CQ head ring, a ring for a queue that does not exist and the admin queue's index are harmless.
        _h.Memory.TryWriteUInt32(shadow + 12, _q.CqHead);
        _h.Controller.ShadowDoorbellRung(3);
        _h.Controller.ShadowDoorbellRung(2 * 9);
        _h.Controller.ShadowDoorbellRung(0);
        _h.Submit(_q, new Command { Opcode = 0x00, CommandId = 73, Nsid = 1 }, ring: false);
        _h.Memory.TryWriteUInt32(shadow + 8, _q.SqTail);
        _h.Controller.ShadowDoorbellRung(2);
        var last = _h.Poll2(_q);
        Assert.Equal((73, NvmeStatus.Success), (last.CommandId, last.Status));

        // A controller reset stops shadow doorbells: the glue is told to stop watching.
        _h.Controller.Reset();
        Assert.Equal([true, false], _changes);
    }
}

internal static class HarnessShadowExtensions
{
    /// <summary>Reads a completion without ringing the CQ head doorbell.</summary>
    public static Cqe Poll2(this NvmeHarness h, HostQueue q)
    {
        Assert.True(h.TryPoll(q, out var c, ring: false));
        return c;
    }
}

using System.Buffers.Binary;
using Propolis.Core.Hw.Nvme;

namespace Propolis.Core.Tests.Hw.Nvme;

/// <summary>A randomized command stream (fixed seeds): every guest-controlled field is drawn
/// at random. The controller must never throw, never hand the backend a range outside the
/// namespace or guest RAM, and never write guest memory outside what commands describe (all
/// in-RAM addresses the stream uses lie in the arena or the queue areas).</summary>
public sealed class NvmeFuzzTests
{
    private const ulong Page = 4096;

    // Guest memory the stream may make the controller write: the admin queues, the I/O queue area, the arena.
    // Page 0 too: arena memory that reads back as zeros (a write-zeroed block read into it)
    // is a PRP list naming page 0, which is RAM and a valid data page.
    private static readonly (ulong Start, ulong End)[] s_writable =
    [
        (0, Page),
        (NvmeHarness.AdminSq, NvmeHarness.AdminSq + 64 * 64),
        (NvmeHarness.AdminCq, NvmeHarness.AdminCq + 64 * 16),
        (NvmeHarness.QueueArea, NvmeHarness.Arena),
        (NvmeHarness.Arena, NvmeHarness.RamSize),
    ];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomCommandStreamNeverThrowsNorStrays(int seed)
    {
        var rng = new Random(seed);
        // A namespace size that is not a multiple of a page, so no Identify field names a RAM page.
        using var h = new NvmeHarness(new FakeBackend((4 << 20) + 1536));
        new Random(seed).NextBytes(h.Backend.Data);
        h.Backend.GuestLimit = NvmeHarness.RamSize;
        var canary = new byte[NvmeHarness.RamSize];
        new Random(~seed).NextBytes(canary);
        FillOutsideWritable(h, canary);
        // The arena starts full of addresses the stream may use, so any PRP list read from it is one.
        for (var a = NvmeHarness.Arena; a < NvmeHarness.RamSize; a += 8)
        {
            h.Memory.TryWriteUInt64(a, Address(rng));
        }
        Restart(h);

        var submitted = 0;
        var completed = 0;
        for (var step = 0; step < 6000; step++)
        {
            var roll = rng.Next(1000);
            if (roll < 3)
            {
                Restart(h);
                continue;
            }
            if (roll < 40)
            {
                // A doorbell write with an arbitrary index and value.
                h.Write32(0x1000 + (ulong)rng.Next(0, 48) * 4, (uint)rng.Next(-2, 70000));
                continue;
            }
            if (roll < 60)
            {
                // Random PRP list pages in the arena.
                var list = Arena(rng, rng.Next(0, 2048)) & ~7UL;
                var n = rng.Next(1, 64);
                for (var i = 0; i < n && list + (ulong)i * 8 + 8 <= NvmeHarness.RamSize; i++)
                {
                    h.Memory.TryWriteUInt64(list + (ulong)i * 8, Address(rng));
                }
                continue;
            }
            h.Backend.Hold = rng.Next(4) == 0;
            var toAdmin = rng.Next(10) < 3;
            var q = toAdmin ? h.Admin : h.Io[(ushort)rng.Next(1, 3)];
            var c = toAdmin ? AdminCommand(rng) : IoCommand(rng);
            c.CommandId = h.NextCid();
            h.Submit(q, c);
            submitted++;
            if (rng.Next(3) == 0)
            {
                h.Backend.CompleteAll();
            }
            completed += DrainCompletions(h);
        }
        h.Backend.Hold = false;
        h.Backend.CompleteAll();
        completed += DrainCompletions(h);

        Assert.True(completed > submitted / 2, $"only {completed} of {submitted} commands completed");
        AssertOutsideWritableUnchanged(h, canary);
    }

    private static int DrainCompletions(NvmeHarness h)
    {
        var n = 0;
        foreach (var q in h.Io.Values.Prepend(h.Admin))
        {
            for (var i = 0; i < 64 && h.TryPoll(q, out var cqe); i++)
            {
                Assert.True(cqe.SqId <= NvmeController.MaxIoQueuePairs);
                Assert.True(cqe.SqHead < 64);
                n++;
            }
        }
        return n;
    }

    /// <summary>Controller reset, then the admin queue and two I/O queue pairs set up afresh.</summary>
    private static void Restart(NvmeHarness h)
    {
        h.Write32(0x14, 0);
        Assert.Equal(0u, h.Read32(0x1C));
        h.Backend.Hold = false;
        h.Backend.CompleteAll();
        h.Admin.SqTail = 0;
        h.Admin.CqHead = 0;
        h.Admin.Phase = true;
        h.WriteGuest(NvmeHarness.AdminCq, new byte[64 * 16]);
        h.Io.Clear();
        h.Enable();
        for (ushort qid = 1; qid <= 2; qid++)
        {
            h.WriteGuest(NvmeHarness.QueueArea + qid * 0x4_0000UL + 0x2_0000, new byte[64 * 16]);
            Assert.Equal(NvmeStatus.Success, h.CreateIoQueuePair(qid, size: 64, vector: qid));
        }
    }

    private static ulong Arena(Random rng, int offsetInPage) =>
        NvmeHarness.Arena + (ulong)rng.Next(0, (int)((NvmeHarness.RamSize - NvmeHarness.Arena) / Page)) * Page + (ulong)offsetInPage;

    /// <summary>An address the guest might put in a PRP: in the arena (aligned or not), just
    /// outside RAM, or far outside; never elsewhere in RAM.</summary>
    private static ulong Address(Random rng) => rng.Next(10) switch
    {
        < 6 => Arena(rng, 0),
        < 8 => Arena(rng, rng.Next(0, 4096)),
        8 => NvmeHarness.RamSize + (ulong)rng.Next(0, 1 << 20),
        _ => (1UL << 40) | (ulong)rng.NextInt64(),
    };

    private static uint Dword(Random rng) => rng.Next(4) switch
    {
        0 => (uint)rng.Next(0, 4),
        1 => (uint)rng.Next(0, 0x1_0000) | ((uint)rng.Next(0, 0x40) << 16),
        2 => 0xFFFF_FFFF,
        _ => (uint)rng.NextInt64(0, 1L << 32),
    };

    private static uint Nsid(Random rng) => rng.Next(10) switch
    {
        < 7 => 1,
        7 => 0,
        8 => 0xFFFF_FFFF,
        _ => Dword(rng),
    };

    private static Command AdminCommand(Random rng)
    {
        // Not Doorbell Buffer Config (7Ch): this host keeps ringing MMIO doorbells, which a
        // controller with shadow doorbells rightly ignores in favour of the buffer (tested apart).
        byte[] opcodes = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x0C, 0x10, 0x80];
        var c = new Command
        {
            Opcode = rng.Next(8) == 0 ? (byte)(rng.Next(0x7D, 0x17C) & 0xFF) : opcodes[rng.Next(opcodes.Length)],
            Nsid = Nsid(rng),
            Prp1 = Address(rng),
            Prp2 = Address(rng),
            Cdw10 = Dword(rng),
            Cdw11 = Dword(rng),
            Cdw12 = Dword(rng),
            Cdw13 = rng.Next(4) == 0 ? Dword(rng) : 0,
        };
        if (rng.Next(20) == 0) { c.Cdw0Flags = (uint)rng.Next(4) << 8 | (uint)rng.Next(4) << 14; }
        return c;
    }

    private static Command IoCommand(Random rng)
    {
        byte[] opcodes = [0x00, 0x01, 0x02, 0x02, 0x01, 0x08, 0x09, 0x05, 0x7F];
        var blocks = (ulong)((4 << 20) + 1536) / 512;
        ulong slba = rng.Next(6) switch
        {
            < 4 => (ulong)rng.NextInt64(0, (long)blocks),
            4 => blocks - (ulong)rng.Next(0, 8),
            _ => (ulong)rng.NextInt64(),
        };
        var c = new Command
        {
            Opcode = opcodes[rng.Next(opcodes.Length)],
            Nsid = Nsid(rng),
            Prp1 = Address(rng),
            Prp2 = Address(rng),
            Cdw10 = (uint)slba,
            Cdw11 = (uint)(slba >> 32) | (rng.Next(3) == 0 ? 1u << 2 : 0),
            Cdw12 = rng.Next(5) switch { < 3 => (uint)rng.Next(0, 16), 3 => (uint)rng.Next(0, 2100), _ => Dword(rng) },
        };
        if (c.Opcode == 0x09) { c.Cdw10 = (uint)rng.Next(0, 256); }
        if (rng.Next(30) == 0) { c.Cdw0Flags = (uint)rng.Next(4) << 8 | (uint)rng.Next(4) << 14; }
        return c;
    }

    private static bool Writable(ulong gpa)
    {
        foreach (var (start, end) in s_writable)
        {
            if (gpa >= start && gpa < end) { return true; }
        }
        return false;
    }

    private static void FillOutsideWritable(NvmeHarness h, byte[] canary)
    {
        for (ulong a = 0; a < NvmeHarness.RamSize; a += Page)
        {
            if (!Writable(a)) { h.WriteGuest(a, canary.AsSpan((int)a, (int)Page)); }
        }
    }

    private static void AssertOutsideWritableUnchanged(NvmeHarness h, byte[] canary)
    {
        // The admin CQ and SQ occupy part of their page: check page by page, byte-exact outside the ranges.
        for (ulong a = 0; a < NvmeHarness.RamSize; a += Page)
        {
            if (Writable(a)) { continue; }
            Assert.True(canary.AsSpan((int)a, (int)Page).SequenceEqual(h.ReadGuest(a, (int)Page)), $"guest page 0x{a:X} was written");
        }
    }
}

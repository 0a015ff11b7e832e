using System.Buffers.Binary;
using Propolis.Core.Block;
using Propolis.Core.Hw.Nvme;

namespace Propolis.Core.Tests.Hw.Nvme;

/// <summary>The controller over the block layer's memory backend, with its worker threads.</summary>
public sealed class BlockBackendAdapterTests : IDisposable
{
    private readonly MemoryBackend _backend = MemoryBackend.Create(MemoryBackend.MemAsyncKind, 1 << 20, new BlockBackendOptions { Workers = 2 });
    private readonly NvmeHarness _h;
    private BlockBackendAdapter? _adapter;

    public BlockBackendAdapterTests()
    {
        _h = new NvmeHarness(m => _adapter = new BlockBackendAdapter(_backend, m));
        _backend.Start();
        _h.Enable();
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(1, size: 32));
    }

    public void Dispose()
    {
        _backend.Stop();
        _backend.Dispose();
        _h.Dispose();
    }

    private static ulong P(int n) => NvmeHarness.Arena + (ulong)n * 4096;

    [Fact]
    public void WritesReadBackThroughTheBlockLayer()
    {
        var q = _h.Io[1];
        var data = NvmeHarness.Pattern(12288, 9);
        _h.WriteGuest(P(1), data.AsSpan(0, 4096));
        _h.WriteGuest(P(5), data.AsSpan(4096, 4096));
        _h.WriteGuest(P(3), data.AsSpan(8192));
        _h.WritePrpList(P(20), P(5), P(3));
        // FUA write (a flush follows), then a read scattered differently.
        var w = _h.RunWait(q, new Command { Opcode = 0x01, Nsid = 1, Prp1 = P(1), Prp2 = P(20), Cdw10 = 40, Cdw12 = 23 | (1u << 30) });
        Assert.Equal(NvmeStatus.Success, w.Status);
        _h.WritePrpList(P(21), P(31), P(32), P(33));
        var r = _h.RunWait(q, new Command { Opcode = 0x02, Nsid = 1, Prp1 = P(30) + 0x800, Prp2 = P(21), Cdw10 = 40, Cdw12 = 23 });
        Assert.Equal(NvmeStatus.Success, r.Status);
        var got = _h.ReadGuest(P(30) + 0x800, 0x800).Concat(_h.ReadGuest(P(31), 3 * 4096)).Take(12288).ToArray();
        Assert.Equal(data, got);
        Assert.Equal(NvmeStatus.Success, _h.RunWait(q, new Command { Opcode = 0x00, Nsid = 1 }).Status);
    }

    [Fact]
    public void DeallocateRunsEveryRangeAndWriteZeroesClears()
    {
        var q = _h.Io[1];
        var ones = Enumerable.Repeat((byte)0xFF, 4096).ToArray();
        _h.WriteGuest(P(1), ones);
        for (var lba = 0u; lba < 64; lba += 8)
        {
            Assert.Equal(NvmeStatus.Success, _h.RunWait(q, new Command { Opcode = 0x01, Nsid = 1, Prp1 = P(1), Cdw10 = lba, Cdw12 = 7 }).Status);
        }
        var ranges = new byte[32];
        BinaryPrimitives.WriteUInt32LittleEndian(ranges.AsSpan(4), 8);
        BinaryPrimitives.WriteUInt64LittleEndian(ranges.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(ranges.AsSpan(20), 8);
        BinaryPrimitives.WriteUInt64LittleEndian(ranges.AsSpan(24), 32);
        _h.WriteGuest(P(2), ranges);
        Assert.Equal(NvmeStatus.Success, _h.RunWait(q, new Command { Opcode = 0x09, Nsid = 1, Prp1 = P(2), Cdw10 = 1, Cdw11 = 1 << 2 }).Status);
        Assert.Equal(NvmeStatus.Success, _h.RunWait(q, new Command { Opcode = 0x08, Nsid = 1, Cdw10 = 16, Cdw12 = 7 }).Status);
        Assert.Equal(NvmeStatus.Success, _h.RunWait(q, new Command { Opcode = 0x02, Nsid = 1, Prp1 = P(10), Cdw10 = 8, Cdw12 = 7 }).Status);
        Assert.Equal(ones, _h.ReadGuest(P(10), 4096));
        Assert.Equal(NvmeStatus.Success, _h.RunWait(q, new Command { Opcode = 0x02, Nsid = 1, Prp1 = P(10), Cdw10 = 16, Cdw12 = 7 }).Status);
        Assert.All(_h.ReadGuest(P(10), 4096), b => Assert.Equal(0, b));
    }

    [Fact]
    public void ShutdownFlushesThroughTheBlockLayer()
    {
        _h.Write32(0x14, NvmeHarness.CcIoEntrySizes | 1 | (1u << 14));
        var deadline = Environment.TickCount64 + 10_000;
        while ((_h.Read32(0x1C) & 0xC) != 0x8 && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(1);
        }
        Assert.Equal(1u | (2u << 2), _h.Read32(0x1C));
    }
}

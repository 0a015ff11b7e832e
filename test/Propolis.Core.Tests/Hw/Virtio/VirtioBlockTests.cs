using System.Buffers.Binary;
using System.Collections.Concurrent;
using Propolis.Core.Block;
using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;
using static Propolis.Core.Hw.Virtio.VirtioBlockSpec;

namespace Propolis.Core.Tests.Hw.Virtio;

/// <summary>An in-memory disk. Completes inline, or holds requests until the test releases them.</summary>
internal sealed class FakeBlockBackend(ulong capacity, uint blockSize = 512, bool readOnly = false, bool discard = true, bool writeZeroes = true) : IBlockBackend
{
    public readonly byte[] Disk = new byte[capacity];
    public readonly List<(BlockOperation Op, ulong Offset, ulong Length)> Log = [];
    public readonly ConcurrentQueue<BlockRequest> Held = new();
    public bool Hold { get; set; }
    public bool Fail { get; set; }

    /// <summary>False for allocation measurements (the log grows).</summary>
    public bool Record { get; set; } = true;

    public string Kind => "fake";
    public BlockDeviceInfo Info => new(blockSize, capacity / blockSize, readOnly, discard, SupportsFlush: true, writeZeroes, Workers: 1);
    public void Attach(BlockAttachment attachment) { }
    public void Start() { }
    public void Pause() { }
    public void Resume() { }
    public BlockResult Flush() => BlockResult.Success;
    public void Stop() { }
    public void Dispose() { }

    public void Submit(BlockRequest request)
    {
        if (Record)
        {
            lock (Log)
            {
                Log.Add((request.Operation, request.Offset, request.Length));
            }
        }
        if (Hold) { Held.Enqueue(request); } else { Execute(request); }
    }

    public void Execute(BlockRequest r)
    {
        if (Fail) { r.Complete(BlockResult.IoError); return; }
        var pos = (int)r.Offset;
        switch (r.Operation)
        {
            case BlockOperation.Read:
                foreach (var s in r.Segments)
                {
                    Assert.True(r.Memory.TryWrite(s.Address, Disk.AsSpan(pos, (int)s.Length)));
                    pos += (int)s.Length;
                }
                break;
            case BlockOperation.Write:
                foreach (var s in r.Segments)
                {
                    Assert.True(r.Memory.TryRead(s.Address, Disk.AsSpan(pos, (int)s.Length)));
                    pos += (int)s.Length;
                }
                break;
            case BlockOperation.Discard:
            case BlockOperation.WriteZeroes:
                Disk.AsSpan(pos, (int)r.Length).Clear();
                break;
        }
        r.Complete(BlockResult.Success);
    }
}

public sealed class VirtioBlockTests : IDisposable
{
    private const ulong Capacity = 64 * 1024;
    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000), (0x20_0000, 0x1_0000)]));
    private readonly RecordingEvents _events = new();

    public void Dispose() => _mem.Dispose();

    private (VirtioBlock Dev, FakeBlockBackend Backend, MockDriver D) Setup(FakeBlockBackend? backend = null, bool eventIdx = false, string serial = "propolis-disk-0")
    {
        backend ??= new FakeBlockBackend(Capacity);
        for (var i = 0; i < backend.Disk.Length; i++) { backend.Disk[i] = (byte)(i * 7 + (i >> 9)); }
        var dev = new VirtioBlock(_mem, backend, _events, new VirtioBlockOptions { QueueSize = 64, MaxChainDescriptors = 16, Serial = serial });
        var d = new MockDriver(_mem, 64);
        var features = dev.DeviceFeatures & (eventIdx ? ulong.MaxValue : ~VirtioFeatures.RingEventIdx);
        dev.FeaturesNegotiated(features);
        d.Attach(dev.Queues[0], eventIdx, indirect: true);
        return (dev, backend, d);
    }

    /// <summary>Header, data buffers, status byte: the layout Linux's virtio_blk uses.</summary>
    private (ushort Head, ulong Status) Submit(MockDriver d, VirtioBlock dev, uint type, ulong sector, bool dataWritable, params uint[] dataLengths)
    {
        var hdr = d.Alloc(16);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(type, sector)));
        var bufs = new List<(ulong, uint, bool)> { (hdr, 16, false) };
        foreach (var len in dataLengths) { bufs.Add((d.Alloc(len, 0xEE), len, dataWritable)); }
        var status = d.Alloc(1, 0xAA);
        bufs.Add((status, 1, true));
        var head = d.AddChain([.. bufs]);
        d.Publish(head);
        dev.QueueNotify(0);
        return (head, status);
    }

    private byte Status(ulong gpa)
    {
        Assert.True(_mem.TryReadByte(gpa, out var b));
        return b;
    }

    [Fact]
    public void ReadFillsTheGuestBuffersAcrossSegments()
    {
        var (dev, backend, d) = Setup();
        var hdr = d.Alloc(16); var a = d.Alloc(512); var b = d.Alloc(1024); var st = d.Alloc(1, 0xAA);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeIn, 3)));
        d.Publish(d.AddChain((hdr, 16, false), (a, 512, true), (b, 1024, true), (st, 1, true)));
        dev.QueueNotify(0);

        Assert.Equal(StatusOk, Status(st));
        Assert.Equal([(0u, 1537u)], d.TakeUsed());
        Assert.Equal(backend.Disk.AsSpan(3 * 512, 512).ToArray(), MockDriver.Bytes(_mem, a, 512));
        Assert.Equal(backend.Disk.AsSpan(4 * 512, 1024).ToArray(), MockDriver.Bytes(_mem, b, 1024));
        Assert.Equal([(BlockOperation.Read, 3UL * 512, 1536UL)], backend.Log);
        Assert.Equal(1, _events.Interrupts);
    }

    [Fact]
    public void WriteStoresTheDataAndReturnsOneByte()
    {
        var (dev, backend, d) = Setup();
        var hdr = d.Alloc(16); var data = d.Alloc(1024, 0x5A); var st = d.Alloc(1, 0xAA);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeOut, 10)));
        d.Publish(d.AddChain((hdr, 16, false), (data, 1024, false), (st, 1, true)));
        dev.QueueNotify(0);

        Assert.Equal(StatusOk, Status(st));
        Assert.Equal([(0u, 1u)], d.TakeUsed());
        Assert.All(backend.Disk.AsSpan(10 * 512, 1024).ToArray(), x => Assert.Equal(0x5A, x));
        Assert.NotEqual(0x5A, backend.Disk[10 * 512 - 1]);
        Assert.NotEqual(0x5A, backend.Disk[12 * 512]);
    }

    [Fact]
    public void FramingDoesNotDependOnDescriptorBoundaries()
    {
        // Header and data in one readable descriptor; data and status in one writable descriptor.
        var (dev, backend, d) = Setup();
        var outBuf = d.Alloc(16 + 512, 0x33);
        Assert.True(_mem.TryWrite(outBuf, MockDriver.BlockHeader(TypeOut, 1)));
        var st = d.Alloc(1, 0xAA);
        d.Publish(d.AddChain((outBuf, 16 + 512, false), (st, 1, true)));
        var hdr = d.Alloc(16);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeIn, 1)));
        var inBuf = d.Alloc(513, 0xEE);
        d.Publish(d.AddChain((hdr, 16, false), (inBuf, 513, true)));
        dev.QueueNotify(0);

        Assert.Equal(StatusOk, Status(st));
        Assert.All(backend.Disk.AsSpan(512, 512).ToArray(), x => Assert.Equal(0x33, x));
        Assert.All(MockDriver.Bytes(_mem, inBuf, 512), x => Assert.Equal(0x33, x));
        Assert.Equal(StatusOk, Status(inBuf + 512));
        Assert.Equal([(0u, 1u), (2u, 513u)], d.TakeUsed());
    }

    [Fact]
    public void IndirectRequestIsServed()
    {
        var (dev, backend, d) = Setup();
        var hdr = d.Alloc(16); var data = d.Alloc(4096); var st = d.Alloc(1, 0xAA); var table = d.Alloc(48);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeIn, 8)));
        d.Publish(d.AddIndirectChain(table, (hdr, 16, false), (data, 4096, true), (st, 1, true)));
        dev.QueueNotify(0);
        Assert.Equal(StatusOk, Status(st));
        Assert.Equal(backend.Disk.AsSpan(8 * 512, 4096).ToArray(), MockDriver.Bytes(_mem, data, 4096));
    }

    [Fact]
    public void FlushReachesTheBackend()
    {
        var (dev, backend, d) = Setup();
        var (_, st) = Submit(d, dev, TypeFlush, 0, false);
        Assert.Equal(StatusOk, Status(st));
        Assert.Equal(BlockOperation.Flush, Assert.Single(backend.Log).Op);
    }

    [Fact]
    public void GetIdReturnsTheSerialNulPadded()
    {
        var (dev, _, d) = Setup(serial: "abc123");
        var (_, st) = Submit(d, dev, TypeGetId, 0, true, 20);
        Assert.Equal(StatusOk, Status(st));
        var id = MockDriver.Bytes(_mem, st - 32, 20);   // the 20-byte buffer sits just before the status (16-byte arena steps)
        Assert.Equal("abc123"u8.ToArray().Concat(new byte[14]), id);
        Assert.Equal([(0u, 21u)], d.TakeUsed());
    }

    [Theory]
    [InlineData(TypeDiscard, 0u, StatusOk)]
    [InlineData(TypeDiscard, 1u, StatusUnsupp)]          // unmap flag on discard
    [InlineData(TypeWriteZeroes, 0u, StatusOk)]
    [InlineData(TypeWriteZeroes, 1u, StatusOk)]          // unmap allowed
    [InlineData(TypeWriteZeroes, 2u, StatusUnsupp)]      // unknown flag
    public void DiscardAndWriteZeroes(uint type, uint flags, byte expected)
    {
        var (dev, backend, d) = Setup();
        var hdr = d.Alloc(16); var seg = d.Alloc(16); var st = d.Alloc(1, 0xAA);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(type, 0)));
        var range = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(range, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(range.AsSpan(8), 2);
        BinaryPrimitives.WriteUInt32LittleEndian(range.AsSpan(12), flags);
        Assert.True(_mem.TryWrite(seg, range));
        d.Publish(d.AddChain((hdr, 16, false), (seg, 16, false), (st, 1, true)));
        dev.QueueNotify(0);

        Assert.Equal(expected, Status(st));
        if (expected == StatusOk)
        {
            var op = type == TypeDiscard ? BlockOperation.Discard : BlockOperation.WriteZeroes;
            Assert.Equal([(op, 4UL * 512, 1024UL)], backend.Log);
            Assert.All(backend.Disk.AsSpan(4 * 512, 1024).ToArray(), x => Assert.Equal(0, x));
        }
        else
        {
            Assert.Empty(backend.Log);
        }
    }

    [Fact]
    public void MoreDiscardSegmentsThanAdvertisedIsUnsupported()
    {
        var (dev, backend, d) = Setup();
        var (_, st) = Submit(d, dev, TypeDiscard, 0, false, 32);
        Assert.Equal(StatusUnsupp, Status(st));
        Assert.Empty(backend.Log);
    }

    [Theory]
    [InlineData(TypeIn, Capacity / 512, 512u)]            // starts at the end
    [InlineData(TypeIn, Capacity / 512 - 1, 1024u)]       // runs past the end
    [InlineData(TypeOut, ulong.MaxValue, 512u)]           // sector * 512 would overflow
    [InlineData(TypeIn, 0UL, 100u)]                        // not whole sectors
    public void OutOfRangeTransfersGetIoErr(uint type, ulong sector, uint length)
    {
        var (dev, backend, d) = Setup();
        var (_, st) = Submit(d, dev, type, sector, type == TypeIn, length);
        Assert.Equal(StatusIoErr, Status(st));
        Assert.Empty(backend.Log);
        Assert.Equal([(0u, 1u)], d.TakeUsed());
    }

    [Fact]
    public void UnknownTypeIsUnsupported()
    {
        var (dev, backend, d) = Setup();
        var (_, st) = Submit(d, dev, 99, 0, true, 512);
        Assert.Equal(StatusUnsupp, Status(st));
        Assert.Empty(backend.Log);
    }

    [Fact]
    public void ShortHeaderIsAnIoError()
    {
        var (dev, backend, d) = Setup();
        var hdr = d.Alloc(8); var st = d.Alloc(1, 0xAA);
        d.Publish(d.AddChain((hdr, 8, false), (st, 1, true)));
        dev.QueueNotify(0);
        Assert.Equal(StatusIoErr, Status(st));
        Assert.Empty(backend.Log);
    }

    [Fact]
    public void RequestWithoutAStatusByteIsReturnedWithZeroBytes()
    {
        var (dev, backend, d) = Setup();
        var hdr = d.Alloc(16); var data = d.Alloc(512, 0x11);
        Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeOut, 0)));
        d.Publish(d.AddChain((hdr, 16, false), (data, 512, false)));
        dev.QueueNotify(0);
        Assert.Equal([(0u, 0u)], d.TakeUsed());
        Assert.Empty(backend.Log);
        Assert.Equal(1, dev.Queues[0].MalformedChains);
    }

    [Fact]
    public void ReadOnlyDeviceRefusesWritesAndOffersNoDiscard()
    {
        var backend = new FakeBlockBackend(Capacity, readOnly: true);
        var (dev, _, d) = Setup(backend);
        Assert.NotEqual(0UL, dev.DeviceFeatures & FeatureRo);
        Assert.Equal(0UL, dev.DeviceFeatures & (FeatureDiscard | FeatureWriteZeroes));
        var before = backend.Disk.ToArray();

        var (_, st) = Submit(d, dev, TypeOut, 0, false, 512);
        Assert.Equal(StatusIoErr, Status(st));
        var (_, st2) = Submit(d, dev, TypeWriteZeroes, 0, false, 16);
        Assert.Equal(StatusIoErr, Status(st2));
        Assert.Empty(backend.Log);
        Assert.Equal(before, backend.Disk);

        var (_, st3) = Submit(d, dev, TypeIn, 0, true, 512);
        Assert.Equal(StatusOk, Status(st3));
    }

    [Fact]
    public void BackendFailureIsAnIoError()
    {
        var (dev, backend, d) = Setup();
        backend.Fail = true;
        var (_, st) = Submit(d, dev, TypeIn, 0, true, 512);
        Assert.Equal(StatusIoErr, Status(st));
        Assert.Equal([(0u, 1u)], d.TakeUsed());
    }

    [Fact]
    public void CompletionsFromBackendThreadsLandInTheUsedRing()
    {
        var (dev, backend, d) = Setup(eventIdx: true);
        backend.Hold = true;
        d.SetUsedEvent(0);
        var statuses = new List<ulong>();
        for (var i = 0; i < 20; i++)
        {
            statuses.Add(Submit(d, dev, TypeIn, (ulong)i, true, 512).Status);
        }
        Assert.Empty(d.TakeUsed());
        var held = backend.Held.ToArray();
        Assert.Equal(20, held.Length);
        Parallel.ForEach(held, new ParallelOptions { MaxDegreeOfParallelism = 4 }, backend.Execute);

        var used = d.TakeUsed();
        Assert.Equal(20, used.Count);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (uint)(i * 3)).Order(), used.Select(u => u.Id).Order());
        Assert.All(used, u => Assert.Equal(513u, u.Len));
        Assert.All(statuses, s => Assert.Equal(StatusOk, Status(s)));
        Assert.Equal(1, _events.Interrupts);   // used_event 0: only the 0→1 step interrupts
        Assert.Equal(20, d.AvailEvent);       // the device re-armed notifications after draining
    }

    [Fact]
    public void HeadMadeAvailableAgainWhileInFlightNeedsReset()
    {
        var (dev, backend, d) = Setup();
        backend.Hold = true;
        var (head, _) = Submit(d, dev, TypeIn, 0, true, 512);
        d.Publish(head);
        dev.QueueNotify(0);
        Assert.Equal(1, _events.NeedsReset);
        Assert.True(dev.Queues[0].IsBroken);
    }

    [Fact]
    public void CompletionAfterResetIsDropped()
    {
        var (dev, backend, d) = Setup();
        backend.Hold = true;
        var (_, st) = Submit(d, dev, TypeIn, 0, true, 512);
        dev.Reset();
        d = new MockDriver(_mem, 64);
        dev.FeaturesNegotiated(dev.DeviceFeatures);
        d.Attach(dev.Queues[0]);
        Assert.True(backend.Held.TryDequeue(out var stale));
        backend.Hold = false;
        _mem.TryWriteByte(st, 0xAA);
        stale.Complete(BlockResult.Success);
        Assert.Equal(0, d.UsedIdx);
        Assert.Equal(0xAA, Status(st));

        // The same head is usable again in the new generation.
        var (_, st2) = Submit(d, dev, TypeIn, 0, true, 512);
        Assert.Equal(StatusOk, Status(st2));
    }

    [Fact]
    public void ConfigSpaceBytes()
    {
        var backend = new FakeBlockBackend(Capacity, blockSize: 4096);
        var dev = new VirtioBlock(_mem, backend, _events, new VirtioBlockOptions { QueueSize = 64, MaxChainDescriptors = 16, MaxDiscardSectors = 0x800 });
        var c = new byte[dev.ConfigSize];
        dev.ReadConfig(0, c);
        Assert.Equal(0x3C, c.Length);
        Assert.Equal(
            "8000000000000000" + "00000000" + "0E000000" + "00000000" + "00100000" + "0000000000000000"
            + "0000" + "0100" + "00080000" + "01000000" + "08000000" + "00080000" + "01000000" + "00000000",
            Convert.ToHexString(c));
        Assert.Equal(
            FeatureSegMax | FeatureBlkSize | FeatureFlush | FeatureDiscard | FeatureWriteZeroes
            | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx | VirtioFeatures.Version1,
            dev.DeviceFeatures);
        var partial = new byte[4];
        dev.ReadConfig(0x3A, partial);
        Assert.Equal([0, 0, 0, 0], partial);
    }

    [Fact]
    public void WritesThenReadsThroughTheMemoryBackendWorkers()
    {
        using var backend = MemoryBackend.Create(MemoryBackend.MemAsyncKind, 1 << 20, new BlockBackendOptions { Workers = 2 });
        var dev = new VirtioBlock(_mem, backend, _events, new VirtioBlockOptions { QueueSize = 64, MaxChainDescriptors = 16 });
        var d = new MockDriver(_mem, 64);
        dev.FeaturesNegotiated(dev.DeviceFeatures);
        d.Attach(dev.Queues[0], eventIdx: true);
        backend.Start();
        var statuses = new List<ulong>();
        for (var i = 0; i < 8; i++)
        {
            var (_, st) = Submit(d, dev, TypeOut, (ulong)i * 8, false, 4096);
            statuses.Add(st);
        }
        WaitForUsed(d, 8);
        var readBufs = new List<ulong>();
        for (var i = 0; i < 8; i++)
        {
            var hdr = d.Alloc(16); var data = d.Alloc(4096, 0x00); var st = d.Alloc(1, 0xAA);
            Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(TypeIn, (ulong)i * 8)));
            d.Publish(d.AddChain((hdr, 16, false), (data, 4096, true), (st, 1, true)));
            readBufs.Add(data);
            statuses.Add(st);
        }
        dev.QueueNotify(0);
        WaitForUsed(d, 16);
        Assert.All(statuses, s => Assert.Equal(StatusOk, Status(s)));
        Assert.All(readBufs, b => Assert.All(MockDriver.Bytes(_mem, b, 4096), x => Assert.Equal(0xEE, x)));   // what Submit's write buffers held
        backend.Stop();
    }

    private static void WaitForUsed(MockDriver d, int count)
    {
        var deadline = Environment.TickCount64 + 10_000;
        while (d.UsedIdx < count && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(1);
        }
        Assert.Equal(count, d.UsedIdx);
    }

    [Fact]
    public void NotifyAndCompletionAllocateNothing()
    {
        var (dev, backend, d) = Setup(eventIdx: true);
        backend.Record = false;
        // Ten requests laid out once; the driver re-publishes the same heads each round.
        var heads = new ushort[10];
        for (var i = 0; i < heads.Length; i++)
        {
            var hdr = d.Alloc(16); var data = d.Alloc(4096); var st = d.Alloc(1);
            Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(i % 2 == 0 ? TypeIn : TypeOut, (ulong)i * 8)));
            heads[i] = d.AddChain((hdr, 16, false), (data, 4096, i % 2 == 0), (st, 1, true));
        }
        void Round()
        {
            foreach (var h in heads) { d.Publish(h); }
            dev.QueueNotify(0);
        }
        Assert.Equal(0, LeastAllocated(Round, 100));
        Assert.Equal(0, dev.Queues[0].MalformedChains);
    }

    /// <summary>Bytes this thread allocates running <paramref name="round"/> <paramref name="rounds"/>
    /// times, the least of three attempts, after one warm-up round (JIT, first-use paths).</summary>
    internal static long LeastAllocated(Action round, int rounds)
    {
        round();
        long best = long.MaxValue;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var r = 0; r < rounds; r++) { round(); }
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return best;
    }

    [Fact]
    public void RandomChainStreamNeverThrowsAndStaysInsideItsBuffers()
    {
        var rng = new Random(1234);
        var backend = new FakeBlockBackend(Capacity);
        var (dev, _, d) = Setup(backend, eventIdx: true);
        const ulong arena = 0x8_0000, arenaSize = 0x2_0000;   // every buffer the driver hands out
        const ulong table2 = 0x6_0000;                           // indirect tables
        Assert.True(_mem.TryFill(0x1_0000, 0xF_0000, 0xC3));   // canary everywhere but the rings
        var published = 0;
        for (var round = 0; round < 3000; round++)
        {
            if (rng.Next(3) == 0)
            {
                // A well-formed request of a random kind, with random (possibly bad) parameters.
                uint[] types = [TypeIn, TypeOut, TypeFlush, TypeGetId, TypeDiscard, TypeWriteZeroes, 99];
                var type = types[rng.Next(types.Length)];
                var hdr = arena + (ulong)rng.Next(0x100) * 16;
                Assert.True(_mem.TryWrite(hdr, MockDriver.BlockHeader(type, (ulong)rng.Next(140))));
                var dataLen = rng.Next(4) == 0 ? (uint)rng.Next(1, 3000) : (uint)rng.Next(1, 5) * 512;
                var data = arena + 0x1000 + (ulong)rng.Next(0x100) * 16;
                var st = arena + 0x1_8000 + (ulong)rng.Next(0x100);
                var writable = type is TypeIn or TypeGetId;
                var head = (ushort)rng.Next(62);
                d.WriteDescriptor(head, hdr, 16, DescriptorFlags.Next, (ushort)(head + 1));
                d.WriteDescriptor(head + 1, data, dataLen, DescriptorFlags.Next | (writable ? DescriptorFlags.Write : 0), (ushort)(head + 2));
                d.WriteDescriptor(head + 2, st, 1, DescriptorFlags.Write, 0);
                d.Publish(head);
                published++;
                dev.QueueNotify(0);
                continue;
            }
            var n = rng.Next(1, 6);
            for (var i = 0; i < n; i++)
            {
                ulong Addr() => rng.Next(10) switch
                {
                    0 => 0x10_0000 + (ulong)rng.Next(0x1000),          // in the hole
                    1 => ulong.MaxValue - (ulong)rng.Next(64),         // wraps
                    _ => arena + (ulong)rng.Next((int)arenaSize - 0x1000),
                };
                uint Len() => rng.Next(8) == 0 ? (uint)rng.Next() : (uint)rng.Next(0, 0x1000);
                var flags = (DescriptorFlags)rng.Next(8);
                if (rng.Next(6) == 0)
                {
                    var entries = rng.Next(1, 5);
                    for (var k = 0; k < entries; k++)
                    {
                        MockDriver.WriteDescriptor(_mem, table2 + (ulong)i * 0x100, k, Addr(), Len(), (DescriptorFlags)rng.Next(8), (ushort)rng.Next(6));
                    }
                    d.WriteDescriptor(rng.Next(64), table2 + (ulong)i * 0x100, (uint)(rng.Next(6) * 16 + (rng.Next(4) == 0 ? 8 : 0)), DescriptorFlags.Indirect | (flags & DescriptorFlags.Next), (ushort)rng.Next(70));
                }
                else
                {
                    d.WriteDescriptor(rng.Next(64), Addr(), Len(), flags, (ushort)rng.Next(70));
                }
            }
            // A plausible header in the arena, sometimes.
            Assert.True(_mem.TryWrite(arena + (ulong)rng.Next(0x1000) * 16, MockDriver.BlockHeader((uint)rng.Next(15), (ulong)rng.Next(200))));
            d.Publish((ushort)rng.Next(64));
            published++;
            dev.QueueNotify(0);
            if (dev.Queues[0].IsBroken)
            {
                break;
            }
        }
        // Outside the rings, the descriptor tables and the arena, memory is untouched.
        var low = MockDriver.Bytes(_mem, 0x1_0000, (int)(table2 - 0x1_0000));
        Assert.Equal(-1, low.AsSpan().IndexOfAnyExcept((byte)0xC3));
        var mid = MockDriver.Bytes(_mem, table2 + 0x1000, (int)(arena - table2 - 0x1000));
        Assert.Equal(-1, mid.AsSpan().IndexOfAnyExcept((byte)0xC3));
        var high = MockDriver.Bytes(_mem, arena + arenaSize, (int)(0x10_0000 - arena - arenaSize));
        Assert.Equal(-1, high.AsSpan().IndexOfAnyExcept((byte)0xC3));
        Assert.True(published > 100);
        Assert.True(dev.Queues[0].MalformedChains > 0);
        Assert.NotEmpty(backend.Log);   // some random chains were well-formed requests
        Assert.Equal(published, d.UsedIdx);   // every chain came back exactly once
    }
}

using Propolis.Core.Hw.Virtio;
using Propolis.Core.Memory;

namespace Propolis.Core.Tests.Hw.Virtio;

public sealed class VirtQueueTests : IDisposable
{
    // 1 MiB of low RAM, a hole from 1 MiB to 2 MiB, 64 KiB of RAM at 2 MiB.
    private readonly GuestMemory _mem = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x10_0000), (0x20_0000, 0x1_0000)]));
    private readonly RecordingEvents _events = new();
    private readonly ChainSegment[] _segs = new ChainSegment[16];

    public void Dispose() => _mem.Dispose();

    private (VirtQueue Q, MockDriver D) Setup(ushort size = 16, bool eventIdx = false, bool indirect = true)
    {
        var q = new VirtQueue(_mem, 0, 256, _events);
        var d = new MockDriver(_mem, size);
        d.Attach(q, eventIdx, indirect);
        return (q, d);
    }

    [Fact]
    public void DirectChainYieldsItsSegmentsInOrder()
    {
        var (q, d) = Setup();
        var a = d.Alloc(16); var b = d.Alloc(100); var c = d.Alloc(1);
        var head = d.AddChain((a, 16, false), (b, 100, true), (c, 1, true));
        d.Publish(head);

        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out var chain));
        Assert.Equal(head, chain.Head);
        Assert.Equal(3, chain.SegmentCount);
        Assert.Equal(16u, chain.ReadableLength);
        Assert.Equal(101u, chain.WritableLength);
        Assert.Equal(new ChainSegment(a, 16, false), _segs[0]);
        Assert.Equal(new ChainSegment(b, 100, true), _segs[1]);
        Assert.Equal(new ChainSegment(c, 1, true), _segs[2]);
        Assert.Equal(PopResult.Empty, q.TryPop(_segs, out _));

        Assert.True(q.PushUsed(chain.Head, 101, q.Generation));
        Assert.Equal([(head, 101u)], d.TakeUsed().Select(u => ((ushort)u.Id, u.Len)));
        Assert.Equal(1, _events.Interrupts);
    }

    [Fact]
    public void IndirectTableIsFollowedAfterDirectDescriptors()
    {
        var (q, d) = Setup();
        var hdr = d.Alloc(16); var data = d.Alloc(512); var st = d.Alloc(1); var table = d.Alloc(48);
        var head = d.AddIndirectChain(table, (hdr, 16, false), (data, 512, true), (st, 1, true));
        d.Publish(head);

        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out var chain));
        Assert.Equal(3, chain.SegmentCount);
        Assert.Equal(new ChainSegment(data, 512, true), _segs[1]);
        Assert.Equal(0, q.MalformedChains);

        // One direct descriptor, then one naming the table (§2.7.5.3.1 allows that shape).
        var first = d.Alloc(16);
        var t2 = d.Alloc(32);
        MockDriver.WriteDescriptor(_mem, t2, 0, data, 512, DescriptorFlags.Write | DescriptorFlags.Next, 1);
        MockDriver.WriteDescriptor(_mem, t2, 1, st, 1, DescriptorFlags.Write, 0);
        d.WriteDescriptor(5, first, 16, DescriptorFlags.Next, 6);
        d.WriteDescriptor(6, t2, 32, DescriptorFlags.Indirect, 0);
        d.Publish(5);
        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out chain));
        Assert.Equal(3, chain.SegmentCount);
        Assert.Equal(new ChainSegment(first, 16, false), _segs[0]);
    }

    public static TheoryData<string> MalformedShapes() => new()
    {
        "loop", "next-out-of-range", "address-in-hole", "address-past-ram", "address-wraps", "zero-length",
        "readable-after-writable", "nested-indirect", "indirect-len-not-16", "indirect-len-zero", "indirect-with-next",
        "indirect-table-out-of-ram", "indirect-loop", "indirect-index-out-of-range", "too-many-segments", "indirect-too-large",
    };

    [Theory]
    [MemberData(nameof(MalformedShapes))]
    public void MalformedChainIsReturnedWithZeroBytesAndCounted(string shape)
    {
        var (q, d) = Setup();
        var buf = d.Alloc(64);
        var table = d.Alloc(16 * 32);
        switch (shape)
        {
            case "loop":
                d.WriteDescriptor(0, buf, 8, DescriptorFlags.Next, 1);
                d.WriteDescriptor(1, buf, 8, DescriptorFlags.Next, 0);
                break;
            case "next-out-of-range":
                d.WriteDescriptor(0, buf, 8, DescriptorFlags.Next, 16);
                break;
            case "address-in-hole":
                d.WriteDescriptor(0, 0x10_0000, 8, DescriptorFlags.Write, 0);
                break;
            case "address-past-ram":
                d.WriteDescriptor(0, 0x20_FFF0, 0x20, DescriptorFlags.Write, 0);
                break;
            case "address-wraps":
                d.WriteDescriptor(0, ulong.MaxValue - 3, 8, DescriptorFlags.Write, 0);
                break;
            case "zero-length":
                d.WriteDescriptor(0, buf, 0, DescriptorFlags.Write, 0);
                break;
            case "readable-after-writable":
                d.WriteDescriptor(0, buf, 8, DescriptorFlags.Write | DescriptorFlags.Next, 1);
                d.WriteDescriptor(1, buf, 8, DescriptorFlags.None, 0);
                break;
            case "nested-indirect":
                MockDriver.WriteDescriptor(_mem, table, 0, table + 64, 16, DescriptorFlags.Indirect, 0);
                d.WriteDescriptor(0, table, 16, DescriptorFlags.Indirect, 0);
                break;
            case "indirect-len-not-16":
                MockDriver.WriteDescriptor(_mem, table, 0, buf, 8, DescriptorFlags.None, 0);
                d.WriteDescriptor(0, table, 24, DescriptorFlags.Indirect, 0);
                break;
            case "indirect-len-zero":
                d.WriteDescriptor(0, table, 0, DescriptorFlags.Indirect, 0);
                break;
            case "indirect-with-next":
                MockDriver.WriteDescriptor(_mem, table, 0, buf, 8, DescriptorFlags.None, 0);
                d.WriteDescriptor(0, table, 16, DescriptorFlags.Indirect | DescriptorFlags.Next, 1);
                d.WriteDescriptor(1, buf, 8, DescriptorFlags.Write, 0);
                break;
            case "indirect-table-out-of-ram":
                d.WriteDescriptor(0, 0x10_0000 - 16, 32, DescriptorFlags.Indirect, 0);
                break;
            case "indirect-loop":
                MockDriver.WriteDescriptor(_mem, table, 0, buf, 8, DescriptorFlags.Next, 1);
                MockDriver.WriteDescriptor(_mem, table, 1, buf, 8, DescriptorFlags.Next, 0);
                d.WriteDescriptor(0, table, 32, DescriptorFlags.Indirect, 0);
                break;
            case "indirect-index-out-of-range":
                MockDriver.WriteDescriptor(_mem, table, 0, buf, 8, DescriptorFlags.Next, 2);
                d.WriteDescriptor(0, table, 32, DescriptorFlags.Indirect, 0);
                break;
            case "too-many-segments":
                for (var i = 0; i < 16; i++)
                {
                    d.WriteDescriptor(i, buf, 1, i < 15 ? DescriptorFlags.Next : 0, (ushort)(i + 1));
                }
                break;   // 16 descriptors, but the device passes a 15-segment span below
            case "indirect-too-large":
                d.WriteDescriptor(0, table, 16 * 32, DescriptorFlags.Indirect, 0);
                break;
        }
        d.Publish(0);

        var span = shape == "too-many-segments" ? _segs.AsSpan(0, 15) : _segs;
        Assert.Equal(PopResult.Empty, q.TryPop(span, out _));
        Assert.Equal(1, q.MalformedChains);
        Assert.Equal([(0u, 0u)], d.TakeUsed());
        Assert.Equal(1, _events.Interrupts);
        Assert.Equal(0, _events.NeedsReset);
        Assert.True(q.IsEnabled);
    }

    [Fact]
    public void IndirectIsRefusedUnlessNegotiated()
    {
        var (q, d) = Setup(indirect: false);
        var buf = d.Alloc(8); var table = d.Alloc(16);
        d.Publish(d.AddIndirectChain(table, (buf, 8, true)));
        Assert.Equal(PopResult.Empty, q.TryPop(_segs, out _));
        Assert.Equal(1, q.MalformedChains);
    }

    [Fact]
    public void TotalLengthBeyondFourGiBIsRefused()
    {
        using var big = GuestMemory.Allocate(MemoryLayout.FromRegions([(0, 0x1_4000_0000)]));
        var q = new VirtQueue(big, 0, 16, _events);
        var d = new MockDriver(big, 16);
        d.Attach(q);
        d.Publish(d.AddChain((0x10_0000, 0xC000_0000, true), (0x10_0000, 0x4000_0000, true)));
        Assert.Equal(PopResult.Empty, q.TryPop(_segs, out _));
        Assert.Equal(1, q.MalformedChains);
        // Just below the limit is accepted (no bytes are touched by popping).
        d.Publish(d.AddChain((0x10_0000, 0xC000_0000, true), (0x10_0000, 0x3FFF_FFFF, true)));
        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out var chain));
        Assert.Equal(uint.MaxValue, chain.WritableLength);
    }

    [Fact]
    public void HeadIndexBeyondQueueSizeBreaksTheQueue()
    {
        var (q, d) = Setup();
        d.Publish(16);
        Assert.Equal(PopResult.Broken, q.TryPop(_segs, out _));
        Assert.Equal(1, _events.NeedsReset);
        Assert.False(q.IsEnabled);
        Assert.Empty(d.TakeUsed());
        Assert.False(q.PushUsed(0, 0, q.Generation));
    }

    [Fact]
    public void AvailIndexMovingFurtherThanTheSizeBreaksTheQueue()
    {
        var (q, d) = Setup();
        d.SetAvailIdx(17);
        Assert.Equal(PopResult.Broken, q.TryPop(_segs, out _));
        Assert.Equal(1, _events.NeedsReset);
    }

    [Fact]
    public void IndicesWrapPast65535()
    {
        var (q, d) = Setup(size: 4);
        var buf = d.Alloc(8);
        for (var i = 0; i < 65536 + 10; i++)
        {
            var head = d.AddChain((buf, 8, true));
            d.Publish(head);
            Assert.Equal(PopResult.Chain, q.TryPop(_segs, out var chain));
            Assert.Equal(head, chain.Head);
            q.PushUsed(chain.Head, (uint)i, q.Generation);
            Assert.Equal((ushort)(i + 1), d.UsedIdx);
            Assert.Equal(((uint)head, (uint)i), d.UsedElem((ushort)i));
        }
        Assert.Equal(10, d.UsedIdx);
        Assert.Equal(0, q.MalformedChains);
    }

    [Theory]
    // vring_need_event(event_idx, new, old) = (u16)(new - event_idx - 1) < (u16)(new - old)
    [InlineData(0, 1, 0, true)]
    [InlineData(1, 1, 0, false)]
    [InlineData(5, 10, 0, true)]
    [InlineData(10, 10, 0, false)]
    [InlineData(9, 10, 9, true)]
    [InlineData(0xFFFF, 0, 0xFFFF, true)]     // wraps
    [InlineData(0xFFFE, 1, 0xFFFD, true)]
    [InlineData(3, 1, 0xFFFD, false)]
    public void NeedEventFollowsVirtioRingH(int eventIdx, int newIdx, int oldIdx, bool expected) =>
        Assert.Equal(expected, VirtQueue.NeedEvent((ushort)eventIdx, (ushort)newIdx, (ushort)oldIdx));

    [Fact]
    public void EventIdxSuppressesInterruptsUntilUsedEventIsCrossed()
    {
        var (q, d) = Setup(eventIdx: true);
        var buf = d.Alloc(8);
        d.SetUsedEvent(2);   // interrupt when used.idx passes from 2 to 3
        for (var i = 0; i < 5; i++)
        {
            d.Publish(d.AddChain((buf, 8, true)));
        }
        var fired = new List<bool>();
        while (q.TryPop(_segs, out var c) == PopResult.Chain)
        {
            fired.Add(q.PushUsed(c.Head, 1, q.Generation));
        }
        Assert.Equal([false, false, true, false, false], fired);
        Assert.Equal(1, _events.Interrupts);

        // The available-ring flags word is ignored with EVENT_IDX.
        d.SetAvailFlags(RingFlags.AvailNoInterrupt);
        d.SetUsedEvent(5);
        d.Publish(d.AddChain((buf, 8, true)));
        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out var last));
        Assert.True(q.PushUsed(last.Head, 1, q.Generation));
    }

    [Fact]
    public void EnableNotificationPublishesAvailEventAndSeesLateBuffers()
    {
        var (q, d) = Setup(eventIdx: true);
        var buf = d.Alloc(8);
        d.Publish(d.AddChain((buf, 8, true)));
        d.Publish(d.AddChain((buf, 8, true)));
        q.DisableNotification();
        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out _));
        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out _));
        Assert.False(q.EnableNotification());
        Assert.Equal(2, d.AvailEvent);   // "notify me when you make avail entry 2 available"

        d.Publish(d.AddChain((buf, 8, true)));
        Assert.True(q.EnableNotification());   // arrived after draining: the device must look again
    }

    [Fact]
    public void WithoutEventIdxNoNotifyIsSetWhileDrainingAndNoInterruptIsHonoured()
    {
        var (q, d) = Setup();
        var buf = d.Alloc(8);
        q.DisableNotification();
        Assert.Equal(RingFlags.UsedNoNotify, d.UsedFlags);
        Assert.False(q.EnableNotification());
        Assert.Equal(0, d.UsedFlags);

        d.SetAvailFlags(RingFlags.AvailNoInterrupt);
        d.Publish(d.AddChain((buf, 8, true)));
        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out var c));
        Assert.False(q.PushUsed(c.Head, 1, q.Generation));
        Assert.Equal(0, _events.Interrupts);
        Assert.Equal(1, d.UsedIdx);
    }

    [Fact]
    public void EnableChecksSizeAlignmentAndRam()
    {
        var q = new VirtQueue(_mem, 0, 256, _events);
        Assert.False(q.TrySetSize(0));
        Assert.False(q.TrySetSize(100));
        Assert.False(q.TrySetSize(512));
        Assert.True(q.TrySetSize(128));

        q.SetAddresses(0x1008, 0x3000, 0x4000);   // descriptor table not 16-byte aligned
        Assert.False(q.TryEnable());
        q.SetAddresses(0x1000, 0x3001, 0x4000);
        Assert.False(q.TryEnable());
        q.SetAddresses(0x1000, 0x3000, 0x4002);
        Assert.False(q.TryEnable());
        q.SetAddresses(0x1000, 0x3000, 0x10_0000 - 0x200);   // used ring runs into the hole
        Assert.False(q.TryEnable());
        q.SetAddresses(0x1000, 0x3000, 0x4000);
        Assert.True(q.TryEnable());
        Assert.False(q.TrySetSize(64));   // fixed while enabled
    }

    [Fact]
    public void LegacyPfnUsesTheLegacyLayout()
    {
        // §2.7.2 legacy note: desc at pfn*4096, avail right after, used at the next 4096 boundary.
        Assert.Equal((0x5000UL, 0x6000UL, 0x7000UL), VirtQueue.LegacyLayout(5, 256));
        Assert.Equal((0x5000UL, 0x5100UL, 0x6000UL), VirtQueue.LegacyLayout(5, 16));

        var q = new VirtQueue(_mem, 0, 256, _events);
        Assert.True(q.SetLegacyPfn(5));
        Assert.True(q.IsEnabled);
        Assert.Equal(0x7000UL, q.UsedRingAddress);
        q.EventIdx = true;
        Assert.True(q.SetLegacyPfn(0));
        Assert.False(q.IsEnabled);
        Assert.Equal(0UL, q.DescriptorTableAddress);
        Assert.True(q.EventIdx);   // deactivating a queue does not undo feature negotiation
        Assert.False(q.SetLegacyPfn(0x100));   // 1 MiB: the hole
    }

    [Fact]
    public void CompletionFromBeforeAResetIsDropped()
    {
        var (q, d) = Setup();
        var buf = d.Alloc(8);
        d.Publish(d.AddChain((buf, 8, true)));
        Assert.Equal(PopResult.Chain, q.TryPop(_segs, out var c));
        var generation = q.Generation;
        q.Reset();
        d = new MockDriver(_mem, 16);
        d.Attach(q);
        Assert.False(q.PushUsed(c.Head, 8, generation));
        Assert.Equal(0, d.UsedIdx);
    }
}

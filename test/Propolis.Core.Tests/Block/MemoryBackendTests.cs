using Propolis.Core.Block;

namespace Propolis.Core.Tests.Block;

public sealed class MemoryBackendTests
{
    [Theory]
    [InlineData(MemoryBackend.MemAsyncKind)]
    [InlineData(MemoryBackend.CrucibleMemKind)]
    public void Writes_read_back_and_discard_reads_zero(string kind)
    {
        const int size = 256 * 1024;
        using var rig = new BlockRig(MemoryBackend.Create(kind, size, new BlockBackendOptions { Workers = 3 }));
        rig.Backend.Start();
        Assert.Equal(kind, rig.Backend.Info.Workers == 3 ? rig.Backend.Kind : "");
        Assert.Equal((ulong)size / 512, rig.Backend.Info.SizeInBlocks);

        var data = Patterns.Make(3 * 4096, 21);
        rig.Memory.Write(0x1000, data.AsSpan(0, 4096));
        rig.Memory.Write(BlockRig.HighRam, data.AsSpan(4096, 8192));
        Assert.Equal(BlockResult.Success, rig.Run(r => { r.PrepareWrite(10 * 512); r.TryAddSegment(0x1000, 4096); r.TryAddSegment(BlockRig.HighRam, 8192); }));

        Assert.Equal(BlockResult.Success, rig.Run(r => { r.PrepareRead(10 * 512); r.TryAddSegment(0x8000, 3 * 4096); }));
        var back = new byte[3 * 4096];
        Assert.True(rig.Memory.TryRead(0x8000, back));
        Assert.Equal(data, back);

        // Discard a range that covers whole pages and partial ones at both ends.
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareDiscard(11 * 512, 9000)));
        Assert.Equal(BlockResult.Success, rig.Run(r => { r.PrepareRead(10 * 512); r.TryAddSegment(0x8000, 3 * 4096); }));
        Assert.True(rig.Memory.TryRead(0x8000, back));
        Array.Clear(data, 512, 9000);
        Assert.Equal(data, back);

        Assert.Equal(BlockResult.OutOfRange, rig.Run(r => { r.PrepareRead(size - 512); r.TryAddSegment(0, 1024); }));
        Assert.Equal(BlockResult.IoError, rig.Run(r => { r.PrepareWrite(0); r.TryAddSegment(BlockRig.Hole, 512); }));
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareFlush()));
    }

    [Fact]
    public void Contents_are_padded_to_whole_blocks_and_read_only_is_enforced()
    {
        var contents = Patterns.Make(1000, 4);
        using var rig = new BlockRig(MemoryBackend.FromContents("cloudinit", contents, new BlockBackendOptions { ReadOnly = true }));
        rig.Backend.Start();
        Assert.Equal(2ul, rig.Backend.Info.SizeInBlocks);
        Assert.True(rig.Backend.Info.ReadOnly);
        Assert.Equal(BlockResult.Success, rig.Run(r => { r.PrepareRead(0); r.TryAddSegment(0, 1024); }));
        var back = new byte[1024];
        Assert.True(rig.Memory.TryRead(0, back));
        Assert.Equal(contents, back[..1000]);
        Assert.All(back[1000..], b => Assert.Equal(0, b));
        Assert.Equal(BlockResult.ReadOnly, rig.Run(r => { r.PrepareWrite(0); r.TryAddSegment(0, 512); }));
        Assert.Equal(BlockResult.ReadOnly, rig.Run(r => r.PrepareDiscard(0, 512)));
    }

    [Fact]
    public void Sizes_that_are_not_whole_blocks_are_refused()
    {
        Assert.Throws<BlockBackendException>(() => MemoryBackend.Create(MemoryBackend.MemAsyncKind, 1000, new BlockBackendOptions()));
        Assert.Throws<BlockBackendException>(() => MemoryBackend.Create(MemoryBackend.MemAsyncKind, 0, new BlockBackendOptions()));
    }
}

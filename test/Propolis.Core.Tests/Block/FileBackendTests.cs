using Propolis.Core.Block;
using Sys = Propolis.Core.Interop.Interop.Sys;

namespace Propolis.Core.Tests.Block;

public sealed class FileBackendTests : IDisposable
{
    private const int DiskSize = 1 << 20;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("propolis-block-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string MakeDisk(byte[]? contents = null, int size = DiskSize)
    {
        var path = Path.Combine(_dir.FullName, $"disk{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, contents ?? Patterns.Make(size, 1));
        return path;
    }

    private static BlockRig Rig(string path, BlockBackendOptions? options = null, int queueDepth = 64)
    {
        var backend = FileBackend.Open(path, options ?? new BlockBackendOptions { Workers = 2 });
        var rig = new BlockRig(backend, queueDepth);
        backend.Start();
        return rig;
    }

    [Fact]
    public void Info_reports_whole_blocks_of_the_file()
    {
        var path = MakeDisk(size: DiskSize + 300);
        using var rig = Rig(path);
        Assert.Equal(512u, rig.Backend.Info.BlockSize);
        Assert.Equal((ulong)DiskSize / 512, rig.Backend.Info.SizeInBlocks);
        Assert.False(rig.Backend.Info.ReadOnly);
        Assert.Equal(2, rig.Backend.Info.Workers);
        Assert.Equal("file", rig.Backend.Kind);
    }

    [Fact]
    public void Scattered_multi_segment_writes_and_reads_are_byte_exact()
    {
        var original = Patterns.Make(DiskSize, 7);
        var path = MakeDisk(original);
        using var rig = Rig(path);

        // Three guest buffers in both RAM regions, odd lengths and addresses.
        var pieces = new (ulong Gpa, int Length)[] { (0x1234, 1000), (BlockRig.HighRam + 0x777, 2584), (0x8000, 512) };
        var data = Patterns.Make(4096, 8);
        var at = 0;
        foreach (var (gpa, length) in pieces)
        {
            rig.Memory.Write(gpa, data.AsSpan(at, length));
            at += length;
        }
        foreach (var offset in new ulong[] { 0, 512 * 37, DiskSize - 4096 })
        {
            Assert.Equal(BlockResult.Success, rig.Run(r =>
            {
                r.PrepareWrite(offset);
                foreach (var (gpa, length) in pieces)
                {
                    Assert.True(r.TryAddSegment(gpa, (uint)length));
                }
                Assert.Equal(4096ul, r.Length);
            }));
            data.CopyTo(original, (int)offset);
        }
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareFlush()));
        Assert.Equal(original, File.ReadAllBytes(path));

        // Read a different range back into differently shaped buffers.
        const ulong readOffset = 512 * 36;
        var readPieces = new (ulong Gpa, int Length)[] { (BlockRig.HighRam, 512), (0x100, 3), (0x4000, 8192 - 515) };
        Assert.Equal(BlockResult.Success, rig.Run(r =>
        {
            r.PrepareRead(readOffset);
            foreach (var (gpa, length) in readPieces)
            {
                Assert.True(r.TryAddSegment(gpa, (uint)length));
            }
        }));
        var got = new List<byte>();
        foreach (var (gpa, length) in readPieces)
        {
            var buffer = new byte[length];
            Assert.True(rig.Memory.TryRead(gpa, buffer));
            got.AddRange(buffer);
        }
        Assert.Equal(original.AsSpan((int)readOffset, 8192).ToArray(), got.ToArray());
    }

    [Fact]
    public void Many_segments_beyond_one_iovec_array_are_transferred()
    {
        var original = Patterns.Make(DiskSize, 3);
        var path = MakeDisk(original);
        var backend = FileBackend.Open(path, new BlockBackendOptions());
        using var rig = new BlockRig(backend, queueDepth: 2, maxSegments: 3000);
        backend.Start();
        // 3000 two-byte segments: preadv takes at most IOV_MAX (1024) per call.
        Assert.Equal(BlockResult.Success, rig.Run(r =>
        {
            r.PrepareRead(1000);
            for (var i = 0; i < 3000; i++)
            {
                Assert.True(r.TryAddSegment((ulong)(i * 4), 2));
            }
        }));
        for (var i = 0; i < 3000; i++)
        {
            Assert.True(rig.Memory.TryReadUInt16((ulong)(i * 4), out var value));
            Assert.Equal(BitConverter.ToUInt16(original, 1000 + i * 2), value);
        }
    }

    [Fact]
    public void Discard_punches_a_hole()
    {
        var path = MakeDisk(Patterns.Make(DiskSize, 5));
        using var rig = Rig(path);
        var before = AllocatedBlocks(path);
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareDiscard(256 * 1024, 512 * 1024)));

        var contents = File.ReadAllBytes(path);
        Assert.Equal(DiskSize, contents.Length);
        Assert.All(contents.AsSpan(256 * 1024, 512 * 1024).ToArray(), b => Assert.Equal(0, b));
        Assert.NotEqual(0, contents[256 * 1024 - 1] | contents[256 * 1024 - 2] | contents[256 * 1024 - 3]);
        Assert.True(AllocatedBlocks(path) < before, $"st_blocks {AllocatedBlocks(path)} did not shrink from {before}");
    }

    [Fact]
    public void WriteZeroes_zeroes_exactly_the_range()
    {
        var original = Patterns.Make(DiskSize, 9);
        var path = MakeDisk(original);
        using var rig = Rig(path);
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareWriteZeroes(1536, 5000)));
        Array.Clear(original, 1536, 5000);
        Assert.Equal(original, File.ReadAllBytes(path));
    }

    [Fact]
    public void WriteZeroes_by_writing_zeroes_when_the_file_system_cannot_zero_a_range()
    {
        var original = Patterns.Make(DiskSize, 10);
        var path = MakeDisk(original);
        var backend = FileBackend.Open(path, new BlockBackendOptions());
        backend.ZeroRangeUnsupported = true;
        using var rig = new BlockRig(backend);
        backend.Start();
        // More than one 64 KiB chunk of zeroes, unaligned at both ends.
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareWriteZeroes(1000, 200_000)));
        Array.Clear(original, 1000, 200_000);
        Assert.Equal(original, File.ReadAllBytes(path));
    }

    [Fact]
    public void Read_only_backend_refuses_writes_and_keeps_the_file()
    {
        var original = Patterns.Make(DiskSize, 11);
        var path = MakeDisk(original);
        using var rig = Rig(path, new BlockBackendOptions { ReadOnly = true });
        Assert.True(rig.Backend.Info.ReadOnly);
        Assert.False(rig.Backend.Info.SupportsDiscard);
        Assert.False(rig.Backend.Info.SupportsWriteZeroes);
        Assert.Equal(BlockResult.ReadOnly, rig.Run(r => { r.PrepareWrite(0); r.TryAddSegment(0, 512); }));
        Assert.Equal(BlockResult.ReadOnly, rig.Run(r => r.PrepareDiscard(0, 4096)));
        Assert.Equal(BlockResult.ReadOnly, rig.Run(r => r.PrepareWriteZeroes(0, 4096)));
        Assert.Equal(BlockResult.Success, rig.Run(r => { r.PrepareRead(512); r.TryAddSegment(0, 512); }));
        Assert.Equal(BlockResult.Success, rig.Run(r => r.PrepareFlush()));
        Assert.Equal(original, File.ReadAllBytes(path));
        var first = new byte[512];
        Assert.True(rig.Memory.TryRead(0, first));
        Assert.Equal(original.AsSpan(512, 512).ToArray(), first);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void A_file_without_write_permission_opens_read_only_for_an_unprivileged_user()
    {
        var path = MakeDisk();
        File.SetUnixFileMode(path, UnixFileMode.UserRead);
        using var backend = FileBackend.Open(path, new BlockBackendOptions());
        // Root (CAP_DAC_OVERRIDE) may open any file read-write; everyone else gets read-only.
        Assert.Equal(Environment.UserName != "root", backend.Info.ReadOnly);
    }

    [Theory]
    [InlineData(DiskSize - 512, 1024u)]   // runs past the end
    [InlineData(DiskSize, 512u)]          // starts at the end
    [InlineData(ulong.MaxValue - 511, 512u)] // offset + length overflows
    public void Ranges_past_the_end_are_out_of_range(ulong offset, uint length)
    {
        var original = Patterns.Make(DiskSize, 13);
        var path = MakeDisk(original);
        using var rig = Rig(path);
        Assert.Equal(BlockResult.OutOfRange, rig.Run(r => { r.PrepareRead(offset); r.TryAddSegment(0, length); }));
        Assert.Equal(BlockResult.OutOfRange, rig.Run(r => { r.PrepareWrite(offset); r.TryAddSegment(0, length); }));
        Assert.Equal(BlockResult.OutOfRange, rig.Run(r => r.PrepareDiscard(offset, length)));
        Assert.Equal(BlockResult.OutOfRange, rig.Run(r => r.PrepareWriteZeroes(offset, length)));
        Assert.Equal(original, File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData(BlockRig.Hole, 512u)]              // in the hole between the RAM regions
    [InlineData(BlockRig.Hole - 256, 512u)]        // runs from RAM into the hole
    [InlineData(BlockRig.HighRam + 0x1_0000, 512u)] // past the end of RAM
    [InlineData(ulong.MaxValue - 100, 512u)]       // address + length overflows
    public void A_segment_outside_guest_RAM_fails_the_request_with_IoError(ulong gpa, uint length)
    {
        var original = Patterns.Make(DiskSize, 15);
        var path = MakeDisk(original);
        using var rig = Rig(path);
        Assert.Equal(BlockResult.IoError, rig.Run(r => { r.PrepareRead(0); r.TryAddSegment(0, 512); r.TryAddSegment(gpa, length); }));
        Assert.Equal(BlockResult.IoError, rig.Run(r => { r.PrepareWrite(0); r.TryAddSegment(gpa, length); }));
        Assert.Equal(original, File.ReadAllBytes(path));
        // The backend still works afterwards.
        Assert.Equal(BlockResult.Success, rig.Run(r => { r.PrepareRead(0); r.TryAddSegment(0, 512); }));
    }

    [Fact]
    public void Open_errors_say_what_is_wrong()
    {
        var missing = Path.Combine(_dir.FullName, "absent.img");
        var e = Assert.Throws<BlockBackendException>(() => FileBackend.Open(missing, new BlockBackendOptions()));
        Assert.Contains(missing, e.Message);
        Assert.Contains("No such file", e.Message);

        var tiny = MakeDisk(new byte[100]);
        e = Assert.Throws<BlockBackendException>(() => FileBackend.Open(tiny, new BlockBackendOptions()));
        Assert.Contains("smaller than one 512-byte block", e.Message);

        e = Assert.Throws<BlockBackendException>(() => FileBackend.Open(_dir.FullName, new BlockBackendOptions { ReadOnly = true }));
        Assert.Contains("neither a regular file nor a block device", e.Message);

        Assert.Throws<ArgumentOutOfRangeException>(() => FileBackend.Open(tiny, new BlockBackendOptions { Workers = 33 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => FileBackend.Open(tiny, new BlockBackendOptions { BlockSize = 1000 }));
    }

    [Fact]
    public void Pause_returns_only_when_every_submitted_request_has_completed()
    {
        var path = MakeDisk();
        using var rig = Rig(path, new BlockBackendOptions { Workers = 4 }, queueDepth: 256);
        for (var i = 0; i < 200; i++)
        {
            var offset = (ulong)(i % 64) * 4096;
            rig.SubmitOne(r => { if (offset % 8192 == 0) { r.PrepareWrite(offset); } else { r.PrepareRead(offset); } r.TryAddSegment((ulong)(i % 16) * 4096, 4096); });
        }
        rig.Backend.Pause();
        Assert.Equal(200, rig.Handler.Completed);
        Assert.Equal(0, rig.Attachment.Outstanding);

        // While paused, a new request is held, not run.
        var held = rig.SubmitOne(r => { r.PrepareRead(0); r.TryAddSegment(0, 512); });
        Assert.Equal(1, ((BlockBackend)rig.Backend).InFlight);
        Assert.Equal(200, rig.Handler.Completed);
        rig.Backend.Resume();
        rig.Handler.WaitFor(201);
        Assert.Equal(BlockResult.Success, rig.Handler.ResultOf(held));
        for (ulong tag = 0; tag < 200; tag++)
        {
            Assert.Equal(BlockResult.Success, rig.Handler.ResultOf(tag));
        }
    }

    [Fact]
    public void Completions_arrive_on_worker_threads_and_stop_fails_later_submissions()
    {
        var path = MakeDisk();
        using var rig = Rig(path);
        var tag = rig.SubmitOne(r => r.PrepareFlush());
        rig.Handler.WaitFor(1);
        Assert.NotEqual(Environment.CurrentManagedThreadId, rig.Handler.ThreadOf(tag));
        rig.Backend.Stop();
        Assert.Equal(BlockResult.IoError, rig.Run(r => { r.PrepareRead(0); r.TryAddSegment(0, 512); }));
        rig.Backend.Stop();
    }

    private static long AllocatedBlocks(string path)
    {
        using var handle = File.OpenHandle(path);
        using var fd = new Propolis.Core.Interop.SafeFdHandle((int)handle.DangerousGetHandle(), ownsHandle: false);
        Assert.Equal(0, Sys.Fstat(fd, out var st));
        return st.Blocks;
    }
}

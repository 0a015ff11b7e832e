using System.Buffers;
using Microsoft.Win32.SafeHandles;

using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Regions;

/// <summary><c>ExtentMeta</c>: an extent's generation and flush numbers and dirty flag.</summary>
public readonly record struct ExtentMeta(uint ExtVersion, ulong GenNumber, ulong FlushNumber, bool Dirty);

/// <summary>
/// One extent of a region in the raw file format (crucible downstairs/src/extent_inner_raw.rs,
/// <c>RawInner</c>; layout in <see cref="RawLayout"/>).
///
/// <para>Crash consistency rests on two context slots per block. A write first marks the extent dirty
/// on disk (and fsyncs, so that no later write can overtake it), then writes each block's new context
/// into the block's <em>inactive</em> slot, then the data; only then does the active slot flip, in
/// memory. So at every instant one slot of every block describes the data on disk. A flush writes the
/// active-slot bitmap and metadata (clean, new flush and generation numbers) in one write and fsyncs. An
/// extent opened dirty has no trustworthy bitmap, so <see cref="Open"/> picks each block's slot by
/// comparing the slots' <c>on_disk_hash</c> with the XXH64 of the block as it is on disk.</para>
///
/// <para>Not thread-safe: one caller at a time, as the downstairs serializes work per extent.</para>
/// </summary>
public sealed class Extent : IDisposable
{
    /// <summary>Extra context-slot syscalls per read or write above which a flush defragments.</summary>
    private const ulong DefragmentThreshold = 3;

    /// <summary>How much block data open-time recovery and validation read at a time.</summary>
    private const int ScanChunkBytes = 128 * 1024;

    private readonly SafeFileHandle _file;
    private readonly RawLayout _layout;
    private readonly string _path;

    /// <summary>Active context slot per block: clear is A, set is B.</summary>
    private readonly BlockBitArray _activeContext;

    /// <summary>Blocks written since the last fsync; writing one again needs a sync first (crucible#1788).</summary>
    private readonly BlockBitArray _blockDirty;

    private bool _dirty;
    private ulong _genNumber;
    private ulong _flushNumber;
    private ulong _extraSyscallCount;
    private ulong _extraSyscallDenominator;
    private ulong _bonusSyncCount;
    private ulong _defragCount;
    private ulong _lastFlush;

    private Extent(uint number, bool readOnly, string path, SafeFileHandle file, RawLayout layout)
    {
        Number = number;
        ReadOnly = readOnly;
        _path = path;
        _file = file;
        _layout = layout;
        _activeContext = new BlockBitArray(layout.BlockCount);
        _blockDirty = new BlockBitArray(layout.BlockCount);
    }

    public uint Number { get; }

    public bool ReadOnly { get; }

    public uint BlockSize => _layout.BlockSize;

    public ulong BlockCount => _layout.BlockCount;

    public RawLayout Layout => _layout;

    /// <summary>Whether writes were made since the last flush (the on-disk dirty flag).</summary>
    public bool Dirty => _dirty;

    public ulong GenNumber => _genNumber;

    public ulong FlushNumber => _flushNumber;

    /// <summary>Syncs inserted because a block was rewritten before a flush (kept in the metadata).</summary>
    public ulong BonusSyncCount => _bonusSyncCount;

    /// <summary>Context-slot defragmentations done (kept in the metadata).</summary>
    public ulong DefragCount => _defragCount;

    public ExtentMeta MetaInfo => new(OnDiskMeta.ExtentMetaRaw, _genNumber, _flushNumber, _dirty);

    /// <summary>Which context slot currently describes <paramref name="block"/>.</summary>
    public ContextSlot ActiveSlot(ulong block) => _activeContext[block] ? ContextSlot.B : ContextSlot.A;

    /// <summary>
    /// <c>RawInner::create</c>: a new, clean extent file of zeros with generation and flush number 0.
    /// Fails if the file exists.
    /// </summary>
    public static Extent Create(string dir, RegionDefinition def, uint number)
    {
        string path = RegionPaths.ExtentPath(dir, number);
        if (File.Exists(path))
        {
            throw new RegionException(RegionError.IoError, $"Extent file already exists {path}");
        }
        RemoveCopyCleanupDirs(dir, number);
        var layout = new RawLayout(def.ExtentSize.Value, def.ExtentSize.BlockSizeInBytes);
        Directory.CreateDirectory(RegionPaths.ExtentDir(dir, number));
        SafeFileHandle file = FileIo.CreateNew(path);
        var extent = new Extent(number, readOnly: false, path, file, layout);
        try
        {
            // All zeros are right for everything but the metadata's extent version.
            FileIo.SetLength(file, layout.FileSize, $"extent {number}: sizing {path}");
            extent.SetFlushNumber(0, 0);
            FileIo.FSync(file, $"extent {number}: initial sync");
            return extent;
        }
        catch
        {
            extent.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <c>Extent::open</c> / <c>RawInner::open</c>: opens an existing extent file, checks its size and
    /// version, and — if it was left dirty — recovers each block's active context slot from the data.
    /// </summary>
    public static Extent Open(string dir, RegionDefinition def, uint number, bool readOnly)
    {
        string path = RegionPaths.ExtentPath(dir, number);
        // The real open removes stale repair directories even when read-only; we leave them to the
        // writable open, so that a read-only dump never deletes anything.
        if (!readOnly)
        {
            RemoveCopyCleanupDirs(dir, number);
        }
        if (!readOnly && Directory.Exists(RegionPaths.ReplaceDir(dir, number)))
        {
            // An interrupted repair had downloaded all its files: finish moving them into
            // place (a read-only open, like the real one, leaves that to a read-write open).
            ExtentReplacement.MoveReplacementExtent(dir, number);
        }
        if (File.Exists(path + ".db"))
        {
            throw new RegionException(RegionError.IoError,
                $"extent {number}: {path}.db is a SQLite-era extent; only raw extents are supported");
        }

        var layout = new RawLayout(def.ExtentSize.Value, def.ExtentSize.BlockSizeInBytes);
        SafeFileHandle file = FileIo.OpenExisting(path, readOnly);
        var extent = new Extent(number, readOnly, path, file, layout);
        try
        {
            extent.LoadFromDisk();
            return extent;
        }
        catch
        {
            extent.Dispose();
            throw;
        }
    }

    private void LoadFromDisk()
    {
        ulong size = FileIo.Length(_file, $"extent {Number}: stat of {_path}");
        if (size != _layout.FileSize)
        {
            throw new RegionException(RegionError.IoError,
                $"extent {Number}: file size {size} does not match expected {_layout.FileSize}");
        }
        if (!ReadOnly)
        {
            // Be sure the file on disk is what we are about to read.
            Sync("initial sync");
        }

        OnDiskMeta meta = ReadMetadata();
        if (meta.ExtVersion != OnDiskMeta.ExtentMetaRaw)
        {
            throw new RegionException(RegionError.IoError,
                $"raw extent {Number} (file {RegionPaths.ExtentFileName(Number)}) has unknown tag {meta.ExtVersion}");
        }
        _dirty = meta.Dirty;
        _genNumber = meta.GenNumber;
        _flushNumber = meta.FlushNumber;
        _lastFlush = meta.FlushNumber;
        _bonusSyncCount = meta.BonusSyncCount;
        _defragCount = meta.DefragCount;

        if (!meta.Dirty)
        {
            // Clean: the bitmap written by the last flush is valid.
            byte[] bitmap = new byte[_layout.ActiveContextSize];
            PRead(bitmap, _layout.ActiveContextOffset, "reading active contexts");
            _activeContext.ReadBitmap(bitmap);
        }
        else
        {
            RecoverActiveContexts();
        }
    }

    /// <summary>
    /// The dirty-open path of <c>RawInner::open</c>: for each block, the slot whose <c>on_disk_hash</c> is
    /// the hash of the data on disk; failing that an empty slot; failing that the extent is corrupt.
    /// </summary>
    private void RecoverActiveContexts()
    {
        int chunkBlocks = (int)Math.Min(_layout.BlockCount, (ulong)Math.Max(1, ScanChunkBytes / (int)BlockSize));
        byte[] data = ArrayPool<byte>.Shared.Rent(chunkBlocks * (int)BlockSize);
        byte[] slotsA = ArrayPool<byte>.Shared.Rent(chunkBlocks * ContextSlotFormat.SlotSize);
        byte[] slotsB = ArrayPool<byte>.Shared.Rent(chunkBlocks * ContextSlotFormat.SlotSize);
        try
        {
            for (ulong start = 0; start < _layout.BlockCount; start += (ulong)chunkBlocks)
            {
                int n = (int)Math.Min((ulong)chunkBlocks, _layout.BlockCount - start);
                Span<byte> a = slotsA.AsSpan(0, n * ContextSlotFormat.SlotSize);
                Span<byte> b = slotsB.AsSpan(0, n * ContextSlotFormat.SlotSize);
                Span<byte> d = data.AsSpan(0, n * (int)BlockSize);
                PRead(a, _layout.ContextSlotOffset(start, ContextSlot.A), "reading context slots");
                PRead(b, _layout.ContextSlotOffset(start, ContextSlot.B), "reading context slots");
                PRead(d, start * BlockSize, "reading block data");
                for (int i = 0; i < n; i++)
                {
                    OnDiskBlockContext? ctxA = ContextSlotFormat.Decode(a.Slice(i * ContextSlotFormat.SlotSize));
                    OnDiskBlockContext? ctxB = ContextSlotFormat.Decode(b.Slice(i * ContextSlotFormat.SlotSize));
                    ContextSlot slot;
                    if (ctxA is null && ctxB is null)
                    {
                        // Both empty: the block was never written.
                        slot = ContextSlot.A;
                    }
                    else
                    {
                        ulong hash = IntegrityHash.Compute(d.Slice(i * (int)BlockSize, (int)BlockSize));
                        slot = ChooseSlot(ctxA, ctxB, hash, start + (ulong)i);
                    }
                    _activeContext[start + (ulong)i] = slot == ContextSlot.B;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
            ArrayPool<byte>.Shared.Return(slotsA);
            ArrayPool<byte>.Shared.Return(slotsB);
        }
    }

    private ContextSlot ChooseSlot(OnDiskBlockContext? a, OnDiskBlockContext? b, ulong hash, ulong block)
    {
        ContextSlot? matching = null;
        ContextSlot? empty = null;
        if (a is { } ca)
        {
            if (ca.OnDiskHash == hash)
            {
                matching = ContextSlot.A;
            }
        }
        else
        {
            empty = ContextSlot.A;
        }
        if (b is { } cb)
        {
            if (cb.OnDiskHash == hash)
            {
                matching = ContextSlot.B;
            }
        }
        else
        {
            empty ??= ContextSlot.B;
        }
        return matching ?? empty ?? throw new RegionException(RegionError.MissingContextSlot,
            $"missing context slot for block {block} in extent {Number} ({Number:X3})");
    }

    /// <summary><c>recompute_slot_from_file</c>: re-derives one block's active slot after a failed write.</summary>
    private void RecomputeSlotFromFile(ulong block)
    {
        byte[] buf = ArrayPool<byte>.Shared.Rent((int)BlockSize + 2 * ContextSlotFormat.SlotSize);
        try
        {
            Span<byte> data = buf.AsSpan(0, (int)BlockSize);
            Span<byte> a = buf.AsSpan((int)BlockSize, ContextSlotFormat.SlotSize);
            Span<byte> b = buf.AsSpan((int)BlockSize + ContextSlotFormat.SlotSize, ContextSlotFormat.SlotSize);
            PRead(data, block * BlockSize, "reading block data");
            PRead(a, _layout.ContextSlotOffset(block, ContextSlot.A), "reading context slots");
            PRead(b, _layout.ContextSlotOffset(block, ContextSlot.B), "reading context slots");
            ContextSlot slot = ChooseSlot(ContextSlotFormat.Decode(a), ContextSlotFormat.Decode(b),
                IntegrityHash.Compute(data), block);
            _activeContext[block] = slot == ContextSlot.B;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>
    /// <c>check_input</c>: the I/O must be whole blocks and fit in the extent. Returns the block count.
    /// </summary>
    private int CheckInput(ulong offset, int dataLength)
    {
        if (dataLength % BlockSize != 0)
        {
            throw new RegionException(RegionError.DataLenUnaligned,
                $"extent {Number}: {dataLength} bytes is not a multiple of the {BlockSize}-byte block size");
        }
        ulong blocks = (ulong)dataLength / BlockSize;
        if (offset > _layout.BlockCount || blocks > _layout.BlockCount - offset)
        {
            throw new RegionException(RegionError.OffsetInvalid,
                $"extent {Number}: blocks {offset}+{blocks} do not fit in {_layout.BlockCount} blocks");
        }
        return (int)blocks;
    }

    /// <summary>
    /// Reads <c>data.Length / BlockSize</c> blocks from <paramref name="offset"/> (a block number within
    /// this extent) into <paramref name="data"/>, and each block's context (null for a block never
    /// written) into <paramref name="contexts"/>.
    /// </summary>
    public void Read(ulong offset, Span<byte> data, Span<BlockContext?> contexts)
    {
        int count = CheckInput(offset, data.Length);
        if (contexts.Length != count)
        {
            throw new RegionException(RegionError.InvalidNumberOfBlocks,
                $"extent {Number}: {count} blocks but room for {contexts.Length} contexts");
        }
        OnDiskBlockContext?[] slots = ArrayPool<OnDiskBlockContext?>.Shared.Rent(Math.Max(count, 1));
        try
        {
            ReadActiveContexts(offset, slots.AsSpan(0, count));
            for (int i = 0; i < count; i++)
            {
                contexts[i] = slots[i]?.BlockContext;
            }
        }
        finally
        {
            ArrayPool<OnDiskBlockContext?>.Shared.Return(slots);
        }
        PRead(data, offset * BlockSize, "read failed");
    }

    /// <summary>
    /// The active context slot of each block from <paramref name="offset"/>, including the on-disk hash
    /// (<c>get_block_contexts</c>).
    /// </summary>
    public void ReadActiveContexts(ulong offset, Span<OnDiskBlockContext?> destination)
    {
        CheckInput(offset, checked(destination.Length * (int)BlockSize));
        ulong reads = 0;
        int i = 0;
        while (i < destination.Length)
        {
            // One read per run of blocks sharing an active slot.
            bool slotB = _activeContext[offset + (ulong)i];
            int run = 1;
            while (i + run < destination.Length && _activeContext[offset + (ulong)(i + run)] == slotB)
            {
                run++;
            }
            ReadSlots(offset + (ulong)i, slotB ? ContextSlot.B : ContextSlot.A, destination.Slice(i, run));
            reads++;
            i += run;
        }
        if (reads > 0)
        {
            _extraSyscallCount += reads - 1;
            _extraSyscallDenominator++;
        }
    }

    private void ReadSlots(ulong block, ContextSlot slot, Span<OnDiskBlockContext?> destination)
    {
        int bytes = destination.Length * ContextSlotFormat.SlotSize;
        byte[] buf = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            PRead(buf.AsSpan(0, bytes), _layout.ContextSlotOffset(block, slot), "reading context slots");
            for (int j = 0; j < destination.Length; j++)
            {
                destination[j] = ContextSlotFormat.Decode(buf.AsSpan(j * ContextSlotFormat.SlotSize));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>
    /// Writes <c>data.Length / BlockSize</c> blocks at <paramref name="offset"/> with their contexts
    /// (<c>RawInner::write</c>). With <paramref name="onlyWriteUnwritten"/>, blocks that already have a
    /// context are left alone. The caller has checked each context's hash against its data
    /// (<see cref="Region.Write(ReadOnlySpan{ExtentWrite}, bool)"/> does).
    /// </summary>
    public void Write(ulong offset, ReadOnlySpan<byte> data, ReadOnlySpan<BlockContext> contexts, bool onlyWriteUnwritten)
    {
        if (ReadOnly)
        {
            throw new RegionException(RegionError.ModifyingReadOnlyRegion, $"extent {Number} is read-only");
        }
        int count = CheckInput(offset, data.Length);
        if (contexts.Length != count)
        {
            throw new RegionException(RegionError.InvalidNumberOfBlocks,
                $"extent {Number}: {count} blocks but {contexts.Length} block contexts");
        }
        if (count == 0)
        {
            return;
        }

        bool[] skip = ArrayPool<bool>.Shared.Rent(count);
        try
        {
            Array.Clear(skip, 0, count);
            if (onlyWriteUnwritten)
            {
                // A block is written if its active slot holds a context.
                OnDiskBlockContext?[] existing = ArrayPool<OnDiskBlockContext?>.Shared.Rent(count);
                int skipped = 0;
                try
                {
                    ReadActiveContexts(offset, existing.AsSpan(0, count));
                    for (int i = 0; i < count; i++)
                    {
                        if (existing[i] is not null)
                        {
                            skip[i] = true;
                            skipped++;
                        }
                    }
                }
                finally
                {
                    ArrayPool<OnDiskBlockContext?>.Shared.Return(existing);
                }
                if (skipped == count)
                {
                    return;
                }
            }

            // 1. the dirty flag, synced, before anything else
            SetDirty();
            // 2. contexts (into each block's inactive slot) before data, so a crash leaves a slot that
            //    matches whatever data is on disk
            SetBlockContexts(offset, data, contexts, skip.AsSpan(0, count));
            // 3. the data
            try
            {
                WriteData(offset, data, skip.AsSpan(0, count));
            }
            catch (RegionException)
            {
                for (int i = 0; i < count; i++)
                {
                    if (!skip[i])
                    {
                        RecomputeSlotFromFile(offset + (ulong)i);
                    }
                }
                throw;
            }
            // 4. the written slots become the active ones
            for (int i = 0; i < count; i++)
            {
                if (!skip[i])
                {
                    _activeContext.Swap(offset + (ulong)i);
                }
            }
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(skip);
        }
    }

    /// <summary><c>set_dirty</c>: the on-disk dirty byte, synced so that no later write overtakes it.</summary>
    private void SetDirty()
    {
        if (_dirty)
        {
            return;
        }
        ReadOnlySpan<byte> one = [1];
        PWrite(one, _layout.MetadataOffset + OnDiskMeta.DirtyOffset, "writing dirty byte failed");
        Sync("sync in set_dirty");
        _dirty = true;
    }

    /// <summary><c>set_block_contexts</c>: writes new contexts into the inactive slots.</summary>
    private void SetBlockContexts(ulong offset, ReadOnlySpan<byte> data, ReadOnlySpan<BlockContext> contexts,
        ReadOnlySpan<bool> skip)
    {
        int count = contexts.Length;
        // Rewriting a block not yet synced needs a sync first: a filesystem may persist the later data
        // together with the earlier context write (ZFS does; crucible#1788).
        bool needsSync = false;
        for (int i = 0; i < count && !needsSync; i++)
        {
            needsSync = !skip[i] && _blockDirty[offset + (ulong)i];
        }
        if (needsSync)
        {
            Sync("bonus sync");
            _blockDirty.Reset();
            _bonusSyncCount++;
        }
        for (int i = 0; i < count; i++)
        {
            if (!skip[i])
            {
                _blockDirty[offset + (ulong)i] = true;
            }
        }

        byte[] buf = ArrayPool<byte>.Shared.Rent(count * ContextSlotFormat.SlotSize);
        try
        {
            int i = 0;
            while (i < count)
            {
                if (skip[i])
                {
                    i++;
                    continue;
                }
                // A contiguous run of written blocks ...
                int runEnd = i;
                while (runEnd < count && !skip[runEnd])
                {
                    runEnd++;
                }
                ulong writes = 0;
                while (i < runEnd)
                {
                    // ... split into groups that share a target (inactive) slot, one pwrite each.
                    bool activeB = _activeContext[offset + (ulong)i];
                    int groupEnd = i;
                    while (groupEnd < runEnd && _activeContext[offset + (ulong)groupEnd] == activeB)
                    {
                        groupEnd++;
                    }
                    Span<byte> slots = buf.AsSpan(0, (groupEnd - i) * ContextSlotFormat.SlotSize);
                    for (int j = i; j < groupEnd; j++)
                    {
                        ReadOnlySpan<byte> block = data.Slice(j * (int)BlockSize, (int)BlockSize);
                        var ctx = new OnDiskBlockContext(contexts[j], IntegrityHash.Compute(block), (ushort)_lastFlush);
                        ContextSlotFormat.Encode(ctx, slots.Slice((j - i) * ContextSlotFormat.SlotSize));
                    }
                    ContextSlot target = activeB ? ContextSlot.A : ContextSlot.B;
                    PWrite(slots, _layout.ContextSlotOffset(offset + (ulong)i, target), "writing context slots failed");
                    writes++;
                    i = groupEnd;
                }
                _extraSyscallCount += writes - 1;
                _extraSyscallDenominator++;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary><c>write_inner</c>: the block data, one pwrite per run of blocks not skipped.</summary>
    private void WriteData(ulong offset, ReadOnlySpan<byte> data, ReadOnlySpan<bool> skip)
    {
        int i = 0;
        while (i < skip.Length)
        {
            if (skip[i])
            {
                i++;
                continue;
            }
            int end = i;
            while (end < skip.Length && !skip[end])
            {
                end++;
            }
            FileIo.WriteAll(_file, data.Slice(i * (int)BlockSize, (end - i) * (int)BlockSize),
                (offset + (ulong)i) * BlockSize, "write failed");
            i = end;
        }
    }

    /// <summary>
    /// <c>Extent::flush</c>: if the extent is dirty, records <paramref name="newFlush"/> and
    /// <paramref name="newGen"/>, the active-slot bitmap and a clear dirty flag in one write, then fsyncs.
    /// Returns false (and does nothing) when the extent is clean.
    /// </summary>
    public bool Flush(ulong newFlush, ulong newGen)
    {
        if (!_dirty)
        {
            return false;
        }
        if (ReadOnly)
        {
            throw new RegionException(RegionError.ModifyingReadOnlyRegion,
                $"read-only extent {Number} has dirty bit set!");
        }
        // pre_flush: one write, so the metadata update is atomic
        SetFlushNumber(newFlush, newGen);
        // flush_inner
        Sync("flush");
        _blockDirty.Reset();
        // post_flush
        ulong extraPerIo = _extraSyscallDenominator == 0 ? 0 : _extraSyscallCount / _extraSyscallDenominator;
        _extraSyscallCount = 0;
        _extraSyscallDenominator = 0;
        if (extraPerIo > DefragmentThreshold)
        {
            Defragment();
        }
        return true;
    }

    /// <summary><c>set_flush_number</c>: bitmap + metadata (clean) in one pwrite.</summary>
    private void SetFlushNumber(ulong newFlush, ulong newGen)
    {
        var meta = new OnDiskMeta(false, newGen, newFlush, OnDiskMeta.ExtentMetaRaw,
            (uint)_bonusSyncCount, (uint)_defragCount);
        int bitmapSize = (int)_layout.ActiveContextSize;
        byte[] buf = ArrayPool<byte>.Shared.Rent(bitmapSize + OnDiskMeta.Size);
        try
        {
            Span<byte> span = buf.AsSpan(0, bitmapSize + OnDiskMeta.Size);
            _activeContext.WriteBitmap(span[..bitmapSize]);
            meta.Encode(span[bitmapSize..]);
            PWrite(span, _layout.ActiveContextOffset, "writing metadata failed");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
        _dirty = false;
        _genNumber = newGen;
        _flushNumber = newFlush;
        _lastFlush = newFlush;
    }

    /// <summary>
    /// <c>defragment</c>: right after a flush, copies the contexts of the less popular slot array into
    /// the more popular one, so that later I/O needs one context read or write per run. Safe because
    /// both slots of a moved block then describe the same, synced data.
    /// </summary>
    private void Defragment()
    {
        ulong bCount = _activeContext.CountSet();
        ulong aCount = _layout.BlockCount - bCount;
        if (aCount == 0 || bCount == 0)
        {
            return;
        }
        bool copyFromB = aCount >= bCount;
        ContextSlot copyFrom = copyFromB ? ContextSlot.B : ContextSlot.A;
        ContextSlot copyTo = copyFromB ? ContextSlot.A : ContextSlot.B;
        ulong min = ulong.MaxValue, max = 0;
        for (ulong block = 0; block < _layout.BlockCount; block++)
        {
            if (_activeContext[block] == copyFromB)
            {
                min = Math.Min(min, block);
                max = Math.Max(max, block);
            }
        }
        int n = checked((int)(max + 1 - min));
        int bytes = n * ContextSlotFormat.SlotSize;
        byte[] source = ArrayPool<byte>.Shared.Rent(bytes);
        byte[] dest = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            PRead(source.AsSpan(0, bytes), _layout.ContextSlotOffset(min, copyFrom), "reading context slots");
            PRead(dest.AsSpan(0, bytes), _layout.ContextSlotOffset(min, copyTo), "reading context slots");
            for (int i = 0; i < n; i++)
            {
                // Every slot of the range is re-encoded, as the real code does: contexts come from the
                // source array where it is active, and all get the current flush id.
                byte[] from = _activeContext[min + (ulong)i] == copyFromB ? source : dest;
                OnDiskBlockContext? ctx = ContextSlotFormat.Decode(from.AsSpan(i * ContextSlotFormat.SlotSize));
                if (ctx is { } c)
                {
                    ctx = c with { FlushId = (ushort)_lastFlush };
                }
                ContextSlotFormat.Encode(ctx, dest.AsSpan(i * ContextSlotFormat.SlotSize, ContextSlotFormat.SlotSize));
            }
            try
            {
                PWrite(dest.AsSpan(0, bytes), _layout.ContextSlotOffset(min, copyTo), "writing context slots failed");
            }
            catch (RegionException)
            {
                for (ulong block = min; block <= max; block++)
                {
                    RecomputeSlotFromFile(block);
                }
                _defragCount++;
                throw;
            }
            for (ulong block = min; block <= max; block++)
            {
                _activeContext[block] = copyTo == ContextSlot.B;
            }
            _defragCount++;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(source);
            ArrayPool<byte>.Shared.Return(dest);
        }
    }

    /// <summary>
    /// <c>RawInner::validate</c>: every block's active slot matches its data, or is empty and the block is
    /// all zeros. Returns null when valid, otherwise the first problem.
    /// </summary>
    public string? Validate()
    {
        int chunkBlocks = (int)Math.Min(_layout.BlockCount, (ulong)Math.Max(1, ScanChunkBytes / (int)BlockSize));
        byte[] data = ArrayPool<byte>.Shared.Rent(chunkBlocks * (int)BlockSize);
        OnDiskBlockContext?[] ctx = ArrayPool<OnDiskBlockContext?>.Shared.Rent(chunkBlocks);
        try
        {
            for (ulong start = 0; start < _layout.BlockCount; start += (ulong)chunkBlocks)
            {
                int n = (int)Math.Min((ulong)chunkBlocks, _layout.BlockCount - start);
                for (int i = 0; i < n; i++)
                {
                    ulong block = start + (ulong)i;
                    ContextSlot slot = ActiveSlot(block);
                    ReadSlots(block, slot, ctx.AsSpan(i, 1));
                }
                PRead(data.AsSpan(0, n * (int)BlockSize), start * BlockSize, "reading block data");
                for (int i = 0; i < n; i++)
                {
                    ReadOnlySpan<byte> block = data.AsSpan(i * (int)BlockSize, (int)BlockSize);
                    if (ctx[i] is { } c)
                    {
                        if (c.OnDiskHash != IntegrityHash.Compute(block))
                        {
                            return $"block {start + (ulong)i} has an active slot with mismatched hash";
                        }
                    }
                    else if (block.ContainsAnyExcept((byte)0))
                    {
                        return $"block {start + (ulong)i} has an empty active slot, but contains non-zero data";
                    }
                }
            }
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
            ArrayPool<OnDiskBlockContext?>.Shared.Return(ctx);
        }
    }

    private OnDiskMeta ReadMetadata()
    {
        Span<byte> buf = stackalloc byte[OnDiskMeta.Size];
        PRead(buf, _layout.MetadataOffset, "reading metadata failed");
        return OnDiskMeta.Decode(buf);
    }

    /// <summary><c>remove_copy_cleanup_dir</c>: drops a stale repair copy or completed directory.</summary>
    private static void RemoveCopyCleanupDirs(string dir, uint number)
    {
        foreach (string d in new[] { RegionPaths.CopyDir(dir, number), RegionPaths.CompletedDir(dir, number) })
        {
            if (Directory.Exists(d))
            {
                Directory.Delete(d, recursive: true);
            }
        }
    }

    /// <summary><c>Extent::close</c>: closes the file, returning the final generation, flush and dirty.</summary>
    public (ulong GenNumber, ulong FlushNumber, bool Dirty) Close()
    {
        var result = (_genNumber, _flushNumber, _dirty);
        Dispose();
        return result;
    }

    private void PRead(Span<byte> buffer, ulong offset, string what) =>
        FileIo.ReadExact(_file, buffer, offset, Number, what);

    private void PWrite(ReadOnlySpan<byte> buffer, ulong offset, string what) =>
        FileIo.WriteAll(_file, buffer, offset, Number, what);

    private void Sync(string what) => FileIo.FSync(_file, Number, what);

    public void Dispose() => _file.Dispose();
}

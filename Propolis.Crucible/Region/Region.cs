using System.Security.Cryptography;

using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Regions;

/// <summary>A write to one extent: blocks from <see cref="Offset"/> with one context per block.</summary>
public readonly record struct ExtentWrite(uint Extent, ulong Offset, ReadOnlyMemory<byte> Data, ReadOnlyMemory<BlockContext> Contexts);

/// <summary>
/// A region on disk (crucible downstairs/src/region.rs <c>Region</c>): <c>region.json</c> and
/// <see cref="RegionDefinition.ExtentCount"/> raw extent files under <see cref="Directory"/>. It tracks
/// which extents may be dirty so a flush visits only those. Not thread-safe.
/// </summary>
public sealed class Region : IDisposable
{
    private Extent?[] _extents = [];
    private readonly SortedSet<uint> _dirtyExtents = new();

    private Region(string dir, RegionDefinition def, bool readOnly)
    {
        Directory = dir;
        Definition = def;
        ReadOnly = readOnly;
    }

    public string Directory { get; }

    public RegionDefinition Definition { get; private set; }

    public bool ReadOnly { get; }

    public uint ExtentCount => Definition.ExtentCount;

    public bool Encrypted => Definition.Encrypted;

    /// <summary>
    /// <c>create_region</c>: validates <paramref name="def"/>, writes <c>region.json</c> (failing if one
    /// exists: delete the old region first), then creates <c>def.ExtentCount</c> extents.
    /// </summary>
    public static Region Create(string dir, RegionDefinition def)
    {
        if (def.ValidateOptions() is { } problem)
        {
            throw new RegionException(RegionError.RegionIncompatible, problem);
        }
        if (def.DatabaseReadVersion != RegionDefinition.DatabaseVersion || def.DatabaseWriteVersion != RegionDefinition.DatabaseVersion)
        {
            throw new RegionException(RegionError.RegionIncompatible,
                $"database versions must be {RegionDefinition.DatabaseVersion}");
        }
        string config = RegionPaths.ConfigPath(dir);
        if (File.Exists(config))
        {
            throw new RegionException(RegionError.IoError, $"Config file already exists {config}");
        }
        System.IO.Directory.CreateDirectory(dir);
        // Region::create writes the definition with no extents; extend() then adds them.
        RegionDefinition empty = def with { ExtentCount = 0 };
        WriteJson(config, empty, clobber: false);
        var region = new Region(dir, empty, readOnly: false);
        try
        {
            region.Extend(def.ExtentCount);
            return region;
        }
        catch
        {
            region.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <c>Region::open</c>: reads <c>region.json</c>, checks its versions, and opens every extent
    /// (recovering those left dirty).
    /// </summary>
    public static Region Open(string dir, bool readOnly)
    {
        string config = RegionPaths.ConfigPath(dir);
        if (!File.Exists(config))
        {
            throw new RegionException(RegionError.RegionIncompatible,
                $"no region in {dir}: {config} does not exist (create one with 'crucible-downstairs create')");
        }
        byte[] json;
        try
        {
            json = File.ReadAllBytes(config);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegionException(RegionError.RegionIncompatible, $"Error opening region config {config}: {e.Message}", e);
        }
        RegionDefinition def = RegionDefinition.FromJson(json);
        if (def.DatabaseReadVersion != RegionDefinition.DatabaseVersion)
        {
            throw new RegionException(RegionError.RegionIncompatible,
                $"Database read version mismatch, expected {RegionDefinition.DatabaseVersion}, got {def.DatabaseReadVersion}");
        }
        if (def.DatabaseWriteVersion != RegionDefinition.DatabaseVersion)
        {
            throw new RegionException(RegionError.RegionIncompatible,
                $"Database write version mismatch, expected {RegionDefinition.DatabaseVersion}, got {def.DatabaseWriteVersion}");
        }
        if (def.ValidateOptions() is { } problem)
        {
            throw new RegionException(RegionError.RegionIncompatible, $"{config}: {problem}");
        }

        var region = new Region(dir, def, readOnly);
        try
        {
            region._extents = new Extent?[def.ExtentCount];
            for (uint eid = 0; eid < def.ExtentCount; eid++)
            {
                Extent extent = Extent.Open(dir, def, eid, readOnly);
                region._extents[eid] = extent;
                if (extent.Dirty)
                {
                    region._dirtyExtents.Add(eid);
                }
            }
            return region;
        }
        catch
        {
            region.Dispose();
            throw;
        }
    }

    /// <summary><c>extend</c>: grows the region to <paramref name="newCount"/> extents (never shrinks).</summary>
    public void Extend(uint newCount)
    {
        if (ReadOnly)
        {
            throw new RegionException(RegionError.ModifyingReadOnlyRegion, "region is read-only");
        }
        if (newCount < Definition.ExtentCount)
        {
            throw new RegionException(RegionError.InvalidExtent,
                $"will not truncate {Definition.ExtentCount} -> {newCount}");
        }
        if (newCount == Definition.ExtentCount)
        {
            return;
        }
        uint first = (uint)_extents.Length;
        Definition = Definition with { ExtentCount = newCount };
        WriteJson(RegionPaths.ConfigPath(Directory), Definition, clobber: true);
        Array.Resize(ref _extents, (int)newCount);
        for (uint eid = first; eid < newCount; eid++)
        {
            _extents[eid] = Extent.Create(Directory, Definition, eid);
        }
    }

    /// <summary>The open extent <paramref name="eid"/>.</summary>
    public Extent GetExtent(uint eid)
    {
        if (eid >= (uint)_extents.Length)
        {
            throw new RegionException(RegionError.InvalidExtent, $"extent {eid} is beyond the region's {_extents.Length} extents");
        }
        return _extents[eid] ?? throw new RegionException(RegionError.InvalidExtent, $"extent {eid} is closed");
    }

    /// <summary><c>meta_info</c>: generation, flush number and dirty flag of every extent.</summary>
    public ExtentMeta[] MetaInfo()
    {
        var result = new ExtentMeta[_extents.Length];
        for (uint eid = 0; eid < result.Length; eid++)
        {
            result[eid] = GetExtent(eid).MetaInfo;
        }
        return result;
    }

    /// <summary>
    /// <c>region_write</c>: checks every context's hash against its block first (nothing is written if
    /// one is wrong: <see cref="RegionError.HashMismatch"/>), then writes each extent's blocks.
    /// </summary>
    public void Write(ReadOnlySpan<ExtentWrite> writes, bool onlyWriteUnwritten)
    {
        if (ReadOnly)
        {
            throw new RegionException(RegionError.ModifyingReadOnlyRegion, "region is read-only");
        }
        foreach (ExtentWrite w in writes)
        {
            ValidateHashes(w);
        }
        foreach (ExtentWrite w in writes)
        {
            Extent extent = GetExtent(w.Extent);
            _dirtyExtents.Add(w.Extent);
            extent.Write(w.Offset, w.Data.Span, w.Contexts.Span, onlyWriteUnwritten);
        }
    }

    /// <summary>A single-extent <see cref="Write(ReadOnlySpan{ExtentWrite}, bool)"/>.</summary>
    public void Write(uint eid, ulong offset, ReadOnlyMemory<byte> data, ReadOnlyMemory<BlockContext> contexts,
        bool onlyWriteUnwritten = false) =>
        Write([new ExtentWrite(eid, offset, data, contexts)], onlyWriteUnwritten);

    private void ValidateHashes(in ExtentWrite w)
    {
        GetExtent(w.Extent);
        int blockSize = (int)Definition.BlockSize;
        ReadOnlySpan<byte> data = w.Data.Span;
        ReadOnlySpan<BlockContext> contexts = w.Contexts.Span;
        if (data.Length % blockSize != 0)
        {
            throw new RegionException(RegionError.DataLenUnaligned,
                $"{data.Length} bytes is not a multiple of the {blockSize}-byte block size");
        }
        if (data.Length / blockSize != contexts.Length)
        {
            throw new RegionException(RegionError.InvalidNumberOfBlocks,
                $"{data.Length / blockSize} blocks but {contexts.Length} block contexts");
        }
        for (int i = 0; i < contexts.Length; i++)
        {
            if (!contexts[i].Matches(data.Slice(i * blockSize, blockSize)))
            {
                throw new RegionException(RegionError.HashMismatch,
                    $"extent {w.Extent} block {w.Offset + (ulong)i}: context hash does not match the data");
            }
        }
    }

    /// <summary><c>region_read</c> for one extent: blocks and their contexts (null: never written).</summary>
    public void Read(uint eid, ulong offset, Span<byte> data, Span<BlockContext?> contexts) =>
        GetExtent(eid).Read(offset, data, contexts);

    /// <summary>
    /// <c>region_flush</c>: flushes every extent written since its last flush (only those numbered
    /// ≤ <paramref name="extentLimit"/> if given) with the new flush and generation numbers.
    /// </summary>
    public void Flush(ulong flushNumber, ulong genNumber, uint? extentLimit = null)
    {
        if (extentLimit is { } limit && limit > Definition.ExtentCount)
        {
            throw new RegionException(RegionError.InvalidExtent, $"extent limit {limit} is beyond {Definition.ExtentCount}");
        }
        uint[] toFlush = extentLimit is { } el
            ? _dirtyExtents.Where(e => e <= el).ToArray()
            : _dirtyExtents.ToArray();
        foreach (uint eid in toFlush)
        {
            GetExtent(eid).Flush(flushNumber, genNumber);
        }
        foreach (uint eid in toFlush)
        {
            _dirtyExtents.Remove(eid);
        }
    }

    /// <summary><c>region_flush_extent</c>: flushes one extent (a no-op if it is clean).</summary>
    public void FlushExtent(uint eid, ulong genNumber, ulong flushNumber)
    {
        GetExtent(eid).Flush(flushNumber, genNumber);
        _dirtyExtents.Remove(eid);
    }

    /// <summary><c>close_extent</c>: closes one extent, returning its generation, flush number and dirty flag.</summary>
    public (ulong GenNumber, ulong FlushNumber, bool Dirty) CloseExtent(uint eid)
    {
        Extent extent = GetExtent(eid);
        _extents[eid] = null;
        return extent.Close();
    }

    /// <summary><c>reopen_extent</c>: reopens a closed extent (recovering it if dirty).</summary>
    public void ReopenExtent(uint eid)
    {
        if (eid >= (uint)_extents.Length)
        {
            throw new RegionException(RegionError.InvalidExtent, $"extent {eid} is beyond the region's {_extents.Length} extents");
        }
        if (_extents[eid] is not null)
        {
            throw new RegionException(RegionError.InvalidExtent, $"extent {eid} is already open");
        }
        Extent extent = Extent.Open(Directory, Definition, eid, ReadOnly);
        _extents[eid] = extent;
        if (extent.Dirty)
        {
            _dirtyExtents.Add(eid);
        }
    }

    /// <summary>
    /// <c>downstairs_import</c>: writes the contents of <paramref name="path"/> from block 0 on, as
    /// unencrypted blocks (the last one zero-padded), extending the region if it is too small. Returns
    /// the number of blocks written. The caller flushes afterwards.
    /// </summary>
    public ulong Import(string path)
    {
        const int chunkSize = 4 * 1024 * 1024; // a whole number of the largest block size
        using FileStream input = File.OpenRead(path);
        ulong extentBytes = Definition.ExtentSize.Value * Definition.BlockSize;
        ulong needed = ((ulong)input.Length + extentBytes - 1) / extentBytes;
        if (needed > Definition.ExtentCount)
        {
            Extend(checked((uint)needed));
        }
        int blockSize = (int)Definition.BlockSize;
        byte[] buffer = new byte[chunkSize];
        var contexts = new BlockContext[chunkSize / blockSize];
        ulong block = 0;
        while (true)
        {
            int total = 0;
            while (total < chunkSize)
            {
                int n = input.Read(buffer, total, chunkSize - total);
                if (n == 0)
                {
                    break;
                }
                total += n;
            }
            if (total == 0)
            {
                break;
            }
            int padded = (total + blockSize - 1) / blockSize * blockSize;
            Array.Clear(buffer, total, padded - total);
            int blocks = padded / blockSize;
            for (int i = 0; i < blocks; i++)
            {
                contexts[i] = BlockContext.ForPlainBlock(buffer.AsSpan(i * blockSize, blockSize));
            }
            // Split by extent, as the upstairs would.
            int done = 0;
            while (done < blocks)
            {
                ulong abs = block + (ulong)done;
                uint eid = (uint)(abs / Definition.ExtentSize.Value);
                ulong offset = abs % Definition.ExtentSize.Value;
                int n = (int)Math.Min((ulong)(blocks - done), Definition.ExtentSize.Value - offset);
                Write(eid, offset, buffer.AsMemory(done * blockSize, n * blockSize), contexts.AsMemory(done, n));
                done += n;
            }
            block += (ulong)blocks;
            if (total < chunkSize)
            {
                break;
            }
        }
        return block;
    }

    /// <summary>
    /// <c>write_json</c>: writes the definition to a temporary file beside <paramref name="path"/>, syncs
    /// it, and renames it into place (refusing to replace an existing file unless
    /// <paramref name="clobber"/>), then syncs the directory.
    /// </summary>
    private static void WriteJson(string path, RegionDefinition def, bool clobber)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string tmp = Path.Combine(dir, ".tmp" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)));
        try
        {
            using (var handle = FileIo.CreateNew(tmp))
            {
                FileIo.WriteAll(handle, def.ToJsonUtf8(), 0, $"writing {tmp}");
                FileIo.FSync(handle, tmp);
            }
            File.Move(tmp, path, overwrite: clobber);
        }
        catch (IOException e)
        {
            File.Delete(tmp);
            throw new RegionException(RegionError.IoError, $"writing {path}: {e.Message}", e);
        }
        FileIo.SyncDirectory(dir);
    }

    public void Dispose()
    {
        foreach (Extent? e in _extents)
        {
            e?.Dispose();
        }
    }
}

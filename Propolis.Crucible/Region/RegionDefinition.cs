using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Propolis.Crucible.Regions;

/// <summary>
/// <c>crucible_common::Block</c>: a count of blocks (<see cref="Value"/>) together with the block size as
/// a power of two (<see cref="Shift"/>: 9 is 512 bytes, 12 is 4096), so that both sides agree on what a
/// block is.
/// </summary>
public readonly record struct Block(ulong Value, uint Shift)
{
    public const uint MinShift = 9;
    public const uint MaxShift = 15;

    public uint BlockSizeInBytes => 1u << (int)Shift;

    public ulong ByteValue => Value * BlockSizeInBytes;
}

/// <summary>
/// <c>crucible_common::RegionDefinition</c>, kept in <c>region.json</c> at the root of the region
/// directory. The JSON is what <c>serde_json::to_vec_pretty</c> writes (two-space indent, fields in
/// declaration order) followed by a newline.
/// </summary>
public sealed record RegionDefinition
{
    /// <summary><c>DATABASE_READ_VERSION</c> and <c>DATABASE_WRITE_VERSION</c>.</summary>
    public const ulong DatabaseVersion = 1;

    /// <summary><c>MIN_BLOCK_SIZE</c>.</summary>
    public const ulong MinBlockSize = 1UL << (int)Block.MinShift;

    /// <summary><c>MAX_EXTENT_FILE_SIZE</c>: 512 MiB of block data per extent.</summary>
    public const ulong MaxExtentFileSize = 1UL << 29;

    /// <summary>The size of each block in bytes; a power of two, at least 512.</summary>
    public required ulong BlockSize { get; init; }

    /// <summary>How many blocks each extent holds.</summary>
    public required Block ExtentSize { get; init; }

    /// <summary>How many whole extents make up the region.</summary>
    public required uint ExtentCount { get; init; }

    public required Guid Uuid { get; init; }

    public bool Encrypted { get; init; }

    public ulong DatabaseReadVersion { get; init; } = DatabaseVersion;

    public ulong DatabaseWriteVersion { get; init; } = DatabaseVersion;

    /// <summary>The region's size in bytes.</summary>
    public ulong TotalSize => BlockSize * ExtentSize.Value * ExtentCount;

    /// <summary>
    /// A definition for a new region of <paramref name="extentCount"/> extents of
    /// <paramref name="extentSize"/> blocks of <paramref name="blockSize"/> bytes, as
    /// <c>create_region</c> builds it; <see cref="ValidateOptions"/> says whether it is allowed.
    /// </summary>
    public static RegionDefinition ForNewRegion(ulong blockSize, ulong extentSize, uint extentCount, Guid uuid,
        bool encrypted) => new()
        {
            BlockSize = blockSize,
            ExtentSize = new Block(extentSize, (uint)ulong.TrailingZeroCount(blockSize)),
            ExtentCount = extentCount,
            Uuid = uuid,
            Encrypted = encrypted,
        };

    /// <summary>
    /// <c>RegionOptions::validate</c>: null if a region with this definition may be created, otherwise
    /// what is wrong with it.
    /// </summary>
    public string? ValidateOptions()
    {
        if (!ulong.IsPow2(BlockSize))
        {
            return $"block size must be a power of two, not {BlockSize}";
        }
        if (BlockSize < MinBlockSize)
        {
            return $"minimum block size is {MinBlockSize} bytes, not {BlockSize}";
        }
        if (ExtentSize.Shift is < Block.MinShift or > Block.MaxShift || ExtentSize.BlockSizeInBytes != BlockSize)
        {
            return $"extent_size shift {ExtentSize.Shift} does not describe block size {BlockSize}"
                + $" (shifts {Block.MinShift} to {Block.MaxShift} are supported)";
        }
        if (ExtentSize.Value < 1)
        {
            return "extent size must be at least 1 block";
        }
        ulong bytes = ExtentSize.Value > MaxExtentFileSize / BlockSize ? ulong.MaxValue : ExtentSize.Value * BlockSize;
        if (bytes > MaxExtentFileSize)
        {
            return $"extent size {ExtentSize.Value} x {BlockSize} bytes = {(bytes == ulong.MaxValue ? "more" : bytes.ToString())}, bigger than {MaxExtentFileSize}";
        }
        return null;
    }

    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        Indented = true,
        IndentSize = 2,
        NewLine = "\n",
    };

    /// <summary>The exact text of region.json for this definition.</summary>
    public string ToJson() => Encoding.UTF8.GetString(ToJsonUtf8());

    /// <summary>The exact bytes of region.json for this definition.</summary>
    public byte[] ToJsonUtf8()
    {
        var buffer = new ArrayBufferWriter<byte>(320);
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("block_size", BlockSize);
            w.WriteStartObject("extent_size");
            w.WriteNumber("value", ExtentSize.Value);
            w.WriteNumber("shift", ExtentSize.Shift);
            w.WriteEndObject();
            w.WriteNumber("extent_count", ExtentCount);
            w.WriteString("uuid", Uuid.ToString("D"));
            w.WriteBoolean("encrypted", Encrypted);
            w.WriteNumber("database_read_version", DatabaseReadVersion);
            w.WriteNumber("database_write_version", DatabaseWriteVersion);
            w.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Parses region.json. Field order does not matter and unknown fields are ignored, as with serde;
    /// a missing field or a value of the wrong type is <see cref="RegionError.RegionIncompatible"/>.
    /// </summary>
    public static RegionDefinition FromJson(ReadOnlySpan<byte> json)
    {
        try
        {
            return Parse(json);
        }
        catch (JsonException e)
        {
            throw Incompatible($"region.json is not valid JSON: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            throw Incompatible($"region.json has a value of the wrong type: {e.Message}");
        }
        catch (FormatException e)
        {
            throw Incompatible($"region.json has a malformed value: {e.Message}");
        }
    }

    private static RegionDefinition Parse(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        ulong? blockSize = null, value = null, readVersion = null, writeVersion = null;
        uint? shift = null, extentCount = null;
        Guid? uuid = null;
        bool? encrypted = null;

        Expect(ref r, JsonTokenType.StartObject, "region.json must hold an object");
        while (Next(ref r) != JsonTokenType.EndObject)
        {
            string name = r.GetString()!;
            Next(ref r);
            switch (name)
            {
                case "block_size": blockSize = r.GetUInt64(); break;
                case "extent_count": extentCount = r.GetUInt32(); break;
                case "uuid": uuid = Guid.Parse(r.GetString()!); break;
                case "encrypted": encrypted = r.GetBoolean(); break;
                case "database_read_version": readVersion = r.GetUInt64(); break;
                case "database_write_version": writeVersion = r.GetUInt64(); break;
                case "extent_size":
                    if (r.TokenType != JsonTokenType.StartObject)
                    {
                        throw Incompatible("region.json: extent_size must be an object {value, shift}");
                    }
                    while (Next(ref r) != JsonTokenType.EndObject)
                    {
                        string inner = r.GetString()!;
                        Next(ref r);
                        switch (inner)
                        {
                            case "value": value = r.GetUInt64(); break;
                            case "shift": shift = r.GetUInt32(); break;
                            default: r.Skip(); break;
                        }
                    }
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        return new RegionDefinition
        {
            BlockSize = blockSize ?? throw Missing("block_size"),
            ExtentSize = new Block(value ?? throw Missing("extent_size.value"), shift ?? throw Missing("extent_size.shift")),
            ExtentCount = extentCount ?? throw Missing("extent_count"),
            Uuid = uuid ?? throw Missing("uuid"),
            Encrypted = encrypted ?? throw Missing("encrypted"),
            DatabaseReadVersion = readVersion ?? throw Missing("database_read_version"),
            DatabaseWriteVersion = writeVersion ?? throw Missing("database_write_version"),
        };
    }

    private static JsonTokenType Next(ref Utf8JsonReader r)
    {
        if (!r.Read())
        {
            throw Incompatible("region.json ends early");
        }
        return r.TokenType;
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType type, string message)
    {
        if (Next(ref r) != type)
        {
            throw Incompatible(message);
        }
    }

    private static RegionException Missing(string field) => Incompatible($"region.json has no {field} field");

    private static RegionException Incompatible(string message) => new(RegionError.RegionIncompatible, message);
}

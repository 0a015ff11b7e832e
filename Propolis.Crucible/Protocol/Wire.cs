using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>Encodings of the composite field types that several messages share.</summary>
internal static class Wire
{
    public static ValueArray<JobId> ReadJobIds(ref BincodeReader r)
    {
        var items = new JobId[r.ReadLength(8)];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = new JobId(r.ReadU64());
        }
        return items;
    }

    public static void WriteJobIds(ref BincodeWriter w, ValueArray<JobId> ids)
    {
        w.WriteLength(ids.Count);
        foreach (JobId id in ids.AsSpan())
        {
            w.WriteU64(id.Value);
        }
    }

    public static ValueArray<ulong> ReadU64s(ref BincodeReader r)
    {
        var items = new ulong[r.ReadLength(8)];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = r.ReadU64();
        }
        return items;
    }

    public static void WriteU64s(ref BincodeWriter w, ValueArray<ulong> values)
    {
        w.WriteLength(values.Count);
        foreach (ulong v in values.AsSpan())
        {
            w.WriteU64(v);
        }
    }

    public static ValueArray<uint> ReadU32s(ref BincodeReader r)
    {
        var items = new uint[r.ReadLength(4)];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = r.ReadU32();
        }
        return items;
    }

    public static void WriteU32s(ref BincodeWriter w, ValueArray<uint> values)
    {
        w.WriteLength(values.Count);
        foreach (uint v in values.AsSpan())
        {
            w.WriteU32(v);
        }
    }

    public static ValueArray<bool> ReadBools(ref BincodeReader r)
    {
        var items = new bool[r.ReadLength(1)];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = r.ReadBool();
        }
        return items;
    }

    public static void WriteBools(ref BincodeWriter w, ValueArray<bool> values)
    {
        w.WriteLength(values.Count);
        foreach (bool v in values.AsSpan())
        {
            w.WriteBool(v);
        }
    }

    public static ValueArray<ClientId> ReadClientIds(ref BincodeReader r)
    {
        var items = new ClientId[r.ReadLength(1)];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = ClientId.Read(ref r);
        }
        return items;
    }

    public static void WriteClientIds(ref BincodeWriter w, ValueArray<ClientId> ids)
    {
        w.WriteLength(ids.Count);
        foreach (ClientId id in ids.AsSpan())
        {
            w.WriteU8(id.Value);
        }
    }

    public static ValueArray<BlockContext> ReadBlockContexts(ref BincodeReader r)
    {
        var items = new BlockContext[r.ReadLength(BlockContext.MinWireSize)];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = BlockContext.Read(ref r);
        }
        return items;
    }

    public static void WriteBlockContexts(ref BincodeWriter w, ValueArray<BlockContext> contexts)
    {
        w.WriteLength(contexts.Count);
        foreach (BlockContext c in contexts.AsSpan())
        {
            c.Write(ref w);
        }
    }

    public static ValueArray<ReadBlockContext> ReadReadBlockContexts(ref BincodeReader r)
    {
        var items = new ReadBlockContext[r.ReadLength(ReadBlockContext.MinWireSize)];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = ReadBlockContext.Read(ref r);
        }
        return items;
    }

    public static void WriteReadBlockContexts(ref BincodeWriter w, ValueArray<ReadBlockContext> contexts)
    {
        w.WriteLength(contexts.Count);
        foreach (ReadBlockContext c in contexts.AsSpan())
        {
            c.Write(ref w);
        }
    }

    private const uint ResultOk = 0;
    private const uint ResultErr = 1;

    /// <summary><c>Result&lt;(), CrucibleError&gt;</c>: null for <c>Ok(())</c>.</summary>
    public static CrucibleError? ReadUnitResult(ref BincodeReader r) =>
        r.ReadVariant(2, "Result") == ResultOk ? null : CrucibleError.Read(ref r);

    public static void WriteUnitResult(ref BincodeWriter w, CrucibleError? error)
    {
        if (error is null)
        {
            w.WriteVariant(ResultOk);
            return;
        }
        w.WriteVariant(ResultErr);
        error.Write(ref w);
    }

    /// <summary>Reads the Result tag; true for Ok (the caller then reads the value).</summary>
    public static bool ReadResultTag(ref BincodeReader r) => r.ReadVariant(2, "Result") == ResultOk;

    public static void WriteResultTag(ref BincodeWriter w, bool ok) => w.WriteVariant(ok ? ResultOk : ResultErr);
}

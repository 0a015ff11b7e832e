using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

internal sealed partial class SchemaReader
{
    // ---- [block_dev.NAME] -----------------------------------------------------------------

    private static string[]? KeysOfType(string type) =>
        BlockTypes.FirstOrDefault(b => b.Type == type).Keys;

    private BlockDevConfig? ReadBlockDev(string name, TomlTable t)
    {
        var r = new TableReader(t, $"[block_dev.{name}]", _d);
        int before = _d.Count;

        var typeNode = r.StringNode("type", required: true, hint: $" ({string.Join(", ", BlockTypes.Select(b => $"\"{b.Type}\""))})");
        string? type = typeNode?.Value;
        if (typeNode is not null && KeysOfType(typeNode.Value) is null)
        {
            r.Error(typeNode.Position, $"unknown block_dev type \"{typeNode.Value}\"{Suggest.DidYouMean(typeNode.Value, BlockTypes.Select(b => b.Type), "\"")} (types: {string.Join(", ", BlockTypes.Select(b => b.Type))})");
            type = null;
        }
        _blockDevNames.Add((name, type, t.Position));

        bool crucible = type == "crucible";
        int? blockSize = BlockSize(r, required: crucible);
        bool readOnly = r.Bool("read_only") ?? false;
        bool skipFlush = r.Bool("skip_flush") ?? false;

        if (type is null)
        {
            // Without a type only the keys no type knows can be called wrong.
            foreach (var (key, _) in t.Entries)
            {
                if (!CommonBlockKeys.Contains(key.Name) && !BlockTypes.Any(b => b.Keys.Contains(key.Name)))
                    r.Error(key.Position, $"unknown key '{key.Name}' in {r.Section}{Suggest.DidYouMean(key.Name, CommonBlockKeys.Concat(BlockTypes.SelectMany(b => b.Keys)))}");
            }
            return null;
        }

        int bs = blockSize ?? ConfigLoader.DefaultBlockSize;
        _blockDevSizes[name] = (bs, blockSize is null ? t.Position : r.ValuePosition("block_size"));
        BlockDevConfig? result = type switch
        {
            "file" => ReadFileBlockDev(r, name, bs, readOnly, skipFlush),
            "crucible" => ReadCrucible(r, name, bs, readOnly, skipFlush),
            "crucible-mem" => Size(r, bs) is { } size ? new CrucibleMemBlockDev(name, bs, readOnly, skipFlush, size) : null,
            "mem-async" => ReadMemAsync(r, name, bs, readOnly, skipFlush),
            "cloudinit" => new CloudInitBlockDev(name, bs, readOnly, skipFlush),
            _ => null,
        };

        r.RejectUnknown(key =>
        {
            var owner = BlockTypes.FirstOrDefault(b => b.Keys.Contains(key)).Type;
            return owner is null ? null : $"key '{key}' is not valid for block_dev type '{type}' (it belongs to type '{owner}')";
        });

        if (_d.Count != before || result is null)
            return null;
        return result with { Position = t.Position };
    }

    private static int? BlockSize(TableReader r, bool required)
    {
        var v = r.Integer("block_size", 0, long.MaxValue, required,
            required ? " (it must match the block size of the downstairs regions)" : null);
        if (v is null)
            return null;
        if (v < ConfigLoader.MinBlockSize || v > ConfigLoader.MaxBlockSize || (v & (v - 1)) != 0)
        {
            r.Error(r.ValuePosition("block_size"), $"'block_size' must be a power of two from {ConfigLoader.MinBlockSize} to {ConfigLoader.MaxBlockSize}, found {v}");
            return null;
        }
        return (int)v;
    }

    private static long? Size(TableReader r, int blockSize)
    {
        var size = r.Integer("size", 1, long.MaxValue, required: true, hint: " (in bytes)");
        if (size is null)
            return null;
        if (size % blockSize != 0)
        {
            r.Error(r.ValuePosition("size"), $"'size' must be a multiple of the block size ({blockSize}), found {size}");
            return null;
        }
        return size;
    }

    private static int Workers(TableReader r) =>
        (int)(r.Integer("workers", 1, FileBlockDev.MaxWorkers) ?? FileBlockDev.DefaultWorkers);

    private FileBlockDev? ReadFileBlockDev(TableReader r, string name, int bs, bool readOnly, bool skipFlush)
    {
        var path = ExistingFile(r, "path", "disk image", required: true,
            use: readOnly ? FileUse.Read : FileUse.ReadWrite);
        int workers = Workers(r);
        return path is null ? null : new FileBlockDev(name, bs, readOnly, skipFlush, path, workers);
    }

    private MemAsyncBlockDev? ReadMemAsync(TableReader r, string name, int bs, bool readOnly, bool skipFlush)
    {
        var size = Size(r, bs);
        int workers = Workers(r);
        return size is null ? null : new MemAsyncBlockDev(name, bs, readOnly, skipFlush, size.Value, workers);
    }

    private CrucibleBlockDev? ReadCrucible(TableReader r, string name, int bs, bool readOnly, bool skipFlush)
    {
        int before = _d.Count;
        const string regionHint = " (it must match the downstairs regions)";
        var bpe = r.Integer("blocks_per_extent", 1, long.MaxValue, required: true, hint: regionHint);
        var extents = r.Integer("extent_count", 1, uint.MaxValue, required: true, hint: regionHint);

        var targets = new List<System.Net.IPEndPoint>();
        if (r.Array("targets", required: true) is { } arr)
        {
            if (arr.Count != 3)
                r.Error(arr.Position, $"'targets' must list exactly 3 downstairs addresses, found {arr.Count}");
            foreach (var item in arr.Items)
            {
                if (item is not TomlString s)
                {
                    r.Error(item.Position, $"'targets' lists socket addresses (strings), found {item.TypeName}");
                    continue;
                }
                if (SocketAddress(r, s, "targets") is not { } ep)
                    continue;
                if (targets.Any(x => x.Equals(ep)))
                    r.Error(s.Position, $"downstairs {s.Value} is listed twice in 'targets'; the three must be distinct");
                targets.Add(ep);
            }
        }

        var generation = r.Integer("generation", 0, long.MaxValue, required: true,
            hint: " (it must grow with every connection to the downstairs)");

        Guid? upstairsId = null;
        if (r.StringNode("upstairs_id") is { } uid)
        {
            upstairsId = Values.ParseUuid(uid.Value);
            if (upstairsId is null)
                r.Error(uid.Position, $"'upstairs_id' must be a UUID such as \"e4396bd0-ede1-48d7-ac14-3d2094dfba5b\", found \"{uid.Value}\"");
        }

        bool lossy = r.Bool("lossy") ?? false;
        double? flushTimeout = r.PositiveNumber("flush_timeout");

        byte[]? key = null;
        if (r.StringNode("encryption_key") is { } ek)
        {
            var buffer = new byte[ek.Value.Length];
            if (!Convert.TryFromBase64String(ek.Value, buffer, out int n))
                r.Error(ek.Position, "'encryption_key' must be base64 (create one with: openssl rand -base64 32)");
            else if (n != 32)
                r.Error(ek.Position, $"'encryption_key' must decode to 32 bytes (256 bits), found {n} bytes");
            else
                key = buffer[..32];
        }

        var cert = ExistingFile(r, "cert_pem", "certificate");
        var keyPem = ExistingFile(r, "key_pem", "private key");
        var root = ExistingFile(r, "root_cert_pem", "root certificate");
        string[] tlsKeys = { "cert_pem", "key_pem", "root_cert_pem" };
        var present = tlsKeys.Where(r.Has).ToArray();
        if (present.Length is > 0 and < 3)
        {
            var missing = tlsKeys.Except(present);
            r.Error(r.KeyPosition(present[0]), $"TLS needs 'cert_pem', 'key_pem' and 'root_cert_pem' together; missing {string.Join(", ", missing.Select(m => $"'{m}'"))}");
        }

        if (cert is not null && keyPem is not null && root is not null)
        {
            // Load them now, so that --check names a file that is not a PEM certificate or key, or a key
            // that does not match its certificate (the upstairs loads them again when the machine is built).
            try
            {
                Propolis.Crucible.Tls.CrucibleTlsContext.FromPaths(cert, keyPem, root).Dispose();
            }
            catch (Propolis.Crucible.Tls.CrucibleTlsException e)
            {
                r.Error(r.ValuePosition(e.File ?? "cert_pem"), e.Message);
            }
        }

        System.Net.IPEndPoint? control = null;
        if (r.StringNode("control_addr") is { } ca)
            control = SocketAddress(r, ca, "control_addr");

        if (_d.Count == before && (UInt128)(ulong)bpe!.Value * (ulong)extents!.Value * (ulong)bs > long.MaxValue)
            r.Error(r.ValuePosition("extent_count"), $"the region ({extents} extents of {bpe} blocks of {bs} bytes) is larger than 2^63 bytes");
        if (_d.Count != before)
            return null;
        var tls = cert is not null && keyPem is not null && root is not null ? new CrucibleTls(cert, keyPem, root) : null;
        return new CrucibleBlockDev(name, bs, readOnly, skipFlush, (ulong)bpe!.Value, (uint)extents!.Value, targets,
            (ulong)generation!.Value, upstairsId, lossy, flushTimeout, key, tls, control);
    }

    private static System.Net.IPEndPoint? SocketAddress(TableReader r, TomlString s, string key)
    {
        var ep = Values.ParseSocketAddress(s.Value, out var reason);
        if (ep is null)
            r.Error(s.Position, $"'{key}': \"{s.Value}\" is not a socket address: {reason}");
        return ep;
    }
}

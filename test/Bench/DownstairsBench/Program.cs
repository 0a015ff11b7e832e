// Throughput of a downstairs (Propolis.Crucible DownstairsHost) on 127.0.0.1, driven by a
// protocol-level upstairs over one TCP connection: negotiation, then Write jobs (each depending
// on the last flush) with a Flush (depending on every write since the previous one) after every
// N writes, then ReadRequests, at a fixed number of jobs outstanding. Beside it, the raw rate
// of pwrite + fdatasync (one fdatasync after every N writes) on a file in the same directory,
// which bounds what the downstairs can do on that disk.
//
// Usage: DownstairsBench [seconds-per-figure]   (default 3)
// The region lives under $DOWNSTAIRS_BENCH_DIR if set, else the system temporary directory.

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Propolis.Crucible.Downstairs;
using Propolis.Crucible.Protocol;
using Regions = Propolis.Crucible.Regions;

double seconds = args.Length > 0 && double.TryParse(args[0], System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 3;
string root = Environment.GetEnvironmentVariable("DOWNSTAIRS_BENCH_DIR") is { Length: > 0 } d ? d : Path.GetTempPath();
string dir = Path.Combine(root, "downstairs-bench-" + Guid.NewGuid().ToString("N"));

const int BlockSize = 4096;
const ulong ExtentBlocks = 4096;   // 16 MiB extents
const uint ExtentCount = 16;       // 256 MiB region
const ulong RegionBlocks = ExtentBlocks * ExtentCount;

Console.WriteLine($"Downstairs on loopback, {seconds:0.##} s per figure");
Console.WriteLine($"  runtime   {RuntimeInformation.FrameworkDescription}, {Environment.ProcessorCount} logical cpus, load average {LoadAverage()}");
Console.WriteLine($"  region    {dir}: {BlockSize} B blocks, {ExtentCount} extents of {ExtentBlocks} blocks ({RegionBlocks * BlockSize >> 20} MiB), unencrypted");
Console.WriteLine($"  filesystem {FileSystemOf(root)}");
Console.WriteLine();
Console.WriteLine($"  {"what",-44} {"IOPS",10} {"MiB/s",9} {"µs/op",9}");

try
{
    using (Regions.Region.Create(dir, Regions.RegionDefinition.ForNewRegion(BlockSize, ExtentBlocks, ExtentCount, Guid.NewGuid(), false)))
    {
    }
    await using DownstairsHost host = DownstairsHost.Start(new DownstairsRunOptions
    {
        Address = IPAddress.Loopback,
        Port = 0,
        DataDirectory = dir,
    }, NullLoggerFactory.Instance);
    await using var up = await BenchUpstairs.ConnectAsync(host.Address);

    foreach ((int blocks, int flushEvery, int depth) in new[] { (1, 32, 1), (1, 32, 16), (256, 8, 1), (256, 8, 4) })
    {
        Result r = await up.WriteAsync(blocks, flushEvery, depth, seconds);
        Print($"write {Size(blocks)}, flush every {flushEvery}, {depth} outstanding", r, blocks);
    }
    foreach ((int blocks, int depth) in new[] { (1, 1), (1, 16), (256, 4) })
    {
        Result r = await up.ReadAsync(blocks, depth, seconds);
        Print($"read {Size(blocks)}, {depth} outstanding", r, blocks);
    }
    Console.WriteLine();
    foreach ((int blocks, int syncEvery) in new[] { (1, 32), (1, 1), (256, 8) })
    {
        Result r = RawWrites(dir, blocks, syncEvery, seconds);
        Print($"raw pwrite {Size(blocks)} + fdatasync every {syncEvery}", r, blocks);
    }
}
finally
{
    if (Directory.Exists(dir))
    {
        Directory.Delete(dir, recursive: true);
    }
}

static string Size(int blocks) => blocks * BlockSize >= 1 << 20 ? $"{blocks * BlockSize >> 20} MiB" : $"{blocks * BlockSize >> 10} KiB";

static void Print(string what, Result r, int blocks)
{
    double iops = r.Ops / r.Elapsed.TotalSeconds;
    double mib = iops * blocks * BlockSize / (1 << 20);
    Console.WriteLine($"  {what,-44} {iops,10:F0} {mib,9:F1} {1e6 / iops,9:F1}");
}

/// <summary>pwrite of <paramref name="blocks"/> blocks at random aligned offsets of a 256 MiB file, fdatasync after every <paramref name="syncEvery"/>.</summary>
static Result RawWrites(string dir, int blocks, int syncEvery, double seconds)
{
    string path = Path.Combine(dir, "raw-pwrite");
    long fileSize = (long)RegionBlocks * BlockSize;
    using SafeFileHandle file = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None, FileOptions.None, fileSize);
    byte[] data = new byte[blocks * BlockSize];
    Random.Shared.NextBytes(data);
    // Allocate every block first, as the region's extents are preallocated.
    for (long off = 0; off < fileSize; off += data.Length)
    {
        RandomAccess.Write(file, data, off);
    }
    Native.FDataSync(file);
    long slots = fileSize / data.Length;
    long ops = 0;
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed.TotalSeconds < seconds)
    {
        RandomAccess.Write(file, data, Random.Shared.NextInt64(slots) * data.Length);
        if (++ops % syncEvery == 0)
        {
            Native.FDataSync(file);
        }
    }
    Native.FDataSync(file);
    TimeSpan elapsed = sw.Elapsed;
    file.Dispose();
    File.Delete(path);
    return new Result(ops, elapsed);
}

static string LoadAverage()
{
    try
    {
        return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
    }
    catch (IOException)
    {
        return "?";
    }
}

static string FileSystemOf(string path)
{
    try
    {
        string full = Path.GetFullPath(path);
        string best = "";
        string type = "?";
        foreach (string line in File.ReadAllLines("/proc/mounts"))
        {
            string[] f = line.Split(' ');
            if (f.Length > 2 && full.StartsWith(f[1], StringComparison.Ordinal) && f[1].Length > best.Length)
            {
                best = f[1];
                type = $"{f[2]} on {f[1]} ({f[0]})";
            }
        }
        return type;
    }
    catch (IOException)
    {
        return "?";
    }
}

internal readonly record struct Result(long Ops, TimeSpan Elapsed);

internal static partial class Native
{
    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FDataSyncRaw(SafeFileHandle fd);

    public static void FDataSync(SafeFileHandle fd)
    {
        if (FDataSyncRaw(fd) != 0)
        {
            throw new IOException($"fdatasync failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }
}

/// <summary>An upstairs that negotiates, then keeps a fixed number of jobs outstanding.</summary>
internal sealed class BenchUpstairs : IAsyncDisposable
{
    private const int BlockSize = 4096;
    private const ulong ExtentBlocks = 4096;
    private const ulong RegionBlocks = ExtentBlocks * 16;

    private readonly CrucibleFrameConnection _connection;
    private readonly Guid _upstairs = Guid.NewGuid();
    private readonly Guid _session = Guid.NewGuid();
    private ulong _nextJob = 1;
    private JobId _lastFlush = new(0);
    private ulong _flushNumber = 1;
    private readonly List<JobId> _sinceFlush = new();

    private BenchUpstairs(CrucibleFrameConnection connection) => _connection = connection;

    public static async Task<BenchUpstairs> ConnectAsync(IPEndPoint at)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(at);
        var up = new BenchUpstairs(new CrucibleFrameConnection(socket));
        await up.SendAsync(new Message.HereIAm(CrucibleProtocol.CrucibleMessageVersion, up._upstairs, up._session, 1, false, false, Array.Empty<uint>()));
        await up.ExpectAsync<Message.YesItsMe>();
        await up.SendAsync(new Message.PromoteToActive(up._upstairs, up._session, 1));
        await up.ExpectAsync<Message.YouAreNowActive>();
        await up.SendAsync(Message.RegionInfoPlease.Instance);
        await up.ExpectAsync<Message.RegionInfo>();
        await up.SendAsync(new Message.LastFlush(new JobId(0)));
        return up;
    }

    private ValueTask SendAsync(Message m) => _connection.SendAsync(m);

    private async Task<T> ExpectAsync<T>() where T : Message
    {
        using ReceivedMessage r = await _connection.ReceiveAsync() ?? throw new IOException("the downstairs closed the connection");
        return r.Message as T ?? throw new IOException($"expected {typeof(T).Name}, got {r.Message.Tag}");
    }

    public async Task<Result> WriteAsync(int blocks, int flushEvery, int depth, double seconds)
    {
        byte[] data = new byte[blocks * BlockSize];
        Random.Shared.NextBytes(data);
        var contexts = new BlockContext[blocks];
        for (int i = 0; i < blocks; i++)
        {
            contexts[i] = new BlockContext(IntegrityHash.Compute(data.AsSpan(i * BlockSize, BlockSize)), null);
        }
        ulong slots = RegionBlocks / (ulong)blocks;
        long writes = 0;
        int outstanding = 0;
        var sw = Stopwatch.StartNew();
        bool stop = false;
        while (!stop || outstanding > 0)
        {
            stop = sw.Elapsed.TotalSeconds >= seconds;
            while (!stop && outstanding < depth)
            {
                if (_sinceFlush.Count == flushEvery)
                {
                    await SendFlushAsync();
                }
                else
                {
                    var id = new JobId(_nextJob++);
                    ulong start = (ulong)Random.Shared.NextInt64((long)slots) * (ulong)blocks;
                    await SendAsync(new Message.Write(new WriteHeader(_upstairs, _session, id, new[] { _lastFlush }, new BlockIndex(start), contexts), data));
                    _sinceFlush.Add(id);
                }
                outstanding++;
            }
            if (outstanding == 0)
            {
                break;
            }
            using ReceivedMessage r = await _connection.ReceiveAsync() ?? throw new IOException("the downstairs closed the connection");
            outstanding--;
            switch (r.Message)
            {
                case Message.WriteAck { Result: null }:
                    writes++;
                    break;
                case Message.FlushAck { Result: null }:
                    break;
                default:
                    throw new IOException($"unexpected answer {r.Message}");
            }
        }
        TimeSpan elapsed = sw.Elapsed;
        await SendFlushAsync();
        await ExpectAsync<Message.FlushAck>();
        return new Result(writes, elapsed);
    }

    private ValueTask SendFlushAsync()
    {
        var id = new JobId(_nextJob++);
        var deps = new List<JobId>(_sinceFlush) { _lastFlush };
        _sinceFlush.Clear();
        _lastFlush = id;
        return SendAsync(new Message.Flush(_upstairs, _session, id, deps.ToArray(), _flushNumber++, 1, null, null));
    }

    public async Task<Result> ReadAsync(int blocks, int depth, double seconds)
    {
        ulong slots = RegionBlocks / (ulong)blocks;
        long reads = 0;
        int outstanding = 0;
        var sw = Stopwatch.StartNew();
        bool stop = false;
        while (!stop || outstanding > 0)
        {
            stop = sw.Elapsed.TotalSeconds >= seconds;
            while (!stop && outstanding < depth)
            {
                ulong start = (ulong)Random.Shared.NextInt64((long)slots) * (ulong)blocks;
                await SendAsync(new Message.ReadRequest(_upstairs, _session, new JobId(_nextJob++), new[] { _lastFlush }, new BlockIndex(start), (ulong)blocks));
                outstanding++;
            }
            if (outstanding == 0)
            {
                break;
            }
            using ReceivedMessage r = await _connection.ReceiveAsync() ?? throw new IOException("the downstairs closed the connection");
            outstanding--;
            if (r.Message is not Message.ReadResponse rr || !rr.Header.Blocks.IsOk)
            {
                throw new IOException($"unexpected answer {r.Message}");
            }
            reads++;
        }
        return new Result(reads, sw.Elapsed);
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}

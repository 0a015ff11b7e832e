// Throughput of AES-256-GCM-SIV as Crucible's upstairs uses it: one call per disk block, a fresh
// 12-byte nonce, empty associated data, in-place, detached tag. Single-threaded, so the figures
// are per core. Usage: CryptoBench [seconds-per-measurement]   (default 0.5)
//
// Each measurement times batches of 64 calls over 64 distinct blocks (256 KiB at 4 KiB blocks,
// resident in L2) and restores the batch untimed between rounds: encryption is timed while the
// blocks go plaintext → ciphertext, decryption while they go back. The best and median of the
// rounds are printed; the machine is shared, so the best is the better estimate of the code.

using System.Diagnostics;
using System.Security.Cryptography;
using Propolis.Crucible.Crypto;

double seconds = args.Length > 0 && double.TryParse(args[0], System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 0.5;

Console.WriteLine($"AES-256-GCM-SIV, one thread, {seconds:0.##} s per figure");
Console.WriteLine($"  runtime   {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}");
Console.WriteLine($"  cpu       {CpuModel()}, {Environment.ProcessorCount} logical, load average {LoadAverage()}");
Console.WriteLine($"  default   {(AesGcmSiv.DefaultBackend == AesGcmSivBackend.Hardware ? "hardware (AES-NI + PCLMULQDQ)" : "portable")}");
Console.WriteLine();
Console.WriteLine($"  {"backend",-9} {"block",6} {"op",-8} {"best GB/s",10} {"median GB/s",12} {"µs/block",9}");

byte[] key = RandomNumberGenerator.GetBytes(32);
var backends = new List<AesGcmSivBackend>();
if (AesGcmSiv.DefaultBackend == AesGcmSivBackend.Hardware)
{
    backends.Add(AesGcmSivBackend.Hardware);
}

backends.Add(AesGcmSivBackend.Portable);

foreach (AesGcmSivBackend backend in backends)
{
    using var aead = new AesGcmSiv(key, backend);
    foreach (int blockSize in new[] { 4096, 512 })
    {
        var batch = new Batch(aead, blockSize, 64);
        (double best, double median) enc = Measure(batch, encrypt: true, seconds);
        (double best, double median) dec = Measure(batch, encrypt: false, seconds);
        Print(backend, blockSize, "encrypt", enc);
        Print(backend, blockSize, "decrypt", dec);
    }
}

static void Print(AesGcmSivBackend backend, int blockSize, string op, (double Best, double Median) r)
{
    string name = backend == AesGcmSivBackend.Hardware ? "hardware" : "portable";
    double usPerBlock = blockSize / (r.Best * 1e9) * 1e6;
    Console.WriteLine($"  {name,-9} {blockSize,6} {op,-8} {r.Best,10:0.000} {r.Median,12:0.000} {usPerBlock,9:0.000}");
}

static (double Best, double Median) Measure(Batch batch, bool encrypt, double seconds)
{
    // Warm up: tiering and PGO settle after a few thousand calls.
    var warm = Stopwatch.StartNew();
    while (warm.Elapsed.TotalSeconds < Math.Min(0.2, seconds / 2))
    {
        batch.Encrypt();
        batch.Decrypt();
    }

    // Timed encryption needs plaintext blocks, timed decryption ciphertext ones.
    if (batch.IsEncrypted == encrypt)
    {
        if (encrypt)
        {
            batch.Decrypt();
        }
        else
        {
            batch.Encrypt();
        }
    }

    const int Rounds = 7;
    var rates = new double[Rounds];
    long ticksPerRound = (long)(seconds / Rounds * Stopwatch.Frequency);
    for (int r = 0; r < Rounds; r++)
    {
        long timed = 0, bytes = 0;
        while (timed < ticksPerRound)
        {
            long t0 = Stopwatch.GetTimestamp();
            if (encrypt)
            {
                batch.Encrypt();
            }
            else
            {
                batch.Decrypt();
            }

            timed += Stopwatch.GetTimestamp() - t0;
            bytes += batch.Bytes;

            // Restore the blocks for the next timed batch, untimed.
            if (encrypt)
            {
                batch.Decrypt();
            }
            else
            {
                batch.Encrypt();
            }
        }

        rates[r] = bytes / ((double)timed / Stopwatch.Frequency) / 1e9;
    }

    Array.Sort(rates);
    return (rates[^1], rates[Rounds / 2]);
}

// Other processes on the machine distort the figures; print what they were doing.
static string LoadAverage()
{
    try
    {
        string[] fields = File.ReadAllText("/proc/loadavg").Split(' ');
        return fields.Length >= 3 ? $"{fields[0]} {fields[1]} {fields[2]}" : "unknown";
    }
    catch (IOException)
    {
        return "unknown";
    }
    catch (UnauthorizedAccessException)
    {
        return "unknown";
    }
}

static string CpuModel()
{
    try
    {
        foreach (string line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal))
            {
                return line[(line.IndexOf(':') + 1)..].Trim();
            }
        }
    }
    catch (IOException)
    {
    }
    catch (UnauthorizedAccessException)
    {
    }

    return "unknown";
}

/// <summary>A set of blocks with their nonces and tags, encrypted and decrypted as a batch.</summary>
internal sealed class Batch
{
    private readonly AesGcmSiv _aead;
    private readonly byte[][] _blocks;
    private readonly byte[][] _nonces;
    private readonly byte[][] _tags;

    public Batch(AesGcmSiv aead, int blockSize, int count)
    {
        _aead = aead;
        _blocks = new byte[count][];
        _nonces = new byte[count][];
        _tags = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            _blocks[i] = RandomNumberGenerator.GetBytes(blockSize);
            _nonces[i] = RandomNumberGenerator.GetBytes(AesGcmSiv.NonceSize);
            _tags[i] = new byte[AesGcmSiv.TagSize];
        }

        Bytes = (long)blockSize * count;
    }

    public long Bytes { get; }

    public bool IsEncrypted { get; private set; }

    public void Encrypt()
    {
        for (int i = 0; i < _blocks.Length; i++)
        {
            _aead.Encrypt(_nonces[i], _blocks[i], _tags[i], default);
        }

        IsEncrypted = true;
    }

    public void Decrypt()
    {
        for (int i = 0; i < _blocks.Length; i++)
        {
            if (!_aead.TryDecrypt(_nonces[i], _blocks[i], _tags[i], default))
            {
                throw new InvalidOperationException("A block failed to authenticate; the benchmark is broken.");
            }
        }

        IsEncrypted = false;
    }
}

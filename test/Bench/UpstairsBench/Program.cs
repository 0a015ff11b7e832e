// UpstairsBench: the Crucible upstairs (Propolis.Crucible.Upstairs) against three downstairs in this
// process on 127.0.0.1, each on its own region in the temp directory. For 4 KiB random and 1 MiB
// sequential writes and reads at queue depth 1 and 32, plain, encrypted, and plain over TLS
// (certificates made here for the run), it prints IOPS and MiB/s over a fixed amount of data. Writes are fast-acked, so each write row ends with a flush
// that waits for two downstairs (its time is included). Arguments: [MiB per row] (default 64).
using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Downstairs;
using Propolis.Crucible.Regions;
using Propolis.Crucible.Tls;
using Propolis.Crucible.Upstairs;
using CrucibleUpstairs = Propolis.Crucible.Upstairs.Upstairs;
using RegionDefinition = Propolis.Crucible.Regions.RegionDefinition;

int mib = args.Length > 0 && int.TryParse(args[0], out int m) && m > 0 ? m : 64;
const int BlockSize = 4096;
const ulong BlocksPerExtent = 4096; // 16 MiB extents
const uint Extents = 16;            // 256 MiB volume
ulong totalBlocks = BlocksPerExtent * Extents;

Console.WriteLine($"upstairs over 3 in-process downstairs (loopback), {mib} MiB per row, volume {totalBlocks * BlockSize >> 20} MiB");
Console.WriteLine($"{"data",-10} {"workload",-22} {"depth",5} {"IOPS",10} {"MiB/s",9}");
using CrucibleTlsContext downTls = BenchCertificates.Context("downstairs", "downstairs0", "downstairs1", "downstairs2");
using CrucibleTlsContext upTls = BenchCertificates.Context("upstairs");
foreach ((string label, bool encrypted, bool tls) in new[] { ("plain", false, false), ("encrypted", true, false), ("plain+tls", false, true) })
{
    var dirs = new List<string>();
    var hosts = new List<DownstairsHost>();
    for (int i = 0; i < 3; i++)
    {
        string dir = Path.Combine(Path.GetTempPath(), "upstairs-bench-" + Guid.NewGuid().ToString("N"));
        Region.Create(dir, RegionDefinition.ForNewRegion(BlockSize, BlocksPerExtent, Extents, Guid.NewGuid(), encrypted)).Dispose();
        dirs.Add(dir);
        hosts.Add(DownstairsHost.Start(new DownstairsRunOptions
        {
            Address = IPAddress.Loopback, Port = 0, DataDirectory = dir, Tls = tls ? downTls : null,
        }, NullLoggerFactory.Instance));
    }
    try
    {
        byte[]? key = encrypted ? Convert.FromBase64String("tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=") : null;
        await using var up = new CrucibleUpstairs(new UpstairsOptions
        {
            Targets = hosts.Select(h => h.Address).ToArray(),
            Generation = 1,
            EncryptionKey = key,
            FlushTimeout = TimeSpan.Zero,
            Tls = tls ? upTls : null,
        });
        await up.ActivateAsync();
        foreach ((string name, int size, bool random) in new[] { ("4 KiB random", 4096, true), ("1 MiB sequential", 1 << 20, false) })
        {
            foreach (int depth in new[] { 1, 32 })
            {
                foreach (bool write in new[] { true, false })
                {
                    int ops = (int)(((long)mib << 20) / size);
                    double seconds = await Run(up, write, size, random, depth, ops, totalBlocks);
                    Console.WriteLine($"{label,-10} {(write ? "write " : "read ") + name,-22} {depth,5} {ops / seconds,10:F0} {ops * (double)size / (1 << 20) / seconds,9:F1}");
                }
            }
        }
    }
    finally
    {
        foreach (DownstairsHost h in hosts)
        {
            await h.DisposeAsync();
        }
        foreach (string d in dirs)
        {
            Directory.Delete(d, recursive: true);
        }
    }
}

static async Task<double> Run(CrucibleUpstairs up, bool write, int size, bool random, int depth, int ops, ulong totalBlocks)
{
    ulong blocksPerOp = (ulong)size / 4096;
    ulong slots = totalBlocks / blocksPerOp;
    int next = 0;
    var sw = Stopwatch.StartNew();
    var workers = new Task[depth];
    for (int w = 0; w < depth; w++)
    {
        workers[w] = Task.Run(async () =>
        {
            var buffer = new byte[size];
            Random.Shared.NextBytes(buffer);
            var rng = new Random(Environment.CurrentManagedThreadId);
            int i;
            while ((i = Interlocked.Increment(ref next)) <= ops)
            {
                ulong block = (random ? (ulong)rng.NextInt64((long)slots) : (ulong)(i - 1) % slots) * blocksPerOp;
                if (write)
                {
                    await up.WriteAsync(block, buffer);
                }
                else
                {
                    await up.ReadAsync(block, buffer);
                }
            }
        });
    }
    await Task.WhenAll(workers);
    if (write)
    {
        await up.FlushAsync();
    }
    return sw.Elapsed.TotalSeconds;
}

/// <summary>A root made for this run and the certificates it signs, as PEM files in the temp directory.</summary>
internal static class BenchCertificates
{
    private static readonly string s_dir = Path.Combine(Path.GetTempPath(), "upstairs-bench-pki-" + Guid.NewGuid().ToString("N"));
    private static readonly System.Security.Cryptography.RSA s_rootKey = System.Security.Cryptography.RSA.Create(2048);
    private static readonly System.Security.Cryptography.X509Certificates.X509Certificate2 s_root = MakeRoot();

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 MakeRoot()
    {
        Directory.CreateDirectory(s_dir);
        var req = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=bench root", s_rootKey,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension(true, false, 0, true));
        var root = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
        File.WriteAllText(Path.Combine(s_dir, "root.pem"), root.ExportCertificatePem());
        return root;
    }

    public static CrucibleTlsContext Context(string name, params string[] dnsNames)
    {
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var req = new System.Security.Cryptography.X509Certificates.CertificateRequest($"CN={name}", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        var san = new System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder();
        foreach (string n in dnsNames)
        {
            san.AddDnsName(n);
        }
        if (dnsNames.Length > 0)
        {
            req.CertificateExtensions.Add(san.Build());
        }
        using var cert = req.Create(s_root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), Guid.NewGuid().ToByteArray()[..16]);
        string certPem = Path.Combine(s_dir, name + ".pem"), keyPem = Path.Combine(s_dir, name + ".key");
        File.WriteAllText(certPem, cert.ExportCertificatePem());
        File.WriteAllText(keyPem, key.ExportRSAPrivateKeyPem());
        return CrucibleTlsContext.FromPaths(certPem, keyPem, Path.Combine(s_dir, "root.pem"));
    }
}

using System.Net;
using System.Net.Sockets;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Propolis.Crucible.Dsc.Tests;

/// <summary>A temporary directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "dsc-test-" + Guid.NewGuid().ToString("N"));

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}

internal static class Ports
{
    private static readonly object s_lock = new();

    /// <summary>
    /// A port base for <paramref name="count"/> downstairs on loopback whose ports (base + 10 i)
    /// and repair ports (+ 4000) are all free right now. Never 8810.
    /// </summary>
    public static int FreePortBase(int count)
    {
        lock (s_lock)
        {
            for (int attempt = 0; attempt < 200; attempt++)
            {
                int b = Random.Shared.Next(20000, 28000);
                var ports = Enumerable.Range(0, count).SelectMany(i => new[] { b + 10 * i, b + 10 * i + 4000 });
                if (ports.All(IsFree))
                {
                    return b;
                }
            }
            throw new InvalidOperationException("no free port range found");
        }
    }

    public static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static bool IsFree(int port)
    {
        foreach (IPAddress a in new[] { IPAddress.Any, IPAddress.Loopback })
        {
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                s.Bind(new IPEndPoint(a, port));
            }
            catch (SocketException)
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>Shell scripts standing in for crucible-downstairs (they record their command lines).</summary>
internal static class FakeDownstairs
{
    /// <summary>
    /// A downstairs that appends its arguments to ARGS_LOG, on <c>run</c> writes its pid to
    /// OUTDIR/pid-PORT and then sleeps (or exits with <paramref name="runExit"/>), and on
    /// <c>create</c> makes the region directory with a region.json.
    /// </summary>
    public static string Write(TempDir dir, int? runExit = null)
    {
        string path = dir["fake-downstairs"];
        string log = dir["args.log"];
        string pids = dir["pids"];
        Directory.CreateDirectory(pids);
        File.WriteAllText(path, $$"""
            #!/bin/sh
            echo "$@" >> '{{log}}'
            if [ "$1" = create ]; then
                shift
                while [ $# -gt 0 ]; do
                    case "$1" in
                        -d) d="$2"; shift 2;;
                        --uuid) u="$2"; shift 2;;
                        --extent-count) ec="$2"; shift 2;;
                        --extent-size) es="$2"; shift 2;;
                        --block-size) bs="$2"; shift 2;;
                        *) shift;;
                    esac
                done
                mkdir -p "$d"
                shift_for_bs=$(awk -v b="$bs" 'BEGIN { s = 0; while (2 ^ s < b) s++; print s }')
                printf '{"block_size":%s,"extent_size":{"value":%s,"shift":%s},"extent_count":%s,"uuid":"%s","encrypted":false,"database_read_version":1,"database_write_version":1}' \
                    "$bs" "$es" "$shift_for_bs" "$ec" "$u" > "$d/region.json"
                echo "created $d"
                exit 0
            fi
            echo $$ > '{{pids}}'/pid-$3
            echo "fake downstairs running: $@"
            {{(runExit is int code ? $"exit {code}" : "exec sleep 600")}}
            """.Replace("\r", ""));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    public static string[] Log(TempDir dir) => File.Exists(dir["args.log"]) ? File.ReadAllLines(dir["args.log"]) : [];

    /// <summary>Kills every fake downstairs that recorded its pid (what a test leaves behind if it fails).</summary>
    public static void KillAll(TempDir dir)
    {
        string pids = dir["pids"];
        if (!Directory.Exists(pids))
        {
            return;
        }
        foreach (string f in Directory.GetFiles(pids))
        {
            if (int.TryParse(File.ReadAllText(f).Trim(), out int pid))
            {
                try
                {
                    using var p = System.Diagnostics.Process.GetProcessById(pid);
                    if (p.ProcessName == "sleep")
                    {
                        p.Kill();
                    }
                }
                catch (ArgumentException)
                {
                }
                catch (InvalidOperationException)
                {
                }
            }
        }
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Tests.Tls;
using Propolis.Crucible.Tls;

namespace Propolis.Crucible.Dsc.Tests;

/// <summary><c>crucible-downstairs run --cert-pem --key-pem --root-cert-pem</c>, the built program.</summary>
public class DownstairsTlsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static Process Start(params string[] args)
    {
        Environment.SetEnvironmentVariable("DOTNET_ROLL_FORWARD", "Major");
        var psi = new ProcessStartInfo(RealDownstairsTests.FindDownstairs()) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        return Process.Start(psi)!;
    }

    private static async Task<(int Exit, string Stderr)> RunAsync(params string[] args)
    {
        using Process p = Start(args);
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(Wait);
        return (p.ExitCode, await stderr);
    }

    private static async Task<Socket> ConnectAsync(int port)
    {
        DateTime deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                return s;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                s.Dispose();
                await Task.Delay(100);
            }
        }
    }

    private static Message.HereIAm Hello() => new(CrucibleProtocol.CrucibleMessageVersion, Guid.NewGuid(), Guid.NewGuid(), 1,
        false, false, Array.Empty<uint>());

    [Fact]
    public async Task ItAnswersATrustedUpstairsOverTlsAndClosesPlainConnections()
    {
        using var dir = new TempDir();
        TestPki ca = TestPki.Create(dir["pki"]);
        (string cert, string key) = ca.Issue("downstairs", "downstairs0");
        (string upCert, string upKey) = ca.Issue("upstairs");
        (int created, string err) = await RunAsync("create", "-d", dir["region"], "--uuid", Guid.NewGuid().ToString(),
            "--extent-size", "16", "--extent-count", "2", "--block-size", "512");
        Assert.True(created == 0, err);

        int port = Ports.FreePortBase(1);
        using Process ds = Start("run", "-d", dir["region"], "-a", "127.0.0.1", "-p", port.ToString(),
            "--cert-pem", cert, "--key-pem", key, "--root-cert-pem", ca.RootPem);
        var log = new LogWatch(ds.StandardError);
        try
        {
            using CrucibleTlsContext tls = CrucibleTlsContext.FromPaths(upCert, upKey, ca.RootPem);
            SslStream stream = await tls.ConnectAsync(await ConnectAsync(port), 0, CancellationToken.None).WaitAsync(Wait);
            await using (var connection = new CrucibleFrameConnection(stream))
            {
                await connection.SendAsync(Hello());
                using ReceivedMessage? reply = await connection.ReceiveAsync().AsTask().WaitAsync(Wait);
                Assert.IsType<Message.YesItsMe>(reply!.Message);
            }

            // Plain TCP: the bytes are not a TLS ClientHello; the downstairs closes without a YesItsMe.
            await using (var plain = new CrucibleFrameConnection(await ConnectAsync(port)))
            {
                await plain.SendAsync(Hello());
                Exception? e = await Record.ExceptionAsync(async () =>
                {
                    using ReceivedMessage? r = await plain.ReceiveAsync().AsTask().WaitAsync(Wait);
                    Assert.Null(r);
                });
                Assert.True(e is null or CrucibleProtocolException or SocketException or IOException, e?.ToString());
            }
            await log.WaitFor("TLS session with 127.0.0.1:").WaitAsync(Wait);
            await log.WaitFor("TLS handshake with 127.0.0.1:").WaitAsync(Wait);
            Assert.Contains("Configured SSL acceptor", log.Text);
        }
        finally
        {
            ds.Kill();
            await ds.WaitForExitAsync();
        }
    }

    /// <summary>Reads a process' stderr as it comes; <see cref="WaitFor"/> completes once a line contains a text.</summary>
    private sealed class LogWatch
    {
        private readonly System.Text.StringBuilder _text = new();
        private readonly List<(string Needle, TaskCompletionSource Seen)> _waits = new();

        public LogWatch(StreamReader stderr) => _ = Pump(stderr);

        public string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString();
                }
            }
        }

        private async Task Pump(StreamReader stderr)
        {
            while (await stderr.ReadLineAsync() is { } line)
            {
                lock (_text)
                {
                    _text.AppendLine(line);
                    foreach ((string needle, TaskCompletionSource seen) in _waits)
                    {
                        if (line.Contains(needle, StringComparison.Ordinal))
                        {
                            seen.TrySetResult();
                        }
                    }
                }
            }
        }

        public Task WaitFor(string needle)
        {
            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_text)
            {
                if (_text.ToString().Contains(needle, StringComparison.Ordinal))
                {
                    seen.SetResult();
                }
                _waits.Add((needle, seen));
            }
            return seen.Task;
        }
    }

    [Fact]
    public async Task AnUnreadablePemFileIsNamedByItsFlag()
    {
        using var dir = new TempDir();
        string missing = dir["nope.pem"];
        (int exit, string err) = await RunAsync("run", "-d", dir["region"], "--cert-pem", missing, "--key-pem", missing, "--root-cert-pem", missing);
        Assert.Equal(1, exit);
        Assert.StartsWith($"crucible-downstairs: --cert-pem '{missing}' cannot be read: ", err);
    }

    [Fact]
    public async Task TheThreeTlsFlagsComeTogether()
    {
        using var dir = new TempDir();
        (int exit, string err) = await RunAsync("run", "-d", dir["region"], "--cert-pem", "c.pem");
        Assert.Equal(2, exit);
        Assert.Contains("--cert-pem requires --key-pem and --root-cert-pem", err);
    }
}

using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using Propolis.Crucible.Http;
using Propolis.Crucible.Tests.Tls;
using Propolis.Crucible.Tls;
using Propolis.Crucible.Upstairs;
using CrucibleUpstairs = Propolis.Crucible.Upstairs.Upstairs;

namespace Propolis.Crucible.Tests.Upstairs;

/// <summary>The upstairs with TLS to in-process downstairs, its lossy option, and its control server.</summary>
public sealed class UpstairsTlsControlTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static async Task WriteFlushAndReadBack(CrucibleUpstairs up)
    {
        byte[] a = RegionSet.Pattern(5, 0x31); // spans extents 0 and 1
        await up.WriteAsync(6, a).WaitAsync(Wait);
        await up.FlushAsync().WaitAsync(Wait);
        var back = new byte[a.Length];
        await up.ReadAsync(6, back).WaitAsync(Wait);
        Assert.Equal(a, back);
        Assert.Equal(0, up.ReadValidationFailures);
    }

    [Fact]
    public async Task AnEncryptedVolumeWorksOverTlsWithBothSidesVerified()
    {
        TestPki ca = TestPki.Create(_dir.Path);
        (string Cert, string Key) ds = ca.Issue("downstairs", "downstairs0", "downstairs1", "downstairs2");
        (string Cert, string Key) us = ca.Issue("upstairs");
        using CrucibleTlsContext downTls = CrucibleTlsContext.FromPaths(ds.Cert, ds.Key, ca.RootPem);
        using CrucibleTlsContext upTls = CrucibleTlsContext.FromPaths(us.Cert, us.Key, ca.RootPem);

        await using RegionSet set = RegionSet.Start(encrypted: true, tls: downTls);
        await using CrucibleUpstairs up = await set.ActivateAsync(1, o => o with { Tls = upTls });
        Assert.Equal(UpstairsState.Active, up.State);
        await WriteFlushAndReadBack(up);
        Assert.All(up.Status(), s => Assert.Null(s.LastError));
        Assert.Equal(0, set.Host(0).Downstairs.TlsHandshakesRefused);
    }

    [Fact]
    public async Task AnUpstairsThatDoesNotTrustTheDownstairsStaysInactiveAndSaysWhy()
    {
        TestPki ca = TestPki.Create(_dir.Path, "downstairs root");
        TestPki other = TestPki.Create(_dir.Path, "other root");
        (string Cert, string Key) ds = ca.Issue("downstairs", "downstairs0", "downstairs1", "downstairs2");
        (string Cert, string Key) us = other.Issue("upstairs");
        using CrucibleTlsContext downTls = CrucibleTlsContext.FromPaths(ds.Cert, ds.Key, ca.RootPem);
        using CrucibleTlsContext upTls = CrucibleTlsContext.FromPaths(us.Cert, us.Key, other.RootPem);

        await using RegionSet set = RegionSet.Start(tls: downTls);
        await using var up = new CrucibleUpstairs(set.Options(1, o => o with { Tls = upTls }));
        Task activation = up.ActivateAsync();
        await up.WaitForAsync(s => s.All(x => x.LastError is not null)).WaitAsync(Wait);
        Assert.False(activation.IsCompleted);
        Assert.Equal(UpstairsState.Initializing, up.State);
        DownstairsStatus s0 = up.Status()[0];
        Assert.Equal(ClientPhase.Disconnected, s0.Phase);
        Assert.StartsWith($"TLS to {set.Target(0)} (downstairs0): the downstairs certificate for 'downstairs0' was refused: it is not trusted by root_cert_pem '{other.RootPem}'",
            s0.LastError);
    }

    [Fact]
    public async Task ADownstairsRefusesAnUpstairsWhoseCertificateItsRootDidNotSign()
    {
        TestPki ca = TestPki.Create(_dir.Path, "downstairs root");
        TestPki other = TestPki.Create(_dir.Path, "other root");
        (string Cert, string Key) ds = ca.Issue("downstairs", "downstairs0", "downstairs1", "downstairs2");
        (string Cert, string Key) us = other.Issue("upstairs");
        using CrucibleTlsContext downTls = CrucibleTlsContext.FromPaths(ds.Cert, ds.Key, ca.RootPem);
        // The upstairs trusts the downstairs, but its own certificate comes from elsewhere.
        using CrucibleTlsContext upTls = CrucibleTlsContext.FromPaths(us.Cert, us.Key, ca.RootPem);

        await using RegionSet set = RegionSet.Start(tls: downTls);
        await using var up = new CrucibleUpstairs(set.Options(1, o => o with { Tls = upTls }));
        Task activation = up.ActivateAsync();
        await up.WaitForAsync(s => s.All(x => x.LastError is not null)).WaitAsync(Wait);
        Assert.False(activation.IsCompleted);
        Assert.Equal(UpstairsState.Initializing, up.State);
        Assert.All(up.Status(), s => Assert.NotEqual(ClientPhase.WaitNowActive, s.Phase)); // never got past HereIAm
        Assert.All(up.Status(), s => Assert.Contains("the downstairs probably refused this upstairs' certificate", s.LastError));
    }

    [Fact]
    public async Task TlsOnOneSideOnlyIsNamedAsSuch()
    {
        TestPki ca = TestPki.Create(_dir.Path);
        (string Cert, string Key) ds = ca.Issue("downstairs", "downstairs0", "downstairs1", "downstairs2");
        (string Cert, string Key) us = ca.Issue("upstairs");
        using CrucibleTlsContext downTls = CrucibleTlsContext.FromPaths(ds.Cert, ds.Key, ca.RootPem);
        using CrucibleTlsContext upTls = CrucibleTlsContext.FromPaths(us.Cert, us.Key, ca.RootPem);

        await using (RegionSet tlsOnly = RegionSet.Start(tls: downTls))
        {
            await using var plainUp = new CrucibleUpstairs(tlsOnly.Options(1));
            _ = plainUp.ActivateAsync();
            await plainUp.WaitForAsync(s => s.All(x => x.LastError is not null)).WaitAsync(Wait);
            Assert.EndsWith("before answering HereIAm: if that downstairs runs with --cert-pem, give this upstairs cert_pem, key_pem and root_cert_pem",
                plainUp.Status()[1].LastError);
        }
        await using (RegionSet plainOnly = RegionSet.Start())
        {
            await using var tlsUp = new CrucibleUpstairs(plainOnly.Options(1, o => o with { Tls = upTls, ConnectTimeout = TimeSpan.FromSeconds(2) }));
            _ = tlsUp.ActivateAsync();
            await tlsUp.WaitForAsync(s => s.All(x => x.LastError is not null)).WaitAsync(Wait);
            string error = tlsUp.Status()[2].LastError!;
            // A plain downstairs reads the ClientHello as the start of a frame: the handshake fails or times out.
            Assert.StartsWith($"TLS to {plainOnly.Target(2)} (downstairs2): ", error);
            Assert.EndsWith("(is the downstairs serving TLS, with --cert-pem, --key-pem and --root-cert-pem?)", error);
        }
    }

    [Fact]
    public async Task LossyOnlyWarnsAsTheRealUpstairsDoesAndIoStillCompletes()
    {
        var log = new ListLogger();
        await using RegionSet set = RegionSet.Start();
        var up = new CrucibleUpstairs(set.Options(1, o => o with { Lossy = true }), log);
        await using (up)
        {
            await up.ActivateAsync().WaitAsync(Wait);
            await WriteFlushAndReadBack(up);
            for (int i = 0; i < 20; i++)
            {
                await up.WriteAsync((ulong)i % RegionSet.TotalBlocks, RegionSet.Pattern(1, (byte)i)).WaitAsync(Wait);
            }
            await up.FlushAsync().WaitAsync(Wait);
        }
        Assert.Contains("lossy flag no longer changes upstairs behavior", log.Lines);
    }

    private static async Task<string> Get(IPEndPoint server, string path)
    {
        (int status, byte[] body) = await Http1Client.SendAsync(server, "GET", path, Wait);
        Assert.Equal(200, status);
        return Encoding.UTF8.GetString(body);
    }

    private const string AllZero = "\"up_jobs\":0,\"ds_jobs\":0,\"reconcile_done\":0,\"reconcile_needed\":0,"
        + "\"extents_repaired\":[0,0,0],\"extents_confirmed\":[0,0,0],\"extent_limit\":[null,null,null],"
        + "\"live_repair_completed\":[0,0,0],\"live_repair_aborted\":[0,0,0]";

    [Fact]
    public async Task TheControlServerReportsInfoAndWorkInCruciblesShapes()
    {
        await using RegionSet set = RegionSet.Start();
        await using CrucibleUpstairs up = await set.ActivateAsync(1, o => o with { ControlAddress = new IPEndPoint(IPAddress.Loopback, 0) });
        IPEndPoint control = up.ControlServerAddress!;

        Assert.Equal("{\"state\":\"active\",\"ds_state\":[{\"type\":\"active\"},{\"type\":\"active\"},{\"type\":\"active\"}],"
            + AllZero + "}", await Get(control, "/info"));
        Assert.Equal("{\"jobs\":[],\"completed\":[]}", await Get(control, "/work"));

        await up.WriteAsync(3, RegionSet.Pattern(2, 9)).WaitAsync(Wait);
        await up.WaitForAsync(s => s.All(x => x.OutstandingJobs == 0)).WaitAsync(Wait);
        Assert.Equal("{\"jobs\":[{\"id\":1000,\"replay\":false,\"job_type\":\"Write\",\"num_blocks\":2,\"deps\":[],\"ack_status\":\"acked\",\"state\":[\"Done\",\"Done\",\"Done\"]}],\"completed\":[]}",
            await Get(control, "/work"));
        Assert.Contains("\"ds_jobs\":1,", await Get(control, "/info"));

        await up.FlushAsync().WaitAsync(Wait);
        await up.WaitForAsync(s => s.All(x => x.OutstandingJobs == 0)).WaitAsync(Wait);
        Assert.Equal("{\"jobs\":[],\"completed\":["
            + "{\"id\":1000,\"replay\":false,\"job_type\":\"Write\",\"num_blocks\":2,\"deps\":[],\"ack_status\":\"acked\",\"state\":[\"Done\",\"Done\",\"Done\"]},"
            + "{\"id\":1001,\"replay\":false,\"job_type\":\"Flush\",\"num_blocks\":0,\"deps\":[1000],\"ack_status\":\"acked\",\"state\":[\"Done\",\"Done\",\"Done\"]}]}",
            await Get(control, "/work"));

        // A downstairs that goes away is shown reconnecting in offline mode (crucible DsState::Connecting).
        set.Proxy(0).Cut();
        await up.WaitForAsync(s => s[0].Phase == ClientPhase.Disconnected).WaitAsync(Wait);
        Assert.Equal("{\"state\":\"active\",\"ds_state\":[{\"type\":\"connecting\",\"value\":{\"mode\":\"offline\",\"state\":{\"type\":\"start\"}}},{\"type\":\"active\"},{\"type\":\"active\"}],"
            + AllZero + "}", await Get(control, "/info"));

        (int status, byte[] body) = await Http1Client.SendAsync(control, "POST", "/info", Wait);
        Assert.Equal(405, status);
        Assert.Contains("\"message\":\"Method Not Allowed\"", Encoding.UTF8.GetString(body));
        (status, _) = await Http1Client.SendAsync(control, "GET", "/nothing", Wait);
        Assert.Equal(404, status);
    }

    [Fact]
    public async Task AControlAddressInUseFailsActivationNamingIt()
    {
        using var taken = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen(1);
        var at = (IPEndPoint)taken.LocalEndPoint!;
        await using RegionSet set = RegionSet.Start();
        await using var up = new CrucibleUpstairs(set.Options(1, o => o with { ControlAddress = at }));
        UpstairsException e = await Assert.ThrowsAsync<UpstairsException>(() => up.ActivateAsync().WaitAsync(Wait));
        Assert.StartsWith($"the upstairs control server cannot listen on {at} (control_addr): ", e.Message);
    }
}

/// <summary>Keeps every formatted log line.</summary>
internal sealed class ListLogger : ILogger
{
    private readonly List<string> _lines = new();

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToArray();
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add(formatter(state, exception));
        }
    }
}

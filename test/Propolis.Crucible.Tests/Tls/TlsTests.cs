using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Propolis.Crucible.Protocol;
using Propolis.Crucible.Tls;

namespace Propolis.Crucible.Tests.Tls;

/// <summary>
/// TLS between upstairs and downstairs over real loopback TCP: the handshake as each side sets
/// it up (client certificate required, server name <c>downstairsN</c>, only the given root
/// trusted), the frames over it, and the errors a user gets for unusable files.
/// </summary>
public sealed class TlsTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly TempDir _dir = new();
    private readonly TestPki _ca;
    private readonly TestPki _otherCa;

    public TlsTests()
    {
        _ca = TestPki.Create(_dir.Path, "root one");
        _otherCa = TestPki.Create(_dir.Path, "root two");
    }

    public void Dispose() => _dir.Dispose();

    private static CrucibleTlsContext Context((string Cert, string Key) files, string root) =>
        CrucibleTlsContext.FromPaths(files.Cert, files.Key, root);

    private static async Task<(Socket Client, Socket Server)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task connect = client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await listener.AcceptAsync();
        await connect;
        return (client, server);
    }

    /// <summary>Runs both handshakes; returns each side's stream or its exception.</summary>
    private static async Task<(Task<SslStream> Client, Task<SslStream> Server)> HandshakeAsync(CrucibleTlsContext upstairs,
        CrucibleTlsContext downstairs, int clientId)
    {
        (Socket c, Socket s) = await ConnectedPairAsync();
        Task<SslStream> server = downstairs.AcceptAsync(s, CancellationToken.None);
        Task<SslStream> client = upstairs.ConnectAsync(c, clientId, CancellationToken.None);
        try
        {
            await Task.WhenAll(client, server).WaitAsync(Wait);
        }
        catch (CrucibleTlsException)
        {
            // One side refused: the other then fails or succeeds; make sure both have finished.
            if (server.IsCompletedSuccessfully)
            {
                await server.Result.DisposeAsync();
            }
            if (client.IsCompletedSuccessfully)
            {
                await client.Result.DisposeAsync();
            }
            await Task.WhenAll(client.ContinueWith(_ => { }), server.ContinueWith(_ => { })).WaitAsync(Wait);
        }
        return (client, server);
    }

    [Fact]
    public async Task MutuallyTrustedSidesHandshakeAndCarryFramesWithBulkData()
    {
        using CrucibleTlsContext up = Context(_ca.Issue("upstairs"), _ca.RootPem);
        using CrucibleTlsContext down = Context(_ca.Issue("downstairs", "downstairs1"), _ca.RootPem);
        (Task<SslStream> client, Task<SslStream> server) = await HandshakeAsync(up, down, clientId: 1);
        await using var upstairs = new CrucibleFrameConnection(await client);
        await using var downstairs = new CrucibleFrameConnection(await server);
        Assert.Equal("CN=upstairs", (await server).RemoteCertificate!.Subject);

        var header = new WriteHeader(Guid.NewGuid(), Guid.NewGuid(), new JobId(1000), ValueArray<JobId>.Empty,
            new BlockIndex(0), new[] { new BlockContext(1, null), new BlockContext(2, null) });
        byte[] data = Enumerable.Range(0, 1024).Select(i => (byte)(i * 7)).ToArray();
        byte[] big = new byte[CrucibleFrameConnection.DefaultReceiveBufferSize * 2];
        new Random(5).NextBytes(big);
        await upstairs.SendAsync(new Message.Write(header, data));
        await upstairs.SendAsync(new Message.Write(header with { JobId = new JobId(1001) }, big));
        using ReceivedMessage? r1 = await downstairs.ReceiveAsync();
        using ReceivedMessage? r2 = await downstairs.ReceiveAsync();
        Assert.Equal(data, ((Message.Write)r1!.Message).Data.ToArray());
        Assert.Equal(new JobId(1001), ((Message.Write)r2!.Message).Header.JobId);
        Assert.Equal(big, ((Message.Write)r2.Message).Data.ToArray());

        await downstairs.SendAsync(Message.Imok.Instance);
        using ReceivedMessage? pong = await upstairs.ReceiveAsync();
        Assert.IsType<Message.Imok>(pong!.Message);
    }

    [Fact]
    public async Task DownstairsRefusesAClientCertificateFromAnotherRoot()
    {
        using CrucibleTlsContext up = Context(_otherCa.Issue("intruder"), _ca.RootPem);
        using CrucibleTlsContext down = Context(_ca.Issue("downstairs", "downstairs0"), _ca.RootPem);
        (_, Task<SslStream> server) = await HandshakeAsync(up, down, clientId: 0);
        CrucibleTlsException e = await Assert.ThrowsAsync<CrucibleTlsException>(() => server);
        Assert.StartsWith("the upstairs client certificate was refused: it is not trusted by root_cert_pem", e.Message);
        Assert.Contains(_ca.RootPem, e.Message);
    }

    [Fact]
    public async Task DownstairsRefusesAClientWithoutACertificate()
    {
        using CrucibleTlsContext down = Context(_ca.Issue("downstairs", "downstairs0"), _ca.RootPem);
        (Socket c, Socket s) = await ConnectedPairAsync();
        Task<SslStream> server = down.AcceptAsync(s, CancellationToken.None);
        await using var plain = new SslStream(new NetworkStream(c, ownsSocket: true), false, (_, _, _, _) => true);
        Task client = plain.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "downstairs0" });
        CrucibleTlsException e = await Assert.ThrowsAsync<CrucibleTlsException>(() => server.WaitAsync(Wait));
        Assert.Contains("the peer presented no certificate", e.Message);
        await client.ContinueWith(_ => { });
    }

    [Fact]
    public async Task UpstairsRefusesADownstairsCertificateFromAnotherRoot()
    {
        using CrucibleTlsContext up = Context(_ca.Issue("upstairs"), _ca.RootPem);
        using CrucibleTlsContext down = Context(_otherCa.Issue("impostor", "downstairs2"), _otherCa.RootPem);
        (Task<SslStream> client, _) = await HandshakeAsync(up, down, clientId: 2);
        CrucibleTlsException e = await Assert.ThrowsAsync<CrucibleTlsException>(() => client);
        Assert.StartsWith("the downstairs certificate for 'downstairs2' was refused: it is not trusted by root_cert_pem", e.Message);
    }

    [Fact]
    public async Task UpstairsRefusesADownstairsCertificateForAnotherClientSlot()
    {
        using CrucibleTlsContext up = Context(_ca.Issue("upstairs"), _ca.RootPem);
        using CrucibleTlsContext down = Context(_ca.Issue("downstairs", "downstairs1"), _ca.RootPem);
        (Task<SslStream> client, _) = await HandshakeAsync(up, down, clientId: 0);
        CrucibleTlsException e = await Assert.ThrowsAsync<CrucibleTlsException>(() => client);
        Assert.StartsWith("the downstairs certificate for 'downstairs0' was refused: it does not name that server", e.Message);
    }

    [Fact]
    public void AMissingFileIsNamedWithItsRole()
    {
        (string cert, string key) = _ca.Issue("upstairs");
        string missing = _dir.Sub("nope.pem");
        CrucibleTlsException e = Assert.Throws<CrucibleTlsException>(() => CrucibleTlsContext.FromPaths(cert, key, missing));
        Assert.StartsWith($"root_cert_pem '{missing}' cannot be read: ", e.Message);
        Assert.Equal("root_cert_pem", e.File);

        e = Assert.Throws<CrucibleTlsException>(() => CrucibleTlsContext.FromPaths(missing, key, _ca.RootPem, ("--cert-pem", "--key-pem", "--root-cert-pem")));
        Assert.StartsWith($"--cert-pem '{missing}' cannot be read: ", e.Message);
    }

    [Fact]
    public void AFileThatIsNotPemIsNamed()
    {
        (string cert, string key) = _ca.Issue("upstairs");
        string junk = _dir.Sub("junk.pem");
        File.WriteAllText(junk, "not a certificate\n");
        CrucibleTlsException e = Assert.Throws<CrucibleTlsException>(() => CrucibleTlsContext.FromPaths(junk, key, _ca.RootPem));
        Assert.Equal($"cert_pem '{junk}' holds no PEM certificate (expected a 'BEGIN CERTIFICATE' block)", e.Message);
        e = Assert.Throws<CrucibleTlsException>(() => CrucibleTlsContext.FromPaths(cert, junk, _ca.RootPem));
        Assert.StartsWith($"key_pem '{junk}' holds no PEM private key", e.Message);
        Assert.Equal("key_pem", e.File);
    }

    [Fact]
    public void AKeyOfAnotherCertificateIsRefused()
    {
        (string cert, _) = _ca.Issue("upstairs");
        (_, string otherKey) = _ca.Issue("other");
        CrucibleTlsException e = Assert.Throws<CrucibleTlsException>(() => CrucibleTlsContext.FromPaths(cert, otherKey, _ca.RootPem));
        Assert.StartsWith($"key_pem '{otherKey}' cannot be used with the certificate in cert_pem '{cert}'", e.Message);
    }
}

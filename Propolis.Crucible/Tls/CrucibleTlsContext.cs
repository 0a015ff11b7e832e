using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Propolis.Crucible.Tls;

/// <summary>
/// TLS between upstairs and downstairs, as crucible's <c>common/src/x509.rs</c> <c>TLSContext</c>:
/// a certificate (PEM, the leaf first, intermediates after it), its private key (PEM) and the
/// root certificates (PEM) both sides trust. The downstairs requires a client certificate and
/// verifies it against the roots (rustls' <c>WebPkiClientVerifier</c>: the chain, not a name);
/// the upstairs presents its certificate and verifies the downstairs' against the roots for the
/// server name <c>downstairs{client id}</c> (<c>upstairs/src/client.rs</c>: <c>downstairs0</c>,
/// <c>downstairs1</c>, <c>downstairs2</c>), so a downstairs certificate must name the client slot
/// it serves in its subject alternative names.
/// </summary>
/// <remarks>The real context reads PKCS#1 RSA keys only (<c>rsa_private_keys</c>); this one reads
/// any PEM key the base library does (PKCS#1 or PKCS#8 RSA, EC), a superset.</remarks>
public sealed class CrucibleTlsContext : IDisposable
{
    private readonly X509Certificate2 _certificate;
    private readonly X509Certificate2Collection _intermediates;
    private readonly X509Certificate2Collection _roots;
    private readonly SslStreamCertificateContext _serverContext;
    private readonly SslStreamCertificateContext _clientContext;
    private readonly string _rootName;

    private CrucibleTlsContext(string certPem, string keyPem, string rootCertPem, string rootName, X509Certificate2 certificate,
        X509Certificate2Collection intermediates, X509Certificate2Collection roots)
    {
        CertPemPath = certPem;
        KeyPemPath = keyPem;
        RootCertPemPath = rootCertPem;
        _rootName = rootName;
        _certificate = certificate;
        _intermediates = intermediates;
        _roots = roots;
        _serverContext = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
        _clientContext = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
    }

    public string CertPemPath { get; }

    public string KeyPemPath { get; }

    public string RootCertPemPath { get; }

    /// <summary>The leaf certificate this side presents.</summary>
    public X509Certificate2 Certificate => _certificate;

    /// <summary>The TLS server name the upstairs expects of the downstairs it knows as <paramref name="clientId"/>.</summary>
    public static string ServerName(int clientId) => $"downstairs{clientId}";

    /// <summary>
    /// Loads the three files (crucible <c>TLSContext::from_paths</c>). Throws
    /// <see cref="CrucibleTlsException"/> naming the file that cannot be read or holds no
    /// usable certificate or key.
    /// </summary>
    /// <param name="names">How the three files are named to the user (default: the config keys
    /// <c>cert_pem</c>, <c>key_pem</c>, <c>root_cert_pem</c>; the downstairs uses its flags).</param>
    public static CrucibleTlsContext FromPaths(string certPem, string keyPem, string rootCertPem,
        (string Cert, string Key, string Root)? names = null)
    {
        (string certName, string keyName, string rootName) = names ?? ("cert_pem", "key_pem", "root_cert_pem");
        string certText = ReadPem(certPem, certName);
        string keyText = ReadPem(keyPem, keyName);
        string rootText = ReadPem(rootCertPem, rootName);

        X509Certificate2Collection chain = ImportCertificates(certText, certPem, certName);
        X509Certificate2Collection roots = ImportCertificates(rootText, rootCertPem, rootName);
        if (!keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            throw new CrucibleTlsException($"{keyName} '{keyPem}' holds no PEM private key (expected a 'BEGIN RSA PRIVATE KEY', 'BEGIN PRIVATE KEY' or 'BEGIN EC PRIVATE KEY' block)", keyName);
        }
        X509Certificate2 leaf;
        try
        {
            // The first certificate of cert_pem is the leaf; CreateFromPem pairs it with the key.
            leaf = X509Certificate2.CreateFromPem(certText, keyText);
        }
        catch (CryptographicException e)
        {
            throw new CrucibleTlsException($"{keyName} '{keyPem}' cannot be used with the certificate in {certName} '{certPem}': {e.Message}", keyName);
        }
        catch (ArgumentException e)
        {
            throw new CrucibleTlsException($"{keyName} '{keyPem}' is not a usable private key: {e.Message}", keyName);
        }
        var intermediates = new X509Certificate2Collection();
        for (int i = 1; i < chain.Count; i++)
        {
            intermediates.Add(chain[i]);
        }
        chain[0].Dispose();
        return new CrucibleTlsContext(certPem, keyPem, rootCertPem, rootName, leaf, intermediates, roots);
    }

    private static string ReadPem(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new CrucibleTlsException($"{what} '{path}' cannot be read: {e.Message}", what);
        }
    }

    private static X509Certificate2Collection ImportCertificates(string text, string path, string what)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPem(text);
        }
        catch (CryptographicException e)
        {
            throw new CrucibleTlsException($"{what} '{path}' holds a malformed PEM certificate: {e.Message}", what);
        }
        if (collection.Count == 0)
        {
            throw new CrucibleTlsException($"{what} '{path}' holds no PEM certificate (expected a 'BEGIN CERTIFICATE' block)", what);
        }
        return collection;
    }

    /// <summary>A fresh chain policy per handshake (the TLS layer may add to it): only the roots are trusted.</summary>
    private X509ChainPolicy ChainPolicy()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            VerificationTimeIgnored = false,
        };
        policy.CustomTrustStore.AddRange(_roots);
        return policy;
    }

    /// <summary>
    /// The upstairs side: TLS over <paramref name="socket"/> to the downstairs known as
    /// <paramref name="clientId"/>, presenting this certificate and requiring the downstairs'
    /// to chain to the roots and name <c>downstairs{clientId}</c>. Takes the socket; throws
    /// <see cref="CrucibleTlsException"/> saying why the handshake failed.
    /// </summary>
    public async Task<SslStream> ConnectAsync(Socket socket, int clientId, CancellationToken cancellationToken)
    {
        string serverName = ServerName(clientId);
        string? why = null;
        var stream = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false,
            (_, cert, chain, errors) => Verdict(errors, chain, cert, $"the downstairs certificate for '{serverName}'", out why));
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            ClientCertificateContext = _clientContext,
            CertificateChainPolicy = ChainPolicy(),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        try
        {
            await stream.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            return stream;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new CrucibleTlsException(why ?? $"TLS handshake failed: {Describe(e)} (is the downstairs serving TLS, with --cert-pem, --key-pem and --root-cert-pem?)", e);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The downstairs side: TLS over an accepted <paramref name="socket"/>, presenting this
    /// certificate and requiring a client certificate that chains to the roots. Takes the
    /// socket; throws <see cref="CrucibleTlsException"/> saying why the handshake failed.
    /// </summary>
    public async Task<SslStream> AcceptAsync(Socket socket, CancellationToken cancellationToken)
    {
        string? why = null;
        var stream = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false,
            (_, cert, chain, errors) => Verdict(errors, chain, cert, "the upstairs client certificate", out why));
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _serverContext,
            ClientCertificateRequired = true,
            CertificateChainPolicy = ChainPolicy(),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        try
        {
            await stream.AuthenticateAsServerAsync(options, cancellationToken).ConfigureAwait(false);
            return stream;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new CrucibleTlsException(why ?? $"TLS handshake failed: {Describe(e)}", e);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private bool Verdict(SslPolicyErrors errors, X509Chain? chain, X509Certificate? cert, string what, out string? why)
    {
        if (errors == SslPolicyErrors.None)
        {
            why = null;
            return true;
        }
        var reasons = new List<string>();
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            reasons.Add("the peer presented no certificate");
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            reasons.Add($"it does not name that server (subject '{cert?.Subject}'; the name must be among its subject alternative names)");
        }
        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            string status = chain is null
                ? "no chain"
                : string.Join("; ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
            reasons.Add($"it is not trusted by {_rootName} '{RootCertPemPath}' ({status})");
        }
        why = $"{what} was refused: {string.Join(", ", reasons)}";
        return false;
    }

    private static string Describe(Exception e) =>
        e.InnerException is { } inner && inner.Message != e.Message ? $"{e.Message} ({inner.Message})" : e.Message;

    public void Dispose()
    {
        _certificate.Dispose();
        foreach (X509Certificate2 c in _intermediates)
        {
            c.Dispose();
        }
        foreach (X509Certificate2 c in _roots)
        {
            c.Dispose();
        }
    }
}

/// <summary>A TLS file that cannot be used, or a handshake that failed; the message says which and why.</summary>
public sealed class CrucibleTlsException : Exception
{
    public CrucibleTlsException(string message, string? file = null) : base(message)
    {
        File = file;
    }

    /// <summary>Which of the three files is at fault, as it was named to <see cref="CrucibleTlsContext.FromPaths"/>; null for a handshake.</summary>
    public string? File { get; }

    public CrucibleTlsException(string message, Exception inner) : base(message, inner)
    {
    }
}

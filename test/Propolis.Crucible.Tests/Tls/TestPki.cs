using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Propolis.Crucible.Tests.Tls;

/// <summary>
/// A throwaway certificate authority for tests: a self-signed root and leaf certificates it
/// signs, written as PEM files (RSA keys in PKCS#1, the form crucible's <c>x509.rs</c> reads)
/// into a directory. Nothing is checked in; every run makes its own.
/// </summary>
internal sealed class TestPki
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    private readonly X509Certificate2 _root;
    private readonly string _dir;

    private TestPki(string dir, X509Certificate2 root)
    {
        _dir = dir;
        _root = root;
        RootPem = Path.Combine(dir, "root.pem");
        File.WriteAllText(RootPem, root.ExportCertificatePem());
    }

    /// <summary>The root certificate's PEM file.</summary>
    public string RootPem { get; }

    /// <summary>A new root CA named <paramref name="name"/> whose files go to <paramref name="dir"/> (created).</summary>
    public static TestPki Create(string dir, string name = "crucible test root")
    {
        RSA key = RSA.Create(2048); // kept alive with the root, which signs with it
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        X509Certificate2 root = req.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
        string own = Path.Combine(dir, Sanitize(name));
        Directory.CreateDirectory(own);
        return new TestPki(own, root);
    }

    /// <summary>
    /// Issues a certificate for <paramref name="dnsNames"/> (subject alternative names), good for
    /// TLS server and client authentication; returns its PEM certificate and PKCS#1 key files.
    /// </summary>
    public (string CertPem, string KeyPem) Issue(string name, params string[] dnsNames)
    {
        using RSA key = RSA.Create(2048);
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection { ServerAuth, ClientAuth }, false));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_root, true, false));
        if (dnsNames.Length > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (string n in dnsNames)
            {
                san.AddDnsName(n);
            }
            req.CertificateExtensions.Add(san.Build());
        }
        DateTimeOffset now = DateTimeOffset.UtcNow;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 cert = req.Create(_root, now.AddDays(-1), now.AddMonths(6), serial);
        string certPem = Path.Combine(_dir, Sanitize(name) + ".pem");
        string keyPem = Path.Combine(_dir, Sanitize(name) + ".key");
        File.WriteAllText(certPem, cert.ExportCertificatePem());
        File.WriteAllText(keyPem, key.ExportRSAPrivateKeyPem());
        return (certPem, keyPem);
    }

    private static string Sanitize(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) ? c : '-'));
}

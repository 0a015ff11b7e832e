using System.Text.Json;
using Propolis.Crucible.Upstairs;
using Propolis.Crucible.Vcr;

namespace Propolis.Crucible.Tests.Vcr;

public class VcrJsonTests
{
    // The volume of propolis's VCR replacement document (docs/server-send-vcr.md).
    internal const string SeedVolume = """
        {
            "type": "volume",
            "block_size": 4096,
            "id": "0cedae45-3d6e-4d90-b2cb-56f1a1a42a89",
            "read_only_parent": null,
            "sub_volumes": [
                {
                    "type": "region",
                    "block_size": 4096,
                    "blocks_per_extent": 16384,
                    "extent_count": 128,
                    "gen": 1,
                    "opts": {
                        "cert_pem": null,
                        "control": null,
                        "flush_timeout": null,
                        "id": "0cedae45-3d6e-4d90-b2cb-56f1a1a42a89",
                        "key": null,
                        "key_pem": null,
                        "lossy": false,
                        "read_only": false,
                        "root_cert_pem": null,
                        "target": ["127.0.0.1:8810",
                                 "127.0.0.1:8820",
                                 "127.0.0.1:8830"
                        ]
                    }
                }
            ]
        }
        """;

    [Fact]
    public void ParsesTheSeedVolumeWithEveryField()
    {
        var v = Assert.IsType<VolumeRequest>(VolumeConstructionRequest.Parse(SeedVolume));
        Assert.Equal(Guid.Parse("0cedae45-3d6e-4d90-b2cb-56f1a1a42a89"), v.Id);
        Assert.Equal(4096UL, v.BlockSize);
        Assert.Null(v.ReadOnlyParent);
        var r = Assert.IsType<RegionRequest>(Assert.Single(v.SubVolumes));
        Assert.Equal((4096UL, 16384UL, 128u, 1UL), (r.BlockSize, r.BlocksPerExtent, r.ExtentCount, r.Generation));
        Assert.Equal(new[] { "127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8830" }, r.Opts.Target);
        Assert.False(r.Opts.Lossy);
        Assert.False(r.Opts.ReadOnly);
        Assert.Null(r.Opts.Key);
        Assert.Null(r.Opts.FlushTimeout);
        Assert.Equal(new[] { "127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8830" }, v.Targets());

        UpstairsOptions o = r.ToUpstairsOptions();
        Assert.Equal(3, o.Targets.Count);
        Assert.Equal(8820, o.Targets[1].Port);
        Assert.Equal(1UL, o.Generation);
        Assert.Equal(UpstairsOptions.DefaultFlushTimeout, o.FlushTimeout);
        Assert.Null(o.EncryptionKey);
    }

    [Fact]
    public void WritesSerdesShapeAndRoundTrips()
    {
        var r = new RegionRequest
        {
            BlockSize = 512,
            BlocksPerExtent = 8,
            ExtentCount = 2,
            Generation = 3,
            Opts = new CrucibleOpts
            {
                Id = Guid.Parse("e4396bd0-ede1-48d7-ac14-3d2094dfba5b"),
                Target = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
                Lossy = false,
                FlushTimeout = 1.5f,
                Key = "tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=",
                ReadOnly = true,
            },
        };
        var volume = new VolumeRequest { Id = Guid.Empty, BlockSize = 512, SubVolumes = [r], ReadOnlyParent = new FileRequest { Id = Guid.Empty, BlockSize = 512, Path = "/p" } };
        string json = volume.ToJson();
        using (JsonDocument doc = JsonDocument.Parse(json))
        {
            JsonElement root = doc.RootElement;
            Assert.Equal("volume", root.GetProperty("type").GetString());
            Assert.Equal("file", root.GetProperty("read_only_parent").GetProperty("type").GetString());
            JsonElement sub = root.GetProperty("sub_volumes")[0];
            Assert.Equal("region", sub.GetProperty("type").GetString());
            Assert.Equal(3UL, sub.GetProperty("gen").GetUInt64());
            JsonElement opts = sub.GetProperty("opts");
            Assert.Equal(JsonValueKind.Null, opts.GetProperty("cert_pem").ValueKind); // Options are written as null
            Assert.Equal(1.5, opts.GetProperty("flush_timeout").GetDouble());
            Assert.Equal(new[] { "id", "target", "lossy", "flush_timeout", "key", "cert_pem", "key_pem", "root_cert_pem", "control", "read_only" },
                opts.EnumerateObject().Select(p => p.Name));
        }
        var back = Assert.IsType<VolumeRequest>(VolumeConstructionRequest.Parse(json));
        Assert.Equal(r, back.SubVolumes[0]);
        Assert.Equal(TimeSpan.FromSeconds(1.5), ((RegionRequest)back.SubVolumes[0]).ToUpstairsOptions().FlushTimeout);
        Assert.Equal(32, ((RegionRequest)back.SubVolumes[0]).ToUpstairsOptions().EncryptionKey!.Length);
        Assert.IsType<UrlRequest>(VolumeConstructionRequest.Parse("""{"type":"url","id":"0cedae45-3d6e-4d90-b2cb-56f1a1a42a89","block_size":512,"url":"http://x/y"}"""));
    }

    [Theory]
    [InlineData("""{"type":"region","block_size":512,"blocks_per_extent":8,"gen":1,"opts":{"id":"0cedae45-3d6e-4d90-b2cb-56f1a1a42a89","target":[],"lossy":false,"read_only":false}}""", "extent_count")]
    [InlineData("""{"type":"disk","id":"0cedae45-3d6e-4d90-b2cb-56f1a1a42a89","block_size":512}""", "disk")]
    public void RefusesMissingFieldsAndUnknownVariants(string json, string named)
    {
        JsonException e = Assert.ThrowsAny<JsonException>(() => VolumeConstructionRequest.Parse(json));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void ReplaceResultIsSnakeCase()
    {
        Assert.Equal("\"started_already\"", JsonSerializer.Serialize(ReplaceResult.StartedAlready, VcrJsonContext.Default.ReplaceResult));
        Assert.Equal("\"vcr_matches\"", JsonSerializer.Serialize(ReplaceResult.VcrMatches, VcrJsonContext.Default.ReplaceResult));
    }
}

public class VcrReplacementTests
{
    private static VolumeRequest Seed => (VolumeRequest)VolumeConstructionRequest.Parse(VcrJsonTests.SeedVolume);

    private static RegionRequest Region(VolumeRequest v) => (RegionRequest)v.SubVolumes[0];

    private static VolumeRequest WithRegion(VolumeRequest v, Func<RegionRequest, RegionRequest> change) =>
        v with { SubVolumes = [change(Region(v))] };

    private static RegionRequest Targets(RegionRequest r, params string[] t) => r with { Opts = r.Opts with { Target = t } };

    public static TheoryData<string, Func<VolumeRequest, VolumeRequest>, string> Invalid => new()
    {
        { "identical", v => v, "The VCRs have no difference" },
        { "two targets", v => WithRegion(v, r => Targets(r with { Generation = 2 }, "127.0.0.1:8810", "127.0.0.1:9", "127.0.0.1:8")), "multiple different targets" },
        { "generation lower", v => WithRegion(v, r => Targets(r with { Generation = 0 }, "127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8840")), "generation too low" },
        { "block size", v => WithRegion(v, r => r with { BlockSize = 512, Generation = 2 }), "block_size mismatch" },
        { "blocks per extent", v => WithRegion(v, r => r with { BlocksPerExtent = 1, Generation = 2 }), "blocks_per_extent mismatch" },
        { "extent count", v => WithRegion(v, r => r with { ExtentCount = 1, Generation = 2 }), "extent_count mismatch" },
        { "opts id", v => WithRegion(v, r => r with { Generation = 2, Opts = r.Opts with { Id = Guid.Empty } }), "opts id invalid" },
        { "key", v => WithRegion(v, r => r with { Generation = 2, Opts = r.Opts with { Key = "x" } }), "key invalid" },
        { "lossy", v => WithRegion(v, r => r with { Generation = 2, Opts = r.Opts with { Lossy = true } }), "lossy invalid" },
        { "read only", v => WithRegion(v, r => r with { Generation = 2, Opts = r.Opts with { ReadOnly = true } }), "read_only invalid" },
        { "flush timeout", v => WithRegion(v, r => r with { Generation = 2, Opts = r.Opts with { FlushTimeout = 1 } }), "flush_timeout mismatch" },
        { "control", v => WithRegion(v, r => r with { Generation = 2, Opts = r.Opts with { Control = "127.0.0.1:1" } }), "control invalid" },
        { "volume id", v => v with { Id = Guid.Empty }, "ID mismatch" },
        { "volume block size", v => v with { BlockSize = 512 }, "block_size mismatch" },
        { "sub volume count", v => v with { SubVolumes = [] }, "subvolume len mismatch" },
        { "parent added", v => v with { ReadOnlyParent = Region(v) }, "VCR added where there should not be one" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void RefusesInvalidReplacements(string what, Func<VolumeRequest, VolumeRequest> change, string message)
    {
        ReplaceRequestInvalidException e = Assert.Throws<ReplaceRequestInvalidException>(() => VcrReplacement.Check(Seed, change(Seed)));
        Assert.True(e.Message.Contains(message, StringComparison.Ordinal), $"{what}: {e.Message}");
    }

    [Fact]
    public void OneTargetChangedWithTheGenerationRaisedIsAReplacement()
    {
        // The seed's replace.json: gen 2, target[2] 8830 -> 8840.
        VolumeRequest replacement = WithRegion(Seed, r => Targets(r with { Generation = 2 }, "127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8840"));
        Assert.Equal(new ReplacementCheck("127.0.0.1:8830", "127.0.0.1:8840"), VcrReplacement.Check(Seed, replacement));
        // The same generation is allowed ("not lower").
        VolumeRequest sameGen = WithRegion(Seed, r => Targets(r, "127.0.0.1:8811", "127.0.0.1:8820", "127.0.0.1:8830"));
        Assert.Equal(new ReplacementCheck("127.0.0.1:8810", "127.0.0.1:8811"), VcrReplacement.Check(Seed, sameGen));
    }

    [Fact]
    public void OnlyAGenerationBumpMatchesTheOriginal()
    {
        VolumeRequest bumped = WithRegion(Seed, r => r with { Generation = 5 });
        Assert.True(VcrReplacement.Check(Seed, bumped).MatchesOriginal);
    }

    [Fact]
    public void AReadOnlyParentMayGoAwayButNotBeTheOnlyBump()
    {
        VolumeRequest withParent = Seed with { ReadOnlyParent = Region(Seed) };
        VolumeRequest parentGone = WithRegion(Seed, r => r with { Generation = 2 });
        Assert.True(VcrReplacement.Check(withParent, parentGone).MatchesOriginal);
        VolumeRequest parentBumped = withParent with { ReadOnlyParent = Region(Seed) with { Generation = 9 } };
        Assert.Contains("ROP has generation bump", Assert.Throws<ReplaceRequestInvalidException>(() => VcrReplacement.Check(withParent, parentBumped)).Message);
    }

    [Fact]
    public void ARegionCannotBeReplacedByAnotherKindOfRequest()
    {
        VolumeRequest file = Seed with { SubVolumes = [new FileRequest { Id = Guid.Empty, BlockSize = 4096, Path = "/x" }] };
        Assert.Contains("Cannot replace VCR", Assert.Throws<ReplaceRequestInvalidException>(() => VcrReplacement.Check(Seed, file)).Message);
    }
}

public sealed class VcrTlsAndControlTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static RegionRequest Region(CrucibleOpts opts) => new()
    {
        BlockSize = 512,
        BlocksPerExtent = 8,
        ExtentCount = 2,
        Generation = 1,
        Opts = opts,
    };

    private static CrucibleOpts Opts => new()
    {
        Id = Guid.Parse("e4396bd0-ede1-48d7-ac14-3d2094dfba5b"),
        Target = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
        Lossy = true,
        ReadOnly = false,
    };

    [Fact]
    public void CertificatesControlAndLossyReachTheUpstairsOptions()
    {
        var pki = Tls.TestPki.Create(_dir.Path);
        (string cert, string key) = pki.Issue("upstairs");
        UpstairsOptions o = Region(Opts with { CertPem = cert, KeyPem = key, RootCertPem = pki.RootPem, Control = "127.0.0.1:7777" }).ToUpstairsOptions();
        using Propolis.Crucible.Tls.CrucibleTlsContext tls = o.Tls!;
        Assert.Equal(pki.RootPem, tls.RootCertPemPath);
        Assert.Equal("CN=upstairs", tls.Certificate.Subject);
        Assert.Equal(System.Net.IPEndPoint.Parse("127.0.0.1:7777"), o.ControlAddress);
        Assert.True(o.Lossy);
    }

    [Fact]
    public void HalfTheCertificatesOrABadControlAddressIsRefused()
    {
        Assert.Equal("opts.cert_pem, opts.key_pem and opts.root_cert_pem must be given together",
            Assert.Throws<ArgumentException>(() => Region(Opts with { CertPem = "c.pem" }).ToUpstairsOptions()).Message);
        Assert.Equal("control 'nowhere' is not an IP:port socket address",
            Assert.Throws<ArgumentException>(() => Region(Opts with { Control = "nowhere" }).ToUpstairsOptions()).Message);
        Assert.StartsWith("cert_pem '/no/such.pem' cannot be read",
            Assert.Throws<Propolis.Crucible.Tls.CrucibleTlsException>(() =>
                Region(Opts with { CertPem = "/no/such.pem", KeyPem = "/no/k.pem", RootCertPem = "/no/r.pem" }).ToUpstairsOptions()).Message);
    }
}

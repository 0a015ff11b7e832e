using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Http;
using Propolis.Crucible.Upstairs;
using Propolis.Crucible.Vcr;
using Propolis.Standalone.Api;
using Propolis.Standalone.Config;

namespace Propolis.Standalone.Tests.Api;

/// <summary>
/// <c>PUT /instance/disk/{id}/vcr</c> as a handler: the volumes are real <see cref="CrucibleVolume"/>s
/// whose replacement runs crucible's rules (<see cref="VcrReplacement.Check"/>); only the upstairs
/// behind them is stood in for, by the result it would give.
/// </summary>
public sealed class ManagementApiTests
{
    internal static readonly Guid VolumeId = Guid.Parse("e4396bd0-ede1-48d7-ac14-3d2094dfba5b");
    internal const string Key = "tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=";

    internal static CrucibleBlockDev BlockDev(string name = "cru") =>
        new(name, 4096, false, false, 256, 16,
            [IPEndPoint.Parse("127.0.0.1:8810"), IPEndPoint.Parse("127.0.0.1:8820"), IPEndPoint.Parse("127.0.0.1:8830")],
            1, VolumeId, false, null, Convert.FromBase64String(Key), null, null);

    /// <summary>The seed's replace.json for the volume of <see cref="BlockDev"/>: generation and targets given.</summary>
    internal static string VcrText(ulong gen, string t2, string t1 = "127.0.0.1:8820") => $$"""
        {
            "type": "volume",
            "block_size": 4096,
            "id": "{{VolumeId}}",
            "read_only_parent": null,
            "sub_volumes": [
                {
                    "type": "region",
                    "block_size": 4096,
                    "blocks_per_extent": 256,
                    "extent_count": 16,
                    "gen": {{gen}},
                    "opts": {
                        "cert_pem": null,
                        "control": null,
                        "flush_timeout": null,
                        "id": "{{VolumeId}}",
                        "key": "{{Key}}",
                        "key_pem": null,
                        "lossy": false,
                        "read_only": false,
                        "root_cert_pem": null,
                        "target": ["127.0.0.1:8810", "{{t1}}", "{{t2}}"]
                    }
                }
            ]
        }
        """;

    internal static string InlineBody(ulong gen, string t2, string t1 = "127.0.0.1:8820") =>
        $"{{\n\"name\": \"cru\",\n\"vcr\": {VcrText(gen, t2, t1)}\n}}";

    internal static string StringBody(ulong gen, string t2) =>
        JsonSerializer.Serialize(new Dictionary<string, string> { ["name"] = "cru", ["vcr_json"] = VcrText(gen, t2) });

    /// <summary>What the upstairs did with the replacements it was asked for (old, new).</summary>
    private readonly List<(string? Old, string? New)> _replaced = [];

    private CrucibleVolume Volume(string name = "cru") =>
        new(name, CrucibleVolume.RequestFor(BlockDev(name), VolumeId), (original, replacement) =>
        {
            var check = VcrReplacement.Check(original, replacement);
            if (check.MatchesOriginal)
                return ReplaceResult.VcrMatches;
            _replaced.Add((check.Old, check.New));
            return ReplaceResult.Started;
        });

    private ManagementApi Api(params CrucibleVolume[] volumes)
    {
        var api = new ManagementApi(NullLogger.Instance);
        api.Attach(volumes);
        return api;
    }

    private static HttpRequest Put(string path, string body, string contentType = "application/json") =>
        new("PUT", path, new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Content-Type"] = contentType },
            Encoding.UTF8.GetBytes(body));

    private static string VcrPath(object id) => $"/instance/disk/{id}/vcr";

    private static string Message(HttpResponse r)
    {
        using var doc = JsonDocument.Parse(r.Body);
        return doc.RootElement.GetProperty("message").GetString()!;
    }

    [Fact]
    public void TheBuiltRequestIsTheSeedsVolumeOfOneRegion()
    {
        var vcr = CrucibleVolume.RequestFor(BlockDev(), VolumeId);
        Assert.Equal(VolumeConstructionRequest.Parse(VcrText(1, "127.0.0.1:8830")).ToJson(), vcr.ToJson());
        Assert.Equal(VolumeId, vcr.Id);
    }

    [Fact]
    public void AReplacementAsPropolisServerTakesItStartsAndAnswersTheResult()
    {
        var volume = Volume();
        var r = Api(volume).Handle(Put(VcrPath(VolumeId), StringBody(2, "127.0.0.1:8840")));
        Assert.Equal(200, r.Status);
        Assert.Equal("application/json", r.ContentType);
        Assert.Equal("\"started\"", Encoding.UTF8.GetString(r.Body));
        Assert.Equal([("127.0.0.1:8830", "127.0.0.1:8840")], _replaced);
        // The replacement is now what the volume answers to (propolis-server updates its spec).
        Assert.Equal(2UL, ((RegionRequest)volume.Current.SubVolumes[0]).Generation);
    }

    [Fact]
    public void TheSeedsInlineVcrAndTheBlockDevNameAsIdAreAccepted()
    {
        var r = Api(Volume()).Handle(Put(VcrPath("cru"), InlineBody(2, "127.0.0.1:8840")));
        Assert.Equal(200, r.Status);
        Assert.Equal("\"started\"", Encoding.UTF8.GetString(r.Body));
    }

    [Fact]
    public void OnlyTheGenerationRaisedIsVcrMatches()
    {
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), InlineBody(2, "127.0.0.1:8830")));
        Assert.Equal(200, r.Status);
        Assert.Equal("\"vcr_matches\"", Encoding.UTF8.GetString(r.Body));
        Assert.Empty(_replaced);
    }

    [Fact]
    public void ABareRegionIsComparedWithTheVolumesRegion()
    {
        using var doc = JsonDocument.Parse(VcrText(2, "127.0.0.1:8840"));
        var region = doc.RootElement.GetProperty("sub_volumes")[0].GetRawText();
        var body = $"{{\"vcr\": {region}}}";
        var volume = Volume();
        var r = Api(volume).Handle(Put(VcrPath(VolumeId), body));
        Assert.Equal(200, r.Status);
        Assert.Equal("127.0.0.1:8840", ((RegionRequest)volume.Current.SubVolumes[0]).Opts.Target[2]);
    }

    [Fact]
    public void TwoTargetsChangedIsRefusedWithTheRule()
    {
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), InlineBody(2, "127.0.0.1:8840", t1: "127.0.0.1:8850")));
        Assert.Equal(400, r.Status);
        Assert.Equal("Invalid downstairs replace sub_volume multiple different targets: "
            + "[127.0.0.1:8810, 127.0.0.1:8820, 127.0.0.1:8830] vs. [127.0.0.1:8810, 127.0.0.1:8850, 127.0.0.1:8840]", Message(r));
        Assert.Empty(_replaced);
    }

    [Fact]
    public void ALowerGenerationIsRefusedAndTheCurrentVcrIsKept()
    {
        var volume = Volume();
        var api = Api(volume);
        Assert.Equal(200, api.Handle(Put(VcrPath(VolumeId), InlineBody(5, "127.0.0.1:8830"))).Status);
        var r = api.Handle(Put(VcrPath(VolumeId), InlineBody(4, "127.0.0.1:8840")));
        Assert.Equal(400, r.Status);
        Assert.Equal("Invalid downstairs replace New sub_volume generation too low 5 vs. 4", Message(r));
        Assert.Equal(5UL, ((RegionRequest)volume.Current.SubVolumes[0]).Generation);
    }

    [Fact]
    public void TheSameReplacementTwiceIsNoDifferenceTheSecondTime()
    {
        var api = Api(Volume());
        Assert.Equal(200, api.Handle(Put(VcrPath(VolumeId), InlineBody(2, "127.0.0.1:8840"))).Status);
        var r = api.Handle(Put(VcrPath(VolumeId), InlineBody(2, "127.0.0.1:8840")));
        Assert.Equal(400, r.Status);
        Assert.Equal("Invalid downstairs replace The VCRs have no difference", Message(r));
    }

    [Fact]
    public void AnUnknownVolumeIs404NamingTheKnownOnes()
    {
        var r = Api(Volume()).Handle(Put(VcrPath("0cedae45-3d6e-4d90-b2cb-56f1a1a42a89"), StringBody(2, "127.0.0.1:8840")));
        Assert.Equal(404, r.Status);
        Assert.Equal($"No crucible backend for id 0cedae45-3d6e-4d90-b2cb-56f1a1a42a89; its crucible volumes: {VolumeId} ([block_dev.cru])", Message(r));
    }

    [Fact]
    public void ADiskThatIsNotCrucibleIsNamed()
    {
        var api = new ManagementApi(NullLogger.Instance);
        api.Attach([Volume()], [new FileBlockDev("boot", 512, false, false, "/var/vm/disk.img", 8), BlockDev()]);
        var r = api.Handle(Put(VcrPath("boot"), StringBody(2, "127.0.0.1:8840")));
        Assert.Equal(404, r.Status);
        Assert.Equal("disk [block_dev.boot] has backend type \"file\", not \"crucible\": only Crucible volumes can be reconfigured", Message(r));
        Assert.Equal(200, api.Handle(Put(VcrPath("cru"), StringBody(2, "127.0.0.1:8840"))).Status);
    }

    [Fact]
    public void AVmWithoutCrucibleDisksSaysSo()
    {
        var r = Api().Handle(Put(VcrPath(VolumeId), StringBody(2, "127.0.0.1:8840")));
        Assert.Equal(404, r.Status);
        Assert.Equal($"No crucible backend for id {VolumeId}; this VM has no type = \"crucible\" block_dev", Message(r));
    }

    [Fact]
    public void ANameThatIsNotTheVolumesBlockDevIs404()
    {
        var body = InlineBody(2, "127.0.0.1:8840").Replace("\"name\": \"cru\"", "\"name\": \"block2\"");
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), body));
        Assert.Equal(404, r.Status);
        Assert.Equal($"Crucible backend for \"block2\" not found: volume {VolumeId} is [block_dev.cru]", Message(r));
    }

    [Fact]
    public void BadJsonIs400WithLineAndColumn()
    {
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), "{\n  \"name\": \"cru\",\n  \"vcr\": {\"type\": \"volume\",}\n}"));
        Assert.Equal(400, r.Status);
        Assert.StartsWith("invalid request body at line 3, column ", Message(r));
    }

    [Fact]
    public void AWrongValueIs400WithItsPath()
    {
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), InlineBody(2, "127.0.0.1:8840").Replace("\"gen\": 2", "\"gen\": \"two\"")));
        Assert.Equal(400, r.Status);
        Assert.Matches(@"^invalid request body at line 14, column \d+: .*\(\$\.vcr\.sub_volumes\[0\]\.gen\)$", Message(r));
    }

    [Fact]
    public void BadJsonInsideVcrJsonIsLocatedInThatString()
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["vcr_json"] = "{\"type\": \"volume\"\n \"id\": 1}" });
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), body));
        Assert.Equal(400, r.Status);
        Assert.StartsWith("invalid request body vcr_json at line 2, column 2: ", Message(r));
    }

    [Theory]
    [InlineData("", "invalid request body the request body is empty; send {\"name\": BLOCK_DEV, \"vcr_json\": \"VCR as a JSON string\"} or {\"name\": BLOCK_DEV, \"vcr\": {VCR}}")]
    [InlineData("{\"name\": \"cru\"}", "invalid request body the request has neither vcr_json nor vcr; send {\"name\": BLOCK_DEV, \"vcr_json\": \"VCR as a JSON string\"} or {\"name\": BLOCK_DEV, \"vcr\": {VCR}}")]
    [InlineData("{\"vcr_json\": \"{}\", \"vcr\": {\"type\": \"file\", \"id\": \"e4396bd0-ede1-48d7-ac14-3d2094dfba5b\", \"block_size\": 512, \"path\": \"f\"}}", "invalid request body the request has both vcr_json and vcr; send one of them")]
    [InlineData("{\"vcr\": {}}", "invalid request body at line 1, column 11: The JSON payload for polymorphic interface or abstract type 'VolumeConstructionRequest' must specify a type discriminator. ($.vcr)")]
    public void AMalformedRequestSaysWhatToSend(string body, string message)
    {
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), body));
        Assert.Equal(400, r.Status);
        Assert.Equal(message, Message(r));
    }

    [Fact]
    public void AMisspeltFieldIsRefusedNotIgnored()
    {
        var r = Api(Volume()).Handle(Put(VcrPath(VolumeId), "{\"name\": \"cru\", \"vcrjson\": \"{}\"}"));
        Assert.Equal(400, r.Status);
        Assert.Contains("vcrjson", Message(r));
    }

    [Fact]
    public void BeforeTheVmIsBuiltAndAfterItStopsThereIsNoInstance()
    {
        var api = new ManagementApi(NullLogger.Instance);
        var r = api.Handle(Put(VcrPath(VolumeId), StringBody(2, "127.0.0.1:8840")));
        Assert.Equal((424, "no instance: the VM is still being built"), (r.Status, Message(r)));
        api.Attach([Volume()]);
        api.Detach("the VM has stopped");
        r = api.Handle(Put(VcrPath(VolumeId), StringBody(2, "127.0.0.1:8840")));
        Assert.Equal((424, "no instance: the VM has stopped"), (r.Status, Message(r)));
    }

    [Fact]
    public void OtherMethodsPathsAndMediaTypesAreRefused()
    {
        var api = Api(Volume());
        var get = api.Handle(new HttpRequest("GET", VcrPath(VolumeId), new Dictionary<string, string>(), []));
        Assert.Equal((405, "GET is not allowed on /instance/disk/{id}/vcr; use PUT"), (get.Status, Message(get)));
        var other = api.Handle(Put("/instance/disk", "{}"));
        Assert.Equal(404, other.Status);
        var form = api.Handle(Put(VcrPath(VolumeId), StringBody(2, "127.0.0.1:8840"), "application/x-www-form-urlencoded"));
        Assert.Equal(415, form.Status);
        Assert.Empty(_replaced);
    }

    [Theory]
    [InlineData("TrailingCommaNotAllowedBeforeObjectEnd", "Trailing comma not allowed before object end")]
    [InlineData("DeserializeUnableToConvertValue, System.Guid", "the JSON value is not of the type this field takes")]
    [InlineData("DeserializationMustSpecifyTypeDiscriminator, VolumeConstructionRequest", "a VolumeConstructionRequest needs its \"type\" (volume, region, url or file)")]
    [InlineData("UnrecognizedTypeDiscriminator, vol", "unknown \"type\" 'vol' (volume, region, url or file)")]
    [InlineData("JsonRequiredPropertiesMissing, region, 'gen'", "region is missing required fields: 'gen'")]
    [InlineData("UnmappedJsonProperty, vcrjson, the request body", "unknown field 'vcrjson'")]
    [InlineData("The JSON value could not be converted to System.UInt64.", "The JSON value could not be converted to System.UInt64.")]
    public void JsonErrorsReadAsSentencesInThePublishedExecutableToo(string fromFramework, string shown) =>
        Assert.Equal(shown, VcrReplaceBody.Readable(fromFramework));
}

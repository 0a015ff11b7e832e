using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Upstairs;
using Propolis.Crucible.Vcr;
using Propolis.Standalone.Api;
using Propolis.Standalone.Tests.Config;

namespace Propolis.Standalone.Tests.Api;

/// <summary><c>propolis-standalone vcr</c>, run in-process against a management API served on a
/// loopback port (the real <see cref="ApiServer"/>; the upstairs behind the volume is stood in for).</summary>
public sealed class VcrClientTests : IDisposable
{
    private readonly ConfigFixture _f = new();
    private readonly ManagementApi _api = new(NullLogger.Instance);
    private readonly ApiServer _server;
    private int _replacements;

    public VcrClientTests()
    {
        _api.Attach([new CrucibleVolume("cru", CrucibleVolume.RequestFor(ManagementApiTests.BlockDev(), ManagementApiTests.VolumeId),
            (o, n) =>
            {
                if (VcrReplacement.Check(o, n).MatchesOriginal)
                    return ReplaceResult.VcrMatches;
                _replacements++;
                return ReplaceResult.Started;
            })]);
        _server = ApiServer.Start(new IPEndPoint(IPAddress.Loopback, 0), _api, NullLogger.Instance);
    }

    public void Dispose()
    {
        _server.Dispose();
        _f.Dispose();
    }

    private string Addr => _server.LocalEndPoint.ToString();

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        int code = Cli.Run(args, stdout, stderr, _ => null, _ => NullLoggerFactory.Instance);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void AnAcceptedReplacementPrintsTheResult()
    {
        var file = _f.WriteText("replace.json", ManagementApiTests.InlineBody(2, "127.0.0.1:8840"));
        var (code, stdout, stderr) = Run("vcr", "--api", Addr, "-u", ManagementApiTests.VolumeId.ToString(), "--vcr-replace", file);
        Assert.Equal("", stderr);
        Assert.Equal((0, "started\n"), (code, stdout));
        Assert.Equal(1, _replacements);
    }

    [Fact]
    public void PropolisServersStringFormIsSentAsIs()
    {
        var file = _f.WriteText("replace.json", ManagementApiTests.StringBody(2, "127.0.0.1:8830"));
        var (code, stdout, _) = Run("vcr", "--api", Addr, "--uuid", "cru", "--vcr-replace", file);
        Assert.Equal((0, "vcr_matches\n"), (code, stdout));
    }

    [Fact]
    public void ARefusalExitsOneWithTheServersMessage()
    {
        var file = _f.WriteText("replace.json", ManagementApiTests.InlineBody(2, "127.0.0.1:8840", t1: "127.0.0.1:8850"));
        var (code, stdout, stderr) = Run("vcr", "--api", Addr, "-u", ManagementApiTests.VolumeId.ToString(), "--vcr-replace", file);
        Assert.Equal((1, ""), (code, stdout));
        Assert.Equal($"propolis-standalone: vcr: {Addr} refused the request (HTTP 400): Invalid downstairs replace sub_volume multiple different targets: "
            + "[127.0.0.1:8810, 127.0.0.1:8820, 127.0.0.1:8830] vs. [127.0.0.1:8810, 127.0.0.1:8850, 127.0.0.1:8840]\n", stderr);
        Assert.Equal(0, _replacements);
    }

    [Fact]
    public void AnUnknownVolumeExitsOneWithTheServersMessage()
    {
        var file = _f.WriteText("replace.json", ManagementApiTests.InlineBody(2, "127.0.0.1:8840"));
        var (code, _, stderr) = Run("vcr", "--api", Addr, "-u", "block2", "--vcr-replace", file);
        Assert.Equal(1, code);
        Assert.Equal($"propolis-standalone: vcr: {Addr} refused the request (HTTP 404): No crucible backend for id block2; its crucible volumes: {ManagementApiTests.VolumeId} ([block_dev.cru])\n", stderr);
    }

    [Fact]
    public void BadJsonInTheFileIsLocatedAndNothingIsSent()
    {
        var file = _f.WriteText("replace.json", "{\n  \"name\": \"cru\",\n  \"vcr\": {\"type\": \"volume\",}\n}");
        var (code, _, stderr) = Run("vcr", "--api", Addr, "-u", "cru", "--vcr-replace", file);
        Assert.Equal(2, code);
        var lines = stderr.TrimEnd('\n').Split('\n');
        Assert.StartsWith($"{file}:3:", lines[0]);
        Assert.Equal($"propolis-standalone: vcr: {file} is not a valid request ({VcrReplaceBody.Shape}); nothing was sent", lines[1]);
        Assert.Equal(0, _replacements);
    }

    [Fact]
    public void AMissingFileExitsTwo()
    {
        var file = _f.PathOf("absent.json");
        var (code, _, stderr) = Run("vcr", "--api", Addr, "-u", "cru", "--vcr-replace", file);
        Assert.Equal(2, code);
        Assert.Equal($"propolis-standalone: vcr: cannot read {file}: no such file\n", stderr);
    }

    [Fact]
    public void NoServerAtTheAddressExitsOneSayingWhatToCheck()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var file = _f.WriteText("replace.json", ManagementApiTests.InlineBody(2, "127.0.0.1:8840"));
        var (code, _, stderr) = Run("vcr", "--api", $"127.0.0.1:{port}", "-u", "cru", "--vcr-replace", file);
        Assert.Equal(1, code);
        Assert.StartsWith($"propolis-standalone: vcr: cannot reach 127.0.0.1:{port}: ", stderr);
        Assert.EndsWith($"(is propolis-standalone running with --api 127.0.0.1:{port}?)\n", stderr);
    }

    [Theory]
    [InlineData("--api", "localhost:55400", "'localhost:55400' is not an IP:PORT address")]
    [InlineData("--api", "127.0.0.1", "'127.0.0.1' is not an IP:PORT address")]
    public void ABadAddressIsAUsageError(string option, string value, string message)
    {
        var (code, _, stderr) = Run("vcr", option, value, "-u", "cru", "--vcr-replace", "replace.json");
        Assert.Equal(64, code);
        Assert.Contains(message, stderr);
        Assert.EndsWith("usage: propolis-standalone vcr --api ADDR -u ID --vcr-replace FILE (see vcr --help)\n", stderr);
    }

    [Fact]
    public void MissingOptionsAreAUsageError()
    {
        var (code, _, stderr) = Run("vcr", "--api", Addr);
        Assert.Equal(64, code);
        Assert.Contains("--uuid", stderr);
        Assert.Contains("--vcr-replace", stderr);
    }

    [Fact]
    public void ATakenAddressIsAClearErrorAtStart()
    {
        var e = Assert.Throws<ApiBindException>(() => ApiServer.Start(_server.LocalEndPoint, _api, NullLogger.Instance));
        Assert.StartsWith($"--api {Addr}: cannot listen there: ", e.Message);
    }
}

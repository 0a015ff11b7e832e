using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Crucible.Downstairs;
using Propolis.Crucible.Regions;
using Propolis.Crucible.Upstairs;
using Propolis.Standalone.Api;
using Propolis.Standalone.Config;
using Propolis.Standalone.Tests.Config;
using CrucibleUpstairs = Propolis.Crucible.Upstairs.Upstairs;

namespace Propolis.Standalone.Tests.Api;

/// <summary>
/// The whole path with real parts: four downstairs in this process, an upstairs on the first three
/// built from a crucible block_dev, the management API on a loopback port, and
/// <c>propolis-standalone vcr</c> sending the replacement of target 2 by the fourth. The fourth
/// downstairs ends up holding what the other two hold, writes made during the repair included.
/// </summary>
public sealed class ReplaceWithDownstairsTests : IAsyncLifetime
{
    private const int BlockSize = 512;
    private const ulong BlocksPerExtent = 8;
    private const uint ExtentCount = 4;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly ConfigFixture _f = new();
    private readonly List<string> _dirs = [];
    private readonly List<DownstairsHost> _hosts = [];

    public Task InitializeAsync()
    {
        for (int i = 0; i < 4; i++)
        {
            var dir = _f.PathOf($"region{i}");
            using (Region.Create(dir, RegionDefinition.ForNewRegion(BlockSize, BlocksPerExtent, ExtentCount, Guid.NewGuid(), encrypted: true)))
            {
            }
            _dirs.Add(dir);
            _hosts.Add(DownstairsHost.Start(new DownstairsRunOptions { Address = IPAddress.Loopback, Port = 0, DataDirectory = dir },
                NullLoggerFactory.Instance));
        }
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await StopHostsAsync();
        _f.Dispose();
    }

    private async Task StopHostsAsync()
    {
        foreach (var h in _hosts)
            await h.DisposeAsync();
        _hosts.Clear();
    }

    private CrucibleBlockDev BlockDev(ulong generation, params int[] targets) =>
        new("cru", BlockSize, false, false, BlocksPerExtent, ExtentCount, [.. targets.Select(i => _hosts[i].Address)],
            generation, ManagementApiTests.VolumeId, false, 0.05, Convert.FromBase64String(ManagementApiTests.Key), null, null);

    private static byte[] Pattern(int blocks, byte seed) =>
        [.. Enumerable.Range(0, blocks * BlockSize).Select(i => (byte)(seed + i * 7))];

    private (byte[] Data, Propolis.Crucible.Protocol.BlockContext?[] Contexts) RegionData(int i)
    {
        using var r = Region.Open(_dirs[i], readOnly: true);
        var data = new byte[BlocksPerExtent * ExtentCount * BlockSize];
        var contexts = new Propolis.Crucible.Protocol.BlockContext?[BlocksPerExtent * ExtentCount];
        for (uint e = 0; e < ExtentCount; e++)
        {
            r.Read(e, 0, data.AsSpan((int)(e * BlocksPerExtent * BlockSize), (int)BlocksPerExtent * BlockSize),
                contexts.AsSpan((int)(e * BlocksPerExtent), (int)BlocksPerExtent));
        }
        return (data, contexts);
    }

    [Fact]
    public async Task TheFourthDownstairsEndsUpIdenticalToTheOtherTwo()
    {
        var config = BlockDev(1, 0, 1, 2);
        var options = new UpstairsOptions
        {
            Targets = config.Targets,
            Generation = 1,
            UpstairsId = ManagementApiTests.VolumeId,
            EncryptionKey = config.EncryptionKey,
            BlockSize = BlockSize,
            BlocksPerExtent = BlocksPerExtent,
            ExtentCount = ExtentCount,
            FlushTimeout = TimeSpan.FromMilliseconds(50),
        };
        var up = new CrucibleUpstairs(options, NullLogger.Instance);
        await using (up)
        {
            await up.ActivateAsync().WaitAsync(Wait);
            await up.WriteAsync(0, Pattern(32, 1)).WaitAsync(Wait);
            await up.FlushAsync().WaitAsync(Wait);

            var api = new ManagementApi(NullLogger.Instance);
            api.Attach([CrucibleVolume.For(config, up)]);
            using var server = ApiServer.Start(new IPEndPoint(IPAddress.Loopback, 0), api, NullLogger.Instance);
            var replacement = CrucibleVolume.RequestFor(BlockDev(2, 0, 1, 3), ManagementApiTests.VolumeId);
            var file = _f.WriteText("replace.json", JsonSerializer.Serialize(
                new Dictionary<string, string> { ["name"] = "cru", ["vcr_json"] = replacement.ToJson() }));

            var stdout = new StringWriter { NewLine = "\n" };
            var stderr = new StringWriter { NewLine = "\n" };
            int code = Cli.Run(["vcr", "--api", server.LocalEndPoint.ToString(), "-u", ManagementApiTests.VolumeId.ToString(), "--vcr-replace", file],
                stdout, stderr, _ => null, _ => NullLoggerFactory.Instance);
            Assert.Equal("", stderr.ToString());
            Assert.Equal((0, "started\n"), (code, stdout.ToString()));
            Assert.Contains(up.Status(), s => s.Target.Equals(_hosts[3].Address));

            // The guest keeps writing while the fourth is repaired.
            for (byte b = 0; b < 8; b++)
                await up.WriteAsync((ulong)(b * 4), Pattern(3, (byte)(b + 40))).WaitAsync(Wait);
            await up.WaitForAsync(_ => up.LiveRepairsCompleted == 1).WaitAsync(Wait);
            await up.WriteAsync(30, Pattern(2, 99)).WaitAsync(Wait);
            await up.FlushAsync().WaitAsync(Wait);
        }
        await StopHostsAsync();

        var first = RegionData(0);
        foreach (var i in (int[])[1, 3])
        {
            var (data, contexts) = RegionData(i);
            Assert.True(first.Data.AsSpan().SequenceEqual(data), $"region {i}'s blocks differ from region 0's");
            Assert.Equal(first.Contexts, contexts);
        }
        // The replaced downstairs stopped getting writes when it left.
        Assert.False(first.Data.AsSpan().SequenceEqual(RegionData(2).Data));
    }
}

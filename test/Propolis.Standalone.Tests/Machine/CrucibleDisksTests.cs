using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Propolis.Standalone.Config;
using Propolis.Standalone.Machine;

namespace Propolis.Standalone.Tests.Machine;

public class CrucibleDisksTests
{
    private static CrucibleBlockDev Dev(CrucibleTls? tls = null, IPEndPoint? control = null, ulong generation = 1) =>
        new("cru", 4096, false, false, 16384, 128,
            [IPEndPoint.Parse("127.0.0.1:1"), IPEndPoint.Parse("127.0.0.1:2"), IPEndPoint.Parse("127.0.0.1:3")],
            generation, null, false, null, null, tls, control);

    [Fact]
    public void AnUnreadableTlsFileIsNamedWithItsBlockDev()
    {
        string missing = Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid().ToString("N"), "cert.pem");
        var e = Assert.Throws<MachineException>(() => CrucibleDisks.Create(Dev(tls: new CrucibleTls(missing, "k", "r")), NullLoggerFactory.Instance));
        Assert.StartsWith($"[block_dev.cru]: cert_pem '{missing}' cannot be read: ", e.Message);
    }

    [Fact]
    public void GenerationZeroIsRefusedBeforeConnecting()
    {
        var e = Assert.Throws<MachineException>(() => CrucibleDisks.Create(Dev(generation: 0), NullLoggerFactory.Instance));
        Assert.Equal("[block_dev.cru]: generation 0 is illegal: use 1 or more", e.Message);
    }
}

using Propolis.Standalone.Config;

namespace Propolis.Standalone.Tests.Config;

public sealed class ValuesTests
{
    [Theory]
    [InlineData("127.0.0.1:3810", "127.0.0.1:3810")]
    [InlineData("[::1]:3810", "[::1]:3810")]
    [InlineData("[fd00:1122:3344::1]:0", "[fd00:1122:3344::1]:0")]
    [InlineData("255.255.255.255:65535", "255.255.255.255:65535")]
    public void SocketAddressesAsRustReadsThem(string text, string expected)
    {
        Assert.Equal(expected, Values.ParseSocketAddress(text, out _)?.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1", "the port is missing (\"ip:port\")")]
    [InlineData("127.0.0.1:", "'' is not a port number (0 to 65535)")]
    [InlineData("127.0.0.1:65536", "'65536' is not a port number (0 to 65535)")]
    [InlineData("127.0.0.1:-1", "'-1' is not a port number (0 to 65535)")]
    [InlineData("127.1:80", "'127.1' is not an IPv4 address (host names are not resolved)")]
    [InlineData("127.0.0.01:80", "'127.0.0.01' is not an IPv4 address (host names are not resolved)")]
    [InlineData("256.0.0.1:80", "'256.0.0.1' is not an IPv4 address (host names are not resolved)")]
    [InlineData("::1:80", "an IPv6 address must be in brackets: \"[addr]:port\"")]
    [InlineData("[::1]", "an IPv6 address is written \"[addr]:port\"")]
    [InlineData("[1.2.3.4]:80", "'1.2.3.4' is not an IPv6 address")]
    public void BadSocketAddressesSayWhy(string text, string reason)
    {
        Assert.Null(Values.ParseSocketAddress(text, out var why));
        Assert.Equal(reason, why);
    }

    [Theory]
    [InlineData("e4396bd0-ede1-48d7-ac14-3d2094dfba5b")]
    [InlineData("E4396BD0EDE148D7AC143D2094DFBA5B")]
    [InlineData("{e4396bd0-ede1-48d7-ac14-3d2094dfba5b}")]
    [InlineData("urn:uuid:e4396bd0-ede1-48d7-ac14-3d2094dfba5b")]
    public void UuidForms(string text)
    {
        Assert.Equal(Guid.Parse("e4396bd0-ede1-48d7-ac14-3d2094dfba5b"), Values.ParseUuid(text));
    }

    [Theory]
    [InlineData("e4396bd0-ede1-48d7-ac14-3d2094dfba5")]
    [InlineData("e4396bd0-ede1-48d7-ac14-3d2094dfba5bb")]
    [InlineData("not-a-uuid")]
    public void BadUuids(string text) => Assert.Null(Values.ParseUuid(text));

    [Theory]
    [InlineData("7", 7u, null)]
    [InlineData("0x7", 7u, null)]
    [InlineData("7-0", 7u, 0u)]
    [InlineData("0x80000001", 0x8000_0001u, null)]
    [InlineData("d-1", 0xdu, 1u)]
    public void CpuidLeafKeys(string key, uint leaf, uint? subleaf)
    {
        Assert.Equal((leaf, subleaf), Values.ParseCpuidLeaf(key));
    }

    [Theory]
    [InlineData("")]
    [InlineData("0x")]
    [InlineData("g")]
    [InlineData("7-")]
    [InlineData("100000000")]
    public void BadCpuidLeafKeys(string key) => Assert.Null(Values.ParseCpuidLeaf(key));

    [Theory]
    [InlineData("cpu", "cpus")]
    [InlineData("pci_path", "pci-path")]
    [InlineData("blocksize", "block_size")]
    [InlineData("memroy", "memory")]
    [InlineData("Name", "name")]
    [InlineData("frobnicate", null)]
    public void ClosestNames(string typo, string? expected)
    {
        var keys = new[] { "name", "cpus", "memory", "pci-path", "block_size", "bootrom" };
        Assert.Equal(expected, Suggest.Closest(typo, keys));
    }

    [Theory]
    [InlineData(512, "512 B")]
    [InlineData(4096, "4 KiB")]
    [InlineData(5000, "5000 B")]
    [InlineData(1L << 36, "64 GiB")]
    [InlineData(3L << 20, "3 MiB")]
    public void Sizes(long bytes, string text) => Assert.Equal(text, Values.FormatSize(bytes));
}

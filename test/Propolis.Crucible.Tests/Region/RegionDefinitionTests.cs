using System.Text;
using Propolis.Crucible.Regions;

namespace Propolis.Crucible.Tests.Regions;

public class RegionDefinitionTests
{
    private static readonly Guid TestUuid = Guid.Parse("12345678-90ab-cdef-1234-567890abcdef");

    /// <summary>serde_json 1.0.87 <c>to_vec_pretty</c> of crucible's RegionDefinition plus the newline
    /// <c>write_json</c> appends (golden-xcheck.rs).</summary>
    private const string DefaultRegionJson = """
        {
          "block_size": 512,
          "extent_size": {
            "value": 100,
            "shift": 9
          },
          "extent_count": 15,
          "uuid": "12345678-90ab-cdef-1234-567890abcdef",
          "encrypted": false,
          "database_read_version": 1,
          "database_write_version": 1
        }

        """;

    private static RegionDefinition Default => RegionDefinition.ForNewRegion(512, 100, 15, TestUuid, false);

    [Fact]
    public void JsonIsByteForByteWhatSerdeJsonWrites()
    {
        Assert.Equal(DefaultRegionJson, Default.ToJson());
        Assert.Equal(Encoding.UTF8.GetBytes(DefaultRegionJson), Default.ToJsonUtf8());
    }

    [Fact]
    public void ForNewRegionDerivesTheShiftFromTheBlockSize()
    {
        RegionDefinition d = RegionDefinition.ForNewRegion(4096, 16384, 3, TestUuid, true);
        Assert.Equal(new Block(16384, 12), d.ExtentSize);
        Assert.Contains("\"shift\": 12", d.ToJson());
        Assert.Contains("\"encrypted\": true", d.ToJson());
        Assert.Equal(4096UL * 16384 * 3, d.TotalSize);
    }

    [Fact]
    public void JsonRoundTrips()
    {
        RegionDefinition d = RegionDefinition.ForNewRegion(4096, 7, 1234, Guid.NewGuid(), true);
        Assert.Equal(d, RegionDefinition.FromJson(d.ToJsonUtf8()));
    }

    [Fact]
    public void ParsingIgnoresFieldOrderWhitespaceAndUnknownFields()
    {
        const string json = """{"uuid":"12345678-90ab-cdef-1234-567890abcdef","extra":[1,{"x":2}],"encrypted":false,"extent_count":15,"database_write_version":1,"database_read_version":1,"extent_size":{"shift":9,"value":100},"block_size":512}""";
        Assert.Equal(Default, RegionDefinition.FromJson(Encoding.UTF8.GetBytes(json)));
    }

    [Theory]
    [InlineData("block_size")]
    [InlineData("uuid")]
    [InlineData("database_write_version")]
    public void AMissingFieldIsNamed(string field)
    {
        string json = Default.ToJson().Replace($"\"{field}\"", "\"renamed\"");
        var e = Assert.Throws<RegionException>(() => RegionDefinition.FromJson(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(RegionError.RegionIncompatible, e.Error);
        Assert.Contains(field, e.Message);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[]")]
    [InlineData("{\"block_size\": \"512\"}")]
    [InlineData("{\"block_size\": -1}")]
    [InlineData("{\"uuid\": \"not-a-uuid\"}")]
    public void MalformedJsonIsRegionIncompatible(string json)
    {
        var e = Assert.Throws<RegionException>(() => RegionDefinition.FromJson(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(RegionError.RegionIncompatible, e.Error);
    }

    [Theory]
    [InlineData(512UL, 100UL, null)]
    [InlineData(32768UL, 16384UL, null)]
    [InlineData(513UL, 100UL, "power of two")]
    [InlineData(256UL, 100UL, "minimum block size")]
    [InlineData(512UL, 0UL, "at least 1 block")]
    [InlineData(512UL, (1UL << 20) + 1, "bigger than")]
    [InlineData(65536UL, 1UL, "shift")]
    public void CreateOptionsAreValidatedAsTheRealCodeDoes(ulong blockSize, ulong extentSize, string? problem)
    {
        string? result = RegionDefinition.ForNewRegion(blockSize, extentSize, 1, TestUuid, false).ValidateOptions();
        if (problem is null)
        {
            Assert.Null(result);
        }
        else
        {
            Assert.Contains(problem, result);
        }
    }
}

public class RegionPathsTests
{
    // extent_dir: DIR/{(eid >> 24) & 0xFF:02X}/{(eid >> 12) & 0xFFF:03X}; extent_file_name: {eid & 0xFFF:03X}
    [Theory]
    [InlineData(0u, "r/00/000/000")]
    [InlineData(1u, "r/00/000/001")]
    [InlineData(15u, "r/00/000/00F")]
    [InlineData(0xFFFu, "r/00/000/FFF")]
    [InlineData(0x1000u, "r/00/001/000")]
    [InlineData(0xABCDEFu, "r/00/ABC/DEF")]
    [InlineData(0x12345678u, "r/12/345/678")]
    [InlineData(0xFFFFFFFFu, "r/FF/FFF/FFF")]
    public void ExtentPath(uint eid, string expected)
    {
        Assert.Equal(expected, RegionPaths.ExtentPath("r", eid));
        Assert.Equal(expected[..^4], RegionPaths.ExtentDir("r", eid));
        Assert.Equal(expected[^3..], RegionPaths.ExtentFileName(eid));
    }

    [Fact]
    public void RepairDirectoriesAndConfig()
    {
        Assert.Equal("r/00/000/02A.copy", RegionPaths.CopyDir("r", 42));
        Assert.Equal("r/00/000/02A.replace", RegionPaths.ReplaceDir("r", 42));
        Assert.Equal("r/00/000/02A.completed", RegionPaths.CompletedDir("r", 42));
        Assert.Equal("r/region.json", RegionPaths.ConfigPath("r"));
    }
}

using System.Buffers.Binary;
using Propolis.Core.Boot;

namespace Propolis.Core.Tests.Boot;

public sealed class MpTableTests
{
    private static byte Sum(ReadOnlySpan<byte> data)
    {
        byte s = 0;
        foreach (var b in data)
            s += b;
        return s;
    }

    [Fact]
    public void OneCpuTableIsByteExact()
    {
        var t = MpTable.Build(1, 0x000A0F11, 0x178BFBFF);
        // Floating pointer: "_MP_", config table right after it (0x9FC10), 1 paragraph, rev 1.4.
        Assert.Equal("5F4D505F10FC090001048B000000000000", Convert.ToHexString(t, 0, 16) + "00");
        Assert.Equal(0, Sum(t.AsSpan(0, 16)));
        var table = t.AsSpan(16);
        Assert.Equal(0, Sum(table));
        Assert.Equal(
            "50434D50" + "1801" + "04" + table[7].ToString("X2") + "50524F504F4C4953" + "5354414E44414C4F4E452020"
            + "00000000" + "0000" + "1C00" + "0000E0FE" + "0000" + "00" + "00",
            Convert.ToHexString(table[..44]));
        // Processor 0: enabled BSP with the given signature and features.
        Assert.Equal("00001403110F0A00FFFB8B170000000000000000", Convert.ToHexString(table.Slice(44, 20)));
        Assert.Equal("0100495341202020", Convert.ToHexString(table.Slice(64, 8)));      // bus 0 "ISA   "
        Assert.Equal("020111010000C0FE", Convert.ToHexString(table.Slice(72, 8))); // I/O APIC id 1 at 0xFEC00000
        Assert.Equal("0300000000000102", Convert.ToHexString(table.Slice(80, 8)));         // ISA IRQ 0 (PIT) -> pin 2
        Assert.Equal("0300000000030103", Convert.ToHexString(table.Slice(80 + 2 * 8, 8))); // IRQ 2 has no entry: IRQ 3 follows IRQ 1
        Assert.Equal("0300000000050105", Convert.ToHexString(table.Slice(80 + 4 * 8, 8))); // ISA IRQ 5 -> pin 5
        Assert.Equal("0403000000000000", Convert.ToHexString(table.Slice(80 + 23 * 8, 8))); // ExtINT -> BSP LINT0
        Assert.Equal("040100000000FF01", Convert.ToHexString(table.Slice(88 + 23 * 8, 8)));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(32)]
    public void EveryCpuIsListedOnceAndTheBspFirst(int cpus)
    {
        var t = MpTable.Build(cpus, 0, 0);
        Assert.Equal(MpTable.SizeFor(cpus), t.Length);
        Assert.True(t.Length <= MpTable.Capacity);
        var table = t.AsSpan(16);
        Assert.Equal(0, Sum(table));
        Assert.Equal(table.Length, BinaryPrimitives.ReadUInt16LittleEndian(table[4..]));
        Assert.Equal(cpus + 2 + 23 + 2, BinaryPrimitives.ReadUInt16LittleEndian(table[34..]));
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            var e = table.Slice(44 + cpu * 20, 20);
            Assert.Equal((0, cpu, cpu == 0 ? 3 : 1), (e[0], e[1], e[3]));
        }
        Assert.Equal(cpus, table[44 + cpus * 20 + 8 + 1]); // the I/O APIC's id follows the CPUs'
    }

    [Fact]
    public void TooManyCpusForTheEbdaAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MpTable.Build(0, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MpTable.Build(40, 0, 0));
    }
}

using Propolis.Core.Hw.Nvme;

namespace Propolis.Core.Tests.Hw.Nvme;

public sealed class NvmeRegisterTests : IDisposable
{
    private readonly NvmeHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public void CapAndVersionHoldTheAdvertisedValues()
    {
        // NVMe 1.4 §3.1.1: MQES 0xFFFF, CQR, TO 20 × 500 ms, DSTRD 0, CSS bit 37 (NVM), MPSMIN = MPSMAX = 0.
        Assert.Equal(0x0000_0020_1401_FFFFUL, _h.Read64(0x00));
        Assert.Equal(0x1401_FFFFu, _h.Read32(0x00));
        Assert.Equal(0x0000_0020u, _h.Read32(0x04));
        Assert.Equal(0x0001_0400u, _h.Read32(0x08));
        // CAP is read-only.
        _h.Write64(0x00, 0);
        Assert.Equal(0x0000_0020_1401_FFFFUL, _h.Read64(0x00));
    }

    [Fact]
    public void EnableHandshakeSetsReadyAndDisableClearsIt()
    {
        Assert.Equal(0u, _h.Read32(0x1C));
        _h.Enable();
        Assert.Equal(1u, _h.Read32(0x1C));
        Assert.Equal(0x003F_003Fu, _h.Read32(0x24));
        Assert.Equal(NvmeHarness.AdminSq, _h.Read64(0x28));
        Assert.Equal(NvmeHarness.AdminCq, _h.Read64(0x30));
        _h.Write32(0x14, NvmeHarness.CcIoEntrySizes);
        Assert.Equal(0u, _h.Read32(0x1C));
    }

    [Theory]
    [InlineData(1u << 4)]   // CSS: not NVM
    [InlineData(1u << 7)]   // MPS: 8 KiB pages, above MPSMAX
    [InlineData(1u << 11)]  // AMS: weighted round robin, not offered
    public void EnableWithUnsupportedConfigurationIsFatal(uint cc)
    {
        _h.Write32(0x24, 0x003F_003F);
        _h.Write64(0x28, NvmeHarness.AdminSq);
        _h.Write64(0x30, NvmeHarness.AdminCq);
        _h.Write32(0x14, cc | 1);
        Assert.Equal(2u, _h.Read32(0x1C)); // CFS, not RDY
    }

    [Fact]
    public void EnableWithAdminQueueOutsideRamIsFatal()
    {
        _h.Write32(0x24, 0x003F_003F);
        _h.Write64(0x28, NvmeHarness.OutsideRam);
        _h.Write64(0x30, NvmeHarness.AdminCq);
        _h.Write32(0x14, 1);
        Assert.Equal(2u, _h.Read32(0x1C));
        // A controller reset clears CFS; a good configuration then comes up.
        _h.Write32(0x14, 0);
        Assert.Equal(0u, _h.Read32(0x1C));
        _h.Enable();
    }

    [Fact]
    public void AsqLowBitsAreReservedAndDwordHalvesCombine()
    {
        _h.Write32(0x28, 0x1234_5FFF);
        _h.Write32(0x2C, 0x0000_0001);
        Assert.Equal(0x1_1234_5000UL, _h.Read64(0x28));
    }

    [Fact]
    public void InterruptMaskSetAndClear()
    {
        _h.Write32(0x0C, 0b101);
        Assert.Equal(0b101u, _h.Read32(0x0C));
        _h.Write32(0x10, 0b001);
        Assert.Equal(0b100u, _h.Read32(0x10));
    }

    [Fact]
    public void ShutdownHandshakeCompletesAfterTheBackendFlushes()
    {
        _h.Enable();
        _h.Backend.Hold = true;
        _h.Write32(0x14, NvmeHarness.CcIoEntrySizes | 1 | (1u << 14));
        Assert.Equal(1u | (1u << 2), _h.Read32(0x1C)); // RDY, SHST = occurring
        Assert.Equal(1, _h.Backend.HeldCount);
        _h.Backend.CompleteAll();
        Assert.Equal(1u | (2u << 2), _h.Read32(0x1C)); // SHST = complete
        Assert.Equal(1, _h.Backend.Flushes);
        // Reset returns SHST to normal operation.
        _h.Write32(0x14, NvmeHarness.CcIoEntrySizes);
        Assert.Equal(0u, _h.Read32(0x1C));
    }

    [Fact]
    public void RegisterTableHasNoOverlapsAndCoversTheSpecOffsets()
    {
        Assert.Equal(NvmeRegister.Cc, NvmeRegisterMap.ForDword(0x14).Register);
        Assert.Equal(NvmeRegister.Csts, NvmeRegisterMap.ForDword(0x1C).Register);
        Assert.Equal(NvmeRegister.None, NvmeRegisterMap.ForDword(0x18).Register);
        Assert.Equal(NvmeRegister.Acq, NvmeRegisterMap.ForDword(0x34).Register);
        Assert.Equal(NvmeRegister.None, NvmeRegisterMap.ForDword(0x38).Register);
    }
}

using Propolis.Core.Boot;
using Propolis.Core.Intr;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Tests.Boot;

public sealed class BootRomTests
{
    /// <summary>Records read-only mappings; everything else is out of scope.</summary>
    private sealed class RomRecordingVm : IVm
    {
        public readonly List<(ulong Gpa, nint Host, ulong Size)> ReadOnly = [];

        public void MapReadOnly(ulong guestAddress, nint hostAddress, ulong size) => ReadOnly.Add((guestAddress, hostAddress, size));
        public void MapMemory(GuestMemory memory) => throw new NotSupportedException();
        public IVcpu CreateVcpu(int id) => throw new NotSupportedException();
        public void SetIrqLine(uint gsi, bool asserted) => throw new NotSupportedException();
        public IIrqLine GetIrqLine(uint gsi) => throw new NotSupportedException();
        public bool SignalMsi(ulong address, uint data) => throw new NotSupportedException();
        public uint AllocateMsiRoute(ulong address, uint data) => throw new NotSupportedException();
        public void SetMsiRoute(uint gsi, ulong address, uint data) => throw new NotSupportedException();
        public void RegisterIrqFd(EventFd eventFd, uint gsi) => throw new NotSupportedException();
        public void UnregisterIrqFd(EventFd eventFd, uint gsi) => throw new NotSupportedException();
        public void RegisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) => throw new NotSupportedException();
        public void UnregisterIoEventFd(EventFd eventFd, IoEventSpace space, ulong address, int length, ulong? dataMatch) => throw new NotSupportedException();
        public void ResetInterruptControllers() => throw new NotSupportedException();
        public void Dispose() { }
    }

    [Theory]
    [InlineData(0x20_0000L, 0xFFE0_0000UL, 0x20_0000UL)]   // Debian's OVMF.fd: exactly the 2 MiB region
    [InlineData(0x1E_0000L, 0xFFE0_0000UL, 0x20_0000UL)]   // OVMF_CODE.fd (1920 KiB): right-aligned in 2 MiB
    [InlineData(0x1000L, 0xFFE0_0000UL, 0x20_0000UL)]
    [InlineData(0x37_C000L, 0xFFC8_4000UL, 0x37_C000UL)]   // OVMF_CODE_4M.fd: the region grows down
    [InlineData(0x100_0000L, 0xFF00_0000UL, 0x100_0000UL)] // the 16 MiB limit
    public void TheRegionEndsAt4GiB(long image, ulong address, ulong size)
    {
        Assert.Equal((address, size), BootRom.RegionFor(image));
        Assert.True(address >= MemoryLayout.KvmTssAddress + 0x3000, "KVM's TSS and identity map pages stay below every ROM region");
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(0x1234L)]
    [InlineData(0x100_1000L)]
    public void ImagesThatCannotBeARomAreRefused(long image) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => BootRom.RegionFor(image));

    [Fact]
    public void TheImageIsRightAlignedSoItsLastBytesHoldTheResetVector()
    {
        var image = new byte[0x1E_0000];
        for (var i = 0; i < image.Length; i++)
            image[i] = (byte)(i * 7 + 3);
        var vm = new RomRecordingVm();
        using var rom = BootRom.Map(vm, image);

        var (gpa, _, size) = Assert.Single(vm.ReadOnly);
        Assert.Equal(0xFFE0_0000UL, gpa);
        Assert.Equal(0x20_0000UL, size);
        Assert.Equal(image.Length, rom.ImageLength);
        // The reset vector (0xFFFF_FFF0) is the image's 16th byte from the end.
        Assert.Equal(image.AsSpan(image.Length - 16).ToArray(), rom.Read(0xFFFF_FFF0, 16).ToArray());
        Assert.Equal(image.AsSpan(0, 64).ToArray(), rom.Read(BootRom.End - (ulong)image.Length, 64).ToArray());
        // Below the image, the region reads zero.
        Assert.All(rom.Read(0xFFE0_0000, 0x2_0000).ToArray(), b => Assert.Equal(0, b));
    }
}

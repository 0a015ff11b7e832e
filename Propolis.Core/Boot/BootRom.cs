using Propolis.Core.Interop;
using Propolis.Core.Memory;
using Propolis.Core.Vmm;

namespace Propolis.Core.Boot;

/// <summary>A firmware image mapped read-only so that it ends at 4 GiB, where an x86 CPU fetches
/// its first instruction (the reset vector 0xFFFF_FFF0). As propolis: the region is 2 MiB at
/// 0xFFE0_0000 with the image right-aligned in it; a larger image (up to
/// <see cref="MemoryLayout.BootRomMaxSize"/>) grows the region down.</summary>
public sealed unsafe class BootRom : IDisposable
{
    public const ulong End = MemoryLayout.HighRamBase;

    private nint _mapping;

    private BootRom(nint mapping, ulong address, ulong size, int imageLength)
    {
        _mapping = mapping;
        Address = address;
        Size = size;
        ImageLength = imageLength;
    }

    /// <summary>Guest-physical base of the ROM region.</summary>
    public ulong Address { get; }

    /// <summary>Bytes of the region (at least 2 MiB).</summary>
    public ulong Size { get; }

    public int ImageLength { get; }

    /// <summary>The region an image of <paramref name="imageLength"/> bytes needs: its base and size.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Empty, not a multiple of 4 KiB, or above 16 MiB.</exception>
    public static (ulong Address, ulong Size) RegionFor(long imageLength)
    {
        if (imageLength <= 0 || (ulong)imageLength > MemoryLayout.BootRomMaxSize || (ulong)imageLength % MemoryLayout.PageSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(imageLength), imageLength,
                $"a boot ROM is a non-empty multiple of 4 KiB, at most {MemoryLayout.BootRomMaxSize >> 20} MiB");
        }
        var size = Math.Max(MemoryLayout.BootRomMinRegion, (ulong)imageLength);
        return (End - size, size);
    }

    /// <summary>Copies <paramref name="image"/> into host memory laid out as the region (zeros below
    /// the image) and maps it read-only into <paramref name="vm"/>.</summary>
    /// <exception cref="HypervisorException">The hypervisor cannot map it.</exception>
    /// <exception cref="GuestMemoryException">The host cannot allocate the region.</exception>
    public static BootRom Map(IVm vm, ReadOnlySpan<byte> image)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var (address, size) = RegionFor(image.Length);
        var mapping = Interop.Interop.Sys.Mmap(0, (nuint)size, Interop.Interop.Sys.PROT_READ | Interop.Interop.Sys.PROT_WRITE,
            Interop.Interop.Sys.MAP_PRIVATE | Interop.Interop.Sys.MAP_ANONYMOUS, -1, 0);
        if (mapping == Interop.Interop.Sys.MAP_FAILED)
        {
            var errno = Interop.Interop.LastErrno;
            throw new GuestMemoryException($"cannot allocate {size >> 10} KiB for the boot ROM: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}");
        }
        var rom = new BootRom(mapping, address, size, image.Length);
        try
        {
            image.CopyTo(new Span<byte>((void*)(mapping + (nint)(size - (ulong)image.Length)), image.Length));
            vm.MapReadOnly(address, mapping, size);
            return rom;
        }
        catch
        {
            rom.Dispose();
            throw;
        }
    }

    /// <summary>The ROM's bytes at guest-physical <paramref name="gpa"/> (for tests and diagnostics).</summary>
    public ReadOnlySpan<byte> Read(ulong gpa, int length)
    {
        if (_mapping == 0 || gpa < Address || length < 0 || (ulong)length > End - gpa)
            throw new ArgumentOutOfRangeException(nameof(gpa), $"0x{gpa:X}+{length} is outside the ROM");
        return new ReadOnlySpan<byte>((void*)(_mapping + (nint)(gpa - Address)), length);
    }

    /// <summary>Unmaps the host memory; the VM must be gone first.</summary>
    public void Dispose()
    {
        var mapping = Interlocked.Exchange(ref _mapping, 0);
        if (mapping != 0)
        {
            _ = Interop.Interop.Sys.Munmap(mapping, (nuint)Size);
        }
    }
}

using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Propolis.Core.Interop;

namespace Propolis.Core.Memory;

/// <summary>Guest RAM: one anonymous, lazily-populated host mapping (MAP_NORESERVE, with
/// transparent huge pages requested) carved into the RAM regions of a <see cref="MemoryLayout"/>.</summary>
/// <remarks>Every accessor takes a guest-physical address and a length the guest may control,
/// checks them without overflow, and reports failure with a return value: nothing here throws
/// on a vCPU or device thread. Multi-byte scalars are little-endian. Access to the bytes is
/// not synchronised: guest memory is shared with running vCPUs, as on real hardware.</remarks>
public sealed unsafe class GuestMemory : IDisposable
{
    private readonly RamRegion[] _regions;
    private nint _base;
    private readonly ulong _mappingSize;

    private GuestMemory(MemoryLayout layout, nint mapping, ulong size)
    {
        Layout = layout;
        _regions = layout.RamRegions.ToArray();
        _base = mapping;
        _mappingSize = size;
    }

    /// <summary>The host mapping's alignment: a transparent huge page (x86-64).</summary>
    public const ulong HugePageBytes = 2 << 20;

    public MemoryLayout Layout { get; }

    /// <summary>Host address of the mapping backing all RAM (region i starts at
    /// <c>HostBase + RamRegions[i].HostOffset</c>).</summary>
    public nint HostBase => _base;

    /// <summary>Reserves host address space for the layout's RAM. Pages are populated on first touch.</summary>
    /// <exception cref="GuestMemoryException">The host refused the mapping (ENOMEM and the like).</exception>
    public static GuestMemory Allocate(MemoryLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var size = layout.RamSize;
        // Reserved HugePageBytes larger and trimmed to a 2 MiB boundary: guest-physical 2 MiB
        // frames then sit on host huge pages, which the hypervisor can map with 2 MiB entries
        // (the kernel aligns a plain mmap to 4 KiB only: a 2 MiB-aligned one was luck).
        var mapping = Interop.Interop.Sys.Mmap(0, (nuint)(size + HugePageBytes), Interop.Interop.Sys.PROT_READ | Interop.Interop.Sys.PROT_WRITE,
            Interop.Interop.Sys.MAP_PRIVATE | Interop.Interop.Sys.MAP_ANONYMOUS | Interop.Interop.Sys.MAP_NORESERVE, -1, 0);
        if (mapping == Interop.Interop.Sys.MAP_FAILED)
        {
            var errno = Interop.Interop.LastErrno;
            throw new GuestMemoryException(
                $"cannot reserve {size >> 20} MiB of guest memory: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}; "
                + "lower the VM's memory size or free host memory (check ulimit -v and vm.overcommit_memory)",
                new ErrnoException("mmap", errno));
        }
        // The reservation's HugePageBytes of slack go partly before the boundary, the rest after
        // the guest's RAM.
        var head = (((ulong)mapping + HugePageBytes - 1) & ~(HugePageBytes - 1)) - (ulong)mapping;
        if (head != 0)
        {
            _ = Interop.Interop.Sys.Munmap(mapping, (nuint)head);
        }
        mapping += (nint)head;
        _ = Interop.Interop.Sys.Munmap(mapping + (nint)size, (nuint)(HugePageBytes - head)); // at least a page: head < HugePageBytes
        // Best effort: THP may be disabled on the host, in which case small pages are used.
        _ = Interop.Interop.Sys.Madvise(mapping, (nuint)size, Interop.Interop.Sys.MADV_HUGEPAGE);
        return new GuestMemory(layout, mapping, size);
    }

    /// <summary>A span over [gpa, gpa+length) if that range is RAM and lies in a single region.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetSpan(ulong gpa, int length, out Span<byte> span)
    {
        if (length >= 0 && _base != 0 && TryTranslate(gpa, (ulong)length, out var host))
        {
            span = new Span<byte>((void*)host, length);
            return true;
        }
        span = default;
        return false;
    }

    /// <summary>Host address of guest-physical <paramref name="gpa"/>, if [gpa, gpa+length) is RAM in one region.</summary>
    public bool TryTranslate(ulong gpa, ulong length, out nint host)
    {
        var regions = _regions;
        for (var i = 0; i < regions.Length; i++)
        {
            var r = regions[i];
            var offset = gpa - r.GuestAddress;
            // gpa >= base, and offset + length <= size without computing either sum.
            if (gpa >= r.GuestAddress && offset <= r.Size && length <= r.Size - offset)
            {
                host = _base + (nint)(r.HostOffset + offset);
                return true;
            }
        }
        host = 0;
        return false;
    }

    public bool TryRead(ulong gpa, Span<byte> destination)
    {
        if (!TryGetSpan(gpa, destination.Length, out var src))
        {
            return false;
        }
        src.CopyTo(destination);
        return true;
    }

    public bool TryWrite(ulong gpa, ReadOnlySpan<byte> source)
    {
        if (!TryGetSpan(gpa, source.Length, out var dst))
        {
            return false;
        }
        source.CopyTo(dst);
        return true;
    }

    public bool TryFill(ulong gpa, int length, byte value)
    {
        if (!TryGetSpan(gpa, length, out var dst))
        {
            return false;
        }
        dst.Fill(value);
        return true;
    }

    public bool TryReadByte(ulong gpa, out byte value)
    {
        if (TryGetSpan(gpa, 1, out var s)) { value = s[0]; return true; }
        value = 0;
        return false;
    }

    public bool TryReadUInt16(ulong gpa, out ushort value)
    {
        if (TryGetSpan(gpa, 2, out var s)) { value = BinaryPrimitives.ReadUInt16LittleEndian(s); return true; }
        value = 0;
        return false;
    }

    public bool TryReadUInt32(ulong gpa, out uint value)
    {
        if (TryGetSpan(gpa, 4, out var s)) { value = BinaryPrimitives.ReadUInt32LittleEndian(s); return true; }
        value = 0;
        return false;
    }

    public bool TryReadUInt64(ulong gpa, out ulong value)
    {
        if (TryGetSpan(gpa, 8, out var s)) { value = BinaryPrimitives.ReadUInt64LittleEndian(s); return true; }
        value = 0;
        return false;
    }

    public bool TryWriteByte(ulong gpa, byte value)
    {
        if (!TryGetSpan(gpa, 1, out var s)) { return false; }
        s[0] = value;
        return true;
    }

    public bool TryWriteUInt16(ulong gpa, ushort value)
    {
        if (!TryGetSpan(gpa, 2, out var s)) { return false; }
        BinaryPrimitives.WriteUInt16LittleEndian(s, value);
        return true;
    }

    public bool TryWriteUInt32(ulong gpa, uint value)
    {
        if (!TryGetSpan(gpa, 4, out var s)) { return false; }
        BinaryPrimitives.WriteUInt32LittleEndian(s, value);
        return true;
    }

    public bool TryWriteUInt64(ulong gpa, ulong value)
    {
        if (!TryGetSpan(gpa, 8, out var s)) { return false; }
        BinaryPrimitives.WriteUInt64LittleEndian(s, value);
        return true;
    }

    /// <summary>For loaders running before the guest starts: like <see cref="TryWrite"/> but a
    /// range outside RAM is a configuration error and throws.</summary>
    public void Write(ulong gpa, ReadOnlySpan<byte> source)
    {
        if (!TryWrite(gpa, source))
        {
            ThrowOutOfRam(gpa, (ulong)source.Length);
        }
    }

    /// <summary>Zeroes all of guest RAM for a machine reset, by handing the pages back to the
    /// host (MADV_DONTNEED on a private anonymous mapping: the next touch sees a zero page; the
    /// hypervisor's mapping follows through its MMU notifier). Call with every vCPU paused.</summary>
    public void Clear()
    {
        var mapping = _base;
        if (mapping == 0)
        {
            return;
        }
        if (Interop.Interop.Sys.Madvise(mapping, (nuint)_mappingSize, Interop.Interop.Sys.MADV_DONTNEED) != 0)
        {
            // Not expected on an anonymous mapping; zero by hand rather than leave old contents.
            foreach (var r in _regions)
            {
                new Span<byte>((void*)(mapping + (nint)r.HostOffset), checked((int)Math.Min(r.Size, int.MaxValue))).Clear();
                for (var done = Math.Min(r.Size, int.MaxValue); done < r.Size; done += int.MaxValue)
                {
                    new Span<byte>((void*)(mapping + (nint)(r.HostOffset + done)), (int)Math.Min(r.Size - done, int.MaxValue)).Clear();
                }
            }
        }
        _ = Interop.Interop.Sys.Madvise(mapping, (nuint)_mappingSize, Interop.Interop.Sys.MADV_HUGEPAGE);
    }

    [DoesNotReturn]
    private void ThrowOutOfRam(ulong gpa, ulong length) =>
        throw new GuestMemoryException($"guest range 0x{gpa:X}+0x{length:X} is not inside guest RAM ({Layout.RamSize >> 20} MiB)");

    public void Dispose()
    {
        var mapping = Interlocked.Exchange(ref _base, 0);
        if (mapping != 0)
        {
            _ = Interop.Interop.Sys.Munmap(mapping, (nuint)_mappingSize);
        }
    }
}

/// <summary>Guest memory could not be set up or a loader's range does not fit in it.</summary>
public sealed class GuestMemoryException : Exception
{
    public GuestMemoryException(string message) : base(message) { }

    public GuestMemoryException(string message, Exception inner) : base(message, inner) { }
}

using Propolis.Core.Block;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Nvme;

/// <summary>Physical Region Page walking (NVMe 1.4 §4.3): turns PRP1/PRP2 of a command and a
/// transfer length into host segments of guest RAM, validating every entry the guest wrote.</summary>
internal static class Prp
{
    /// <summary>The memory page size: CAP.MPSMIN = CAP.MPSMAX = 0, so CC.MPS is 0 and pages are 4 KiB.</summary>
    public const int PageSize = 4096;
    private const ulong PageMask = PageSize - 1;

    /// <summary>Segments needed at most for <paramref name="maxTransfer"/> bytes: one per page,
    /// plus one for an unaligned first page.</summary>
    public static int MaxSegments(int maxTransfer) => maxTransfer / PageSize + 1;

    /// <summary>Resolves the data buffer of a command into guest-physical segments, each checked
    /// to be RAM within one region (adjacent pages merge). <paramref name="length"/> is non-zero
    /// and at most what <paramref name="segments"/> can describe (the caller has applied MDTS).</summary>
    /// <returns>Success; PRP Offset Invalid for a misaligned entry (§4.3: only the first entry may
    /// carry an offset, dword aligned, and a list pointer must be qword aligned); Data Transfer
    /// Error for an entry or list outside guest RAM; Invalid Field for a list that links to itself
    /// without describing data.</returns>
    public static NvmeStatus Resolve(GuestMemory memory, ulong prp1, ulong prp2, ulong length,
        Span<GuestSegment> segments, out int count)
    {
        count = 0;
        if ((prp1 & 0x3) != 0)
        {
            return NvmeStatus.PrpOffsetInvalid;
        }
        var first = Math.Min(length, PageSize - (prp1 & PageMask));
        if (!Add(memory, prp1, first, segments, ref count))
        {
            return NvmeStatus.DataTransferError;
        }
        var remaining = length - first;
        if (remaining == 0)
        {
            return NvmeStatus.Success;
        }
        if (remaining <= PageSize)
        {
            // PRP2 is the second (and last) data page.
            if ((prp2 & PageMask) != 0)
            {
                return NvmeStatus.PrpOffsetInvalid;
            }
            return Add(memory, prp2, remaining, segments, ref count) ? NvmeStatus.Success : NvmeStatus.DataTransferError;
        }

        // PRP2 points to a PRP list: entries up to the end of its page; the last entry of a
        // list page points to the next list page when more than one page of data remains.
        var list = prp2;
        while (true)
        {
            if ((list & 0x7) != 0)
            {
                return NvmeStatus.PrpOffsetInvalid;
            }
            var slots = (int)((PageSize - (list & PageMask)) / 8);
            for (var i = 0; i < slots; i++)
            {
                if (!memory.TryReadUInt64(list + (ulong)i * 8, out var entry))
                {
                    return NvmeStatus.DataTransferError;
                }
                if (i == slots - 1 && remaining > PageSize)
                {
                    if (i == 0)
                    {
                        // A list page whose only slot is a link describes no data: it could chain forever.
                        return NvmeStatus.InvalidField;
                    }
                    list = entry;
                    goto NextList;
                }
                if ((entry & PageMask) != 0)
                {
                    return NvmeStatus.PrpOffsetInvalid;
                }
                var n = Math.Min(remaining, PageSize);
                if (!Add(memory, entry, n, segments, ref count))
                {
                    return NvmeStatus.DataTransferError;
                }
                remaining -= n;
                if (remaining == 0)
                {
                    return NvmeStatus.Success;
                }
            }
            // Unreachable: the last slot either ends the transfer or links on.
            return NvmeStatus.InvalidField;
        NextList:;
        }
    }

    private static bool Add(GuestMemory memory, ulong gpa, ulong length, Span<GuestSegment> segments, ref int count)
    {
        if (!memory.TryTranslate(gpa, length, out _))
        {
            return false;
        }
        if (count > 0)
        {
            ref var last = ref segments[count - 1];
            if (last.Address + last.Length == gpa && memory.TryTranslate(last.Address, last.Length + length, out _))
            {
                last = new GuestSegment(last.Address, last.Length + (uint)length);
                return true;
            }
        }
        if (count == segments.Length)
        {
            return false;
        }
        segments[count++] = new GuestSegment(gpa, (uint)length);
        return true;
    }

    /// <summary>Copies <paramref name="source"/> into the segments and zero-fills what remains of them.</summary>
    public static void CopyTo(GuestMemory memory, ReadOnlySpan<byte> source, ReadOnlySpan<GuestSegment> segments)
    {
        foreach (var s in segments)
        {
            if (!memory.TryGetSpan(s.Address, (int)s.Length, out var dst))
            {
                return;
            }
            var n = Math.Min(source.Length, dst.Length);
            source[..n].CopyTo(dst);
            dst[n..].Clear();
            source = source[n..];
        }
    }

    /// <summary>Gathers the segments into <paramref name="destination"/> (up to its length).</summary>
    public static int CopyFrom(GuestMemory memory, ReadOnlySpan<GuestSegment> segments, Span<byte> destination)
    {
        var total = 0;
        foreach (var s in segments)
        {
            var n = Math.Min((int)s.Length, destination.Length - total);
            if (!memory.TryGetSpan(s.Address, n, out var src))
            {
                break;
            }
            src.CopyTo(destination[total..]);
            total += n;
        }
        return total;
    }
}

namespace Propolis.Core.Hw.Nvme;

// Controller registers in BAR0 (NVMe 1.4 §3.1), the bits of each that this
// controller uses, and the doorbell layout (§3.1.24, §3.1.25). Every offset and field is
// named here, once; NvmeController reads and writes through this table.

/// <summary>The controller registers this controller implements; everything else below the
/// doorbells reads as zero and ignores writes (reserved, or optional and absent: CMB, BPINFO,
/// PMR).</summary>
internal enum NvmeRegister : byte
{
    None,
    /// <summary>Controller Capabilities (§3.1.1), 64-bit, read-only.</summary>
    Cap,
    /// <summary>Version (§3.1.2).</summary>
    Vs,
    /// <summary>Interrupt Mask Set (§3.1.3); the mask is kept but only pin-based and MSI interrupts
    /// honour it, and this controller signals through MSI-X, which must not use it.</summary>
    Intms,
    /// <summary>Interrupt Mask Clear (§3.1.4).</summary>
    Intmc,
    /// <summary>Controller Configuration (§3.1.5).</summary>
    Cc,
    /// <summary>Controller Status (§3.1.6), read-only.</summary>
    Csts,
    /// <summary>NVM Subsystem Reset (§3.1.7): reserved since CAP.NSSRS is 0.</summary>
    Nssr,
    /// <summary>Admin Queue Attributes (§3.1.8).</summary>
    Aqa,
    /// <summary>Admin Submission Queue Base Address (§3.1.9), 64-bit.</summary>
    Asq,
    /// <summary>Admin Completion Queue Base Address (§3.1.10), 64-bit.</summary>
    Acq,
}

/// <summary>One row of the register map: <paramref name="Register"/> occupies
/// [<paramref name="Offset"/>, <paramref name="Offset"/> + <paramref name="Size"/>).</summary>
internal readonly record struct NvmeRegisterDecode(ushort Offset, byte Size, NvmeRegister Register);

/// <summary>BAR0 layout (NVMe 1.4 §3.1) and its decoder.</summary>
internal static class NvmeRegisterMap
{
    /// <summary>First doorbell register (§3.1.24).</summary>
    public const int DoorbellBase = 0x1000;

    public static readonly NvmeRegisterDecode[] Table =
    [
        new(0x00, 8, NvmeRegister.Cap),
        new(0x08, 4, NvmeRegister.Vs),
        new(0x0C, 4, NvmeRegister.Intms),
        new(0x10, 4, NvmeRegister.Intmc),
        new(0x14, 4, NvmeRegister.Cc),
        // 0x18: reserved.
        new(0x1C, 4, NvmeRegister.Csts),
        new(0x20, 4, NvmeRegister.Nssr),
        new(0x24, 4, NvmeRegister.Aqa),
        new(0x28, 8, NvmeRegister.Asq),
        new(0x30, 8, NvmeRegister.Acq),
    ];

    // Decoded once: one entry per dword below the doorbells.
    private static readonly NvmeRegisterDecode[] s_byDword = Build();

    /// <summary>The register holding the dword at <paramref name="offset"/> (4-byte aligned,
    /// below <see cref="DoorbellBase"/>), or a <see cref="NvmeRegister.None"/> row.</summary>
    public static NvmeRegisterDecode ForDword(int offset) => s_byDword[offset >> 2];

    private static NvmeRegisterDecode[] Build()
    {
        var map = new NvmeRegisterDecode[DoorbellBase / 4];
        foreach (var row in Table)
        {
            for (var o = row.Offset; o < row.Offset + row.Size; o += 4)
            {
                if (map[o >> 2].Register != NvmeRegister.None)
                {
                    throw new InvalidOperationException($"NVMe register table overlaps at 0x{o:X}");
                }
                map[o >> 2] = row;
            }
        }
        return map;
    }
}

/// <summary>CAP fields (NVMe 1.4 §3.1.1).</summary>
internal static class Cap
{
    public const int MqesShift = 0;      // 15:0 Maximum Queue Entries Supported, 0's based
    public const int CqrShift = 16;      // Contiguous Queues Required
    public const int AmsShift = 17;      // 18:17 Arbitration Mechanism Supported
    public const int ToShift = 24;       // 31:24 Timeout, 500 ms units
    public const int DstrdShift = 32;    // 35:32 Doorbell Stride, 2^(2+DSTRD) bytes
    public const int NssrsShift = 36;    // NVM Subsystem Reset Supported
    public const int CssShift = 37;      // 44:37 Command Sets Supported; bit 37 = NVM
    public const int MpsminShift = 48;   // 51:48 Memory Page Size Minimum, 2^(12+MPSMIN)
    public const int MpsmaxShift = 52;   // 55:52 Memory Page Size Maximum

    public const ulong CssNvm = 1;
}

/// <summary>CC fields (NVMe 1.4 §3.1.5).</summary>
internal static class Cc
{
    public const uint En = 1u << 0;
    public const int CssShift = 4;       // 6:4 I/O Command Set Selected, 000b = NVM
    public const int MpsShift = 7;       // 10:7 Memory Page Size, 2^(12+MPS)
    public const int AmsShift = 11;      // 13:11 Arbitration Mechanism Selected, 000b = round robin
    public const int ShnShift = 14;      // 15:14 Shutdown Notification, 00b = none
    public const int IosqesShift = 16;   // 19:16 I/O Submission Queue Entry Size, 2^n
    public const int IocqesShift = 20;   // 23:20 I/O Completion Queue Entry Size, 2^n

    public static uint Css(uint cc) => (cc >> CssShift) & 0x7;
    public static uint Mps(uint cc) => (cc >> MpsShift) & 0xF;
    public static uint Ams(uint cc) => (cc >> AmsShift) & 0x7;
    public static uint Shn(uint cc) => (cc >> ShnShift) & 0x3;
    public static uint Iosqes(uint cc) => (cc >> IosqesShift) & 0xF;
    public static uint Iocqes(uint cc) => (cc >> IocqesShift) & 0xF;
}

/// <summary>CSTS fields (NVMe 1.4 §3.1.6).</summary>
internal static class Csts
{
    public const uint Rdy = 1u << 0;
    /// <summary>Controller Fatal Status.</summary>
    public const uint Cfs = 1u << 1;
    public const int ShstShift = 2;      // 3:2 Shutdown Status
    public const uint ShstMask = 0x3u << ShstShift;
    public const uint ShstNormal = 0u << ShstShift;
    public const uint ShstOccurring = 1u << ShstShift;
    public const uint ShstComplete = 2u << ShstShift;
}

/// <summary>AQA fields (NVMe 1.4 §3.1.8): both sizes 0's based, 12 bits.</summary>
internal static class Aqa
{
    public static uint Asqs(uint aqa) => aqa & 0xFFF;
    public static uint Acqs(uint aqa) => (aqa >> 16) & 0xFFF;
    public const uint WritableMask = 0x0FFF_0FFF;
}

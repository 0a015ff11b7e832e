using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Propolis.Core.Hw.Nvme;

/// <summary>The data structures returned by Identify (NVMe 1.4 §5.15.2), laid out through
/// chained offsets. Each is 4096 bytes.</summary>
internal static class IdentifyData
{
    public const int Size = 4096;

    /// <summary>Identify Controller Data Structure (NVMe 1.4 §5.15.2.2).</summary>
    internal static class Controller
    {
        public const int Vid = 0;          // u16 PCI Vendor ID
        public const int Ssvid = 2;        // u16 PCI Subsystem Vendor ID
        public const int Sn = 4;           // 20 bytes Serial Number
        public const int Mn = 24;          // 40 bytes Model Number
        public const int Fr = 64;          // 8 bytes Firmware Revision
        public const int Rab = 72;         // Recommended Arbitration Burst
        public const int Ieee = 73;        // 3 bytes IEEE OUI, least significant byte first
        public const int Mdts = 77;        // Maximum Data Transfer Size, 2^n × CAP.MPSMIN
        public const int Cntlid = 78;      // u16 Controller ID
        public const int Ver = 80;         // u32 Version
        public const int Cntrltype = 111;  // Controller Type: 1 = I/O controller
        public const int Oacs = 256;       // u16 Optional Admin Command Support
        public const int Acl = 258;        // Abort Command Limit, 0's based
        public const int Aerl = 259;       // Asynchronous Event Request Limit, 0's based
        public const int Frmw = 260;       // Firmware Updates
        public const int Lpa = 261;        // Log Page Attributes
        public const int Elpe = 262;       // Error Log Page Entries, 0's based
        public const int Npss = 263;       // Number of Power States Support, 0's based
        public const int Wctemp = 266;     // u16 Warning Composite Temperature Threshold, K
        public const int Cctemp = 268;     // u16 Critical Composite Temperature Threshold, K
        public const int Sqes = 512;       // SQ entry size: required 3:0, maximum 7:4 (log2)
        public const int Cqes = 513;       // CQ entry size
        public const int Nn = 516;         // u32 Number of Namespaces
        public const int Oncs = 520;       // u16 Optional NVM Command Support
        public const int Vwc = 524;        // Volatile Write Cache
        public const int Sgls = 536;       // u32 SGL Support: 0 = none
        public const int Subnqn = 768;     // 256 bytes NVM Subsystem NVMe Qualified Name
        public const int Psd0 = 2048;      // 32 bytes Power State 0 Descriptor

        public const ushort OncsDatasetManagement = 1 << 2;
        public const ushort OncsWriteZeroes = 1 << 3;
        public const ushort OacsDoorbellBufferConfig = 1 << 8;
        /// <summary>VWC present, and Flush with NSID FFFFFFFFh supported (bits 2:1 = 11b).</summary>
        public const byte VwcPresentBroadcastFlush = 0x07;
        /// <summary>LPA bit 2: extended data for Get Log Page (NUMDU, 64-bit offset).</summary>
        public const byte LpaExtendedData = 1 << 2;
    }

    /// <summary>Identify Namespace Data Structure (NVMe 1.4 §5.15.2.1).</summary>
    internal static class Namespace
    {
        public const int Nsze = 0;         // u64 Namespace Size, logical blocks
        public const int Ncap = 8;         // u64 Namespace Capacity
        public const int Nuse = 16;        // u64 Namespace Utilization
        public const int Nlbaf = 25;       // Number of LBA Formats, 0's based
        public const int Flbas = 26;       // Formatted LBA Size
        public const int Nsattr = 99;      // Namespace Attributes: bit 0 = write protected
        public const int Nguid = 104;      // 16 bytes Namespace Globally Unique Identifier
        public const int Lbaf0 = 128;      // LBA Format 0: MS u16, LBADS u8 (log2), RP u8
        public const int Lbaf0Lbads = Lbaf0 + 2;
    }

    public static byte[] BuildController(NvmeControllerOptions o)
    {
        var d = new byte[Size];
        var s = d.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(s[Controller.Vid..], o.VendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(s[Controller.Ssvid..], o.SubsystemVendorId);
        Ascii(s.Slice(Controller.Sn, 20), o.SerialNumber);
        Ascii(s.Slice(Controller.Mn, 40), o.ModelNumber);
        Ascii(s.Slice(Controller.Fr, 8), o.FirmwareRevision);
        // Oxide Computer Company OUI A8-40-25.
        s[Controller.Ieee] = 0x25;
        s[Controller.Ieee + 1] = 0x40;
        s[Controller.Ieee + 2] = 0xA8;
        s[Controller.Mdts] = NvmeController.Mdts;
        BinaryPrimitives.WriteUInt32LittleEndian(s[Controller.Ver..], NvmeController.Version);
        s[Controller.Cntrltype] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(s[Controller.Oacs..], Controller.OacsDoorbellBufferConfig);
        s[Controller.Acl] = 3;
        s[Controller.Aerl] = NvmeController.AsyncEventRequestLimit - 1;
        // One firmware slot, read-only (bit 0; bits 3:1 = number of slots).
        s[Controller.Frmw] = 0b0011;
        s[Controller.Lpa] = Controller.LpaExtendedData;
        s[Controller.Elpe] = 0;
        s[Controller.Npss] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(s[Controller.Wctemp..], 343);
        BinaryPrimitives.WriteUInt16LittleEndian(s[Controller.Cctemp..], 373);
        s[Controller.Sqes] = (NvmeController.SubmissionEntrySizeLog2 << 4) | NvmeController.SubmissionEntrySizeLog2;
        s[Controller.Cqes] = (NvmeController.CompletionEntrySizeLog2 << 4) | NvmeController.CompletionEntrySizeLog2;
        BinaryPrimitives.WriteUInt32LittleEndian(s[Controller.Nn..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(s[Controller.Oncs..], Controller.OncsDatasetManagement | Controller.OncsWriteZeroes);
        s[Controller.Vwc] = Controller.VwcPresentBroadcastFlush;
        Encoding.ASCII.GetBytes($"nqn.2019-05.com.oxide:propolis:{o.SerialNumber.Trim()}", s.Slice(Controller.Subnqn, 223));
        // Power state 0: MP = 25.00 W in centiwatts (bytes 1:0).
        BinaryPrimitives.WriteUInt16LittleEndian(s[Controller.Psd0..], 2500);
        return d;
    }

    /// <summary>Namespace Identification Descriptor list (§5.15.2.3): one NGUID descriptor
    /// (NIDT 2, NIDL 16), then the zero descriptor that ends the list.</summary>
    public static byte[] BuildDescriptorList(ReadOnlySpan<byte> nguid)
    {
        var d = new byte[Size];
        d[0] = 2;
        d[1] = 16;
        nguid.CopyTo(d.AsSpan(4));
        return d;
    }

    /// <summary>An NGUID that stays the same for the same serial number: the Oxide OUI, then the
    /// serial's bytes (13 at most) zero-padded.</summary>
    public static byte[] NamespaceGuid(string serial)
    {
        var g = new byte[16];
        g[0] = 0xA8;
        g[1] = 0x40;
        g[2] = 0x25;
        var sn = serial.Trim();
        Encoding.ASCII.GetBytes(sn.AsSpan(0, Math.Min(sn.Length, 13)), g.AsSpan(3));
        return g;
    }

    public static byte[] BuildNamespace(ulong blocks, int blockSize, bool readOnly, ReadOnlySpan<byte> nguid)
    {
        var d = new byte[Size];
        var s = d.AsSpan();
        nguid.CopyTo(s[Namespace.Nguid..]);
        BinaryPrimitives.WriteUInt64LittleEndian(s[Namespace.Nsze..], blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(s[Namespace.Ncap..], blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(s[Namespace.Nuse..], blocks);
        s[Namespace.Nlbaf] = 0;
        s[Namespace.Flbas] = 0;
        s[Namespace.Nsattr] = readOnly ? (byte)1 : (byte)0;
        s[Namespace.Lbaf0Lbads] = (byte)BitOperations.Log2((uint)blockSize);
        return d;
    }

    private static void Ascii(Span<byte> field, string value)
    {
        field.Fill((byte)' ');
        Encoding.ASCII.GetBytes(value, field);
    }
}

namespace Propolis.Core.Hw.Nvme;

/// <summary>Status Code Type of a completion (NVMe 1.4 §4.6.1.2).</summary>
public enum StatusCodeType : byte
{
    Generic = 0,
    CommandSpecific = 1,
    MediaAndDataIntegrity = 2,
}

/// <summary>The status field of a completion queue entry (NVMe 1.4 §4.6.1):
/// Status Code in bits 7:0 and Status Code Type in bits 10:8 of the 15-bit field that sits
/// above the phase tag.</summary>
public readonly record struct NvmeStatus(StatusCodeType Type, byte Code)
{
    public bool IsSuccess => Type == StatusCodeType.Generic && Code == 0;

    /// <summary>The 15-bit status field (without the phase tag), as it lands in DW3 bits 31:17.</summary>
    public ushort Field => (ushort)(Code | ((int)Type << 8));

    public override string ToString() => $"SCT {(int)Type:X} SC {Code:X2}";

    // NVMe 1.4 §4.6.1.2.1: Generic Command Status Values.
    public static readonly NvmeStatus Success = new(StatusCodeType.Generic, 0x00);
    public static readonly NvmeStatus InvalidOpcode = new(StatusCodeType.Generic, 0x01);
    public static readonly NvmeStatus InvalidField = new(StatusCodeType.Generic, 0x02);
    public static readonly NvmeStatus DataTransferError = new(StatusCodeType.Generic, 0x04);
    public static readonly NvmeStatus InternalError = new(StatusCodeType.Generic, 0x06);
    public static readonly NvmeStatus AbortedSqDeletion = new(StatusCodeType.Generic, 0x08);
    public static readonly NvmeStatus InvalidNamespace = new(StatusCodeType.Generic, 0x0B);
    public static readonly NvmeStatus CommandSequenceError = new(StatusCodeType.Generic, 0x0C);
    public static readonly NvmeStatus PrpOffsetInvalid = new(StatusCodeType.Generic, 0x13);
    public static readonly NvmeStatus NamespaceWriteProtected = new(StatusCodeType.Generic, 0x20);

    // NVMe 1.4 §4.6.1.2.1: Generic Command Status Values, NVM Command Set.
    public static readonly NvmeStatus LbaOutOfRange = new(StatusCodeType.Generic, 0x80);

    // NVMe 1.4 §4.6.1.2.2: Command Specific Status Values.
    public static readonly NvmeStatus CompletionQueueInvalid = new(StatusCodeType.CommandSpecific, 0x00);
    public static readonly NvmeStatus InvalidQueueIdentifier = new(StatusCodeType.CommandSpecific, 0x01);
    public static readonly NvmeStatus InvalidQueueSize = new(StatusCodeType.CommandSpecific, 0x02);
    public static readonly NvmeStatus AsyncEventRequestLimitExceeded = new(StatusCodeType.CommandSpecific, 0x05);
    public static readonly NvmeStatus InvalidInterruptVector = new(StatusCodeType.CommandSpecific, 0x08);
    public static readonly NvmeStatus InvalidLogPage = new(StatusCodeType.CommandSpecific, 0x09);
    public static readonly NvmeStatus InvalidQueueDeletion = new(StatusCodeType.CommandSpecific, 0x0C);
    public static readonly NvmeStatus FeatureNotSaveable = new(StatusCodeType.CommandSpecific, 0x0D);

    // NVMe 1.4 §4.6.1.2.3: Media and Data Integrity Errors.
    public static readonly NvmeStatus WriteFault = new(StatusCodeType.MediaAndDataIntegrity, 0x80);
    public static readonly NvmeStatus UnrecoveredReadError = new(StatusCodeType.MediaAndDataIntegrity, 0x81);
}

namespace Propolis.Core.Hw.Nvme;

/// <summary>Plain typed options of one NVMe controller (one namespace).</summary>
public sealed class NvmeControllerOptions
{
    /// <summary>Serial Number (Identify Controller SN): the block device's name, at most 20
    /// printable ASCII characters; space padded.</summary>
    public required string SerialNumber { get; init; }

    /// <summary>Model Number (MN), at most 40 printable ASCII characters.</summary>
    public string ModelNumber { get; init; } = "propolis-standalone NVMe";

    /// <summary>Firmware Revision (FR), at most 8 printable ASCII characters.</summary>
    public string FirmwareRevision { get; init; } = "1.0";

    /// <summary>PCI Vendor ID (VID): Oxide Computer Company.</summary>
    public ushort VendorId { get; init; } = 0x01DE;

    /// <summary>PCI Subsystem Vendor ID (SSVID).</summary>
    public ushort SubsystemVendorId { get; init; } = 0x01DE;

    /// <summary>Interrupt vectors the PCI function offers (its MSI-X table size): a completion
    /// queue's IV must be below it. 1 + the I/O queue pairs gives each queue its own vector.</summary>
    public int InterruptVectorCount { get; init; } = NvmeController.MaxIoQueuePairs + 1;

    internal void Validate()
    {
        CheckAscii(SerialNumber, 20, nameof(SerialNumber));
        CheckAscii(ModelNumber, 40, nameof(ModelNumber));
        CheckAscii(FirmwareRevision, 8, nameof(FirmwareRevision));
        if (InterruptVectorCount is < 1 or > 2048)
        {
            throw new ArgumentOutOfRangeException(nameof(InterruptVectorCount), InterruptVectorCount,
                "an NVMe controller needs 1 to 2048 interrupt vectors (the MSI-X table size)");
        }
    }

    private static void CheckAscii(string value, int max, string name)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        if (value.Length > max || value.Any(c => c is < ' ' or > '~'))
        {
            throw new ArgumentException($"{name} \"{value}\" must be at most {max} printable ASCII characters", name);
        }
    }
}

using Propolis.Core.Hw.FwCfg;

namespace Propolis.Core.Hw.Acpi;

/// <summary>The three fw_cfg files that hand ACPI tables to OVMF: the tables blob, the RSDP and
/// the loader script that places them and patches their pointers and checksums.</summary>
public sealed class AcpiTables
{
    public const string TablesFileName = "etc/acpi/tables";
    public const string RsdpFileName = "etc/acpi/rsdp";
    public const string TableLoaderFileName = "etc/table-loader";

    internal AcpiTables(byte[] tables, byte[] rsdp, byte[] tableLoader, IReadOnlyDictionary<string, int> offsets)
    {
        Tables = tables;
        Rsdp = rsdp;
        TableLoader = tableLoader;
        Offsets = offsets;
    }

    /// <summary>FACS, DSDT, FADT, MADT, MCFG (if any) and XSDT, in that order; pointers hold
    /// offsets into this blob and checksums are zero until the loader runs.</summary>
    public byte[] Tables { get; }

    public byte[] Rsdp { get; }

    public byte[] TableLoader { get; }

    /// <summary>Offset of each table in <see cref="Tables"/>, by signature ("FACS", "DSDT", "FACP", …).</summary>
    public IReadOnlyDictionary<string, int> Offsets { get; }

    /// <summary>Adds etc/acpi/tables, etc/acpi/rsdp and etc/table-loader.</summary>
    public FwCfgBuilder AddTo(FwCfgBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder
            .AddFile(TablesFileName, Tables)
            .AddFile(RsdpFileName, Rsdp)
            .AddFile(TableLoaderFileName, TableLoader);
    }

    /// <summary>Builds the tables for <paramref name="platform"/>, linked as QEMU links them
    /// (hw/acpi/bios-linker-loader.c): the blob allocated 64-byte aligned below 4 GiB (the FACS
    /// first, so it is 64-byte aligned too), the RSDP in the F segment; ADD_POINTER for
    /// FADT.FIRMWARE_CTRL, FADT.DSDT, FADT.X_DSDT, each XSDT entry and RSDP.XsdtAddress; an
    /// ADD_CHECKSUM for every table after its pointers, and for both RSDP checksums.</summary>
    /// <remarks>OVMF installs every table an ADD_POINTER points at (the FACS and DSDT through
    /// the FADT) and builds its own RSDT/XSDT; the XSDT and RSDP here serve SeaBIOS-style loaders.</remarks>
    public static AcpiTables Build(AcpiPlatform platform)
    {
        ArgumentNullException.ThrowIfNull(platform);
        platform.Validate();

        var blob = new List<byte>();
        var offsets = new Dictionary<string, int>();
        var loader = new TableLoader();
        loader.Allocate(TablesFileName, 64, TableLoaderZone.High);
        loader.Allocate(RsdpFileName, 16, TableLoaderZone.FSeg);

        int Append(string signature, byte[] table)
        {
            var offset = blob.Count;
            blob.AddRange(table);
            offsets[signature] = offset;
            return offset;
        }

        void Pointer(int tableOffset, int field, byte size) =>
            loader.AddPointer(TablesFileName, TablesFileName, (uint)(tableOffset + field), size);

        void Checksum(int tableOffset, int length) =>
            loader.AddChecksum(TablesFileName, (uint)(tableOffset + SdtHeader.Checksum), (uint)tableOffset, (uint)length);

        var facs = Append("FACS", Facs.Build());

        var dsdtTable = Dsdt.Build(platform);
        var dsdt = Append("DSDT", dsdtTable);
        Checksum(dsdt, dsdtTable.Length);

        var fadt = Append("FACP", Fadt.Build(platform, (uint)facs, (ulong)dsdt));
        Pointer(fadt, Fadt.FirmwareCtrl, 4);
        Pointer(fadt, Fadt.Dsdt, 4);
        Pointer(fadt, Fadt.XDsdt, 8);
        Checksum(fadt, Fadt.Size);

        var madtTable = Madt.Build(platform);
        var madt = Append("APIC", madtTable);
        Checksum(madt, madtTable.Length);

        var xsdtEntries = new List<ulong> { (ulong)fadt, (ulong)madt };
        if (platform.Ecam.Size != 0)
        {
            var mcfgTable = Mcfg.Build(platform.Ecam);
            var mcfg = Append("MCFG", mcfgTable);
            Checksum(mcfg, mcfgTable.Length);
            xsdtEntries.Add((ulong)mcfg);
        }

        var xsdtTable = Xsdt.Build(xsdtEntries);
        var xsdt = Append("XSDT", xsdtTable);
        for (int i = 0; i < xsdtEntries.Count; i++)
        {
            Pointer(xsdt, Xsdt.Entries + 8 * i, 8);
        }
        Checksum(xsdt, xsdtTable.Length);

        var rsdp = Acpi.Rsdp.Build((ulong)xsdt);
        loader.AddPointer(RsdpFileName, TablesFileName, Acpi.Rsdp.XsdtAddress, 8);
        loader.AddChecksum(RsdpFileName, Acpi.Rsdp.Checksum, 0, Acpi.Rsdp.V1Size);
        loader.AddChecksum(RsdpFileName, Acpi.Rsdp.ExtendedChecksum, 0, Acpi.Rsdp.Size);

        return new AcpiTables(blob.ToArray(), rsdp, loader.ToArray(), offsets);
    }
}

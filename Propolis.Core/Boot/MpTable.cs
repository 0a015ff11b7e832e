using System.Buffers.Binary;
using Propolis.Core.Memory;

namespace Propolis.Core.Boot;

/// <summary>The Intel MultiProcessor Specification 1.4 tables that tell a directly booted
/// kernel (no firmware, no ACPI MADT) how many CPUs there are and where the I/O APIC is: a
/// floating pointer structure and a configuration table, written at the start of the EBDA,
/// where Linux looks for them (the second place of MP Spec §4: the first KiB of the EBDA).</summary>
/// <remarks>Layout, as firecracker's mptable: one processor entry per vCPU (APIC id = index,
/// vCPU 0 the BSP), one ISA bus, the I/O APIC, ISA IRQs 0–23 identity-mapped to its pins
/// (KVM's default GSI routing), ExtINT on LINT0 of the BSP and NMI on LINT1 of every CPU
/// (virtual wire mode, MP Spec §3.6.2.2).</remarks>
public static class MpTable
{
    /// <summary>Where the floating pointer goes: the EBDA, reserved in the E820 map.</summary>
    public const ulong Address = MemoryLayout.EbdaBase;
    /// <summary>Room the EBDA gives the tables.</summary>
    public const int Capacity = (int)(MemoryLayout.LegacyHoleBase - MemoryLayout.EbdaBase);

    public const byte SpecRevision = 4; // MP Spec 1.4
    public const byte LocalApicVersion = 0x14;
    public const byte IoApicVersion = 0x11;
    public const int IoApicPins = 24;

    // MP Spec 1.4 Table 4-1: MP floating pointer structure.
    private static class FloatingPointer
    {
        public const int Signature = 0;        // "_MP_"
        public const int PhysAddr = Signature + 4;
        public const int Length = PhysAddr + 4; // in 16-byte paragraphs
        public const int SpecRev = Length + 1;
        public const int Checksum = SpecRev + 1;
        public const int Features = Checksum + 1; // five feature bytes
        public const int Size = 16;
    }

    // Table 4-2: MP configuration table header.
    private static class Header
    {
        public const int Signature = 0;        // "PCMP"
        public const int BaseTableLength = Signature + 4;
        public const int SpecRev = BaseTableLength + 2;
        public const int Checksum = SpecRev + 1;
        public const int OemId = Checksum + 1;  // 8 bytes
        public const int ProductId = OemId + 8; // 12 bytes
        public const int OemTablePointer = ProductId + 12;
        public const int OemTableSize = OemTablePointer + 4;
        public const int EntryCount = OemTableSize + 2;
        public const int LocalApicAddress = EntryCount + 2;
        public const int ExtendedTableLength = LocalApicAddress + 4;
        public const int ExtendedTableChecksum = ExtendedTableLength + 2;
        public const int Size = ExtendedTableChecksum + 2;
    }

    // Table 4-3: entry types and lengths.
    private const byte EntryProcessor = 0, EntryBus = 1, EntryIoApic = 2, EntryIoInterrupt = 3, EntryLocalInterrupt = 4;
    private const int ProcessorSize = 20, OtherSize = 8;
    private const byte CpuEnabled = 1, CpuBootstrap = 2;
    private const byte InterruptInt = 0, InterruptNmi = 1, InterruptExtInt = 3;
    private const byte IsaBusId = 0;

    /// <summary>Size of the tables for <paramref name="cpus"/> vCPUs.</summary>
    public static int SizeFor(int cpus) =>
        FloatingPointer.Size + Header.Size + cpus * ProcessorSize + OtherSize /* bus */ + OtherSize /* I/O APIC */
        + (IoApicPins - 1) * OtherSize + 2 * OtherSize;

    /// <summary>Builds the tables for <paramref name="cpus"/> vCPUs, to be placed at <see cref="Address"/>.</summary>
    /// <param name="cpuSignature">CPUID.1:EAX of the vCPUs (family/model/stepping).</param>
    /// <param name="featureFlags">CPUID.1:EDX of the vCPUs.</param>
    public static byte[] Build(int cpus, uint cpuSignature, uint featureFlags)
    {
        var size = SizeFor(cpus);
        if (cpus < 1 || size > Capacity)
            throw new ArgumentOutOfRangeException(nameof(cpus), cpus, $"the MP table for {cpus} CPUs does not fit in the {Capacity}-byte EBDA");
        var t = new byte[size];
        var fp = t.AsSpan(0, FloatingPointer.Size);
        "_MP_"u8.CopyTo(fp[FloatingPointer.Signature..]);
        BinaryPrimitives.WriteUInt32LittleEndian(fp[FloatingPointer.PhysAddr..], (uint)(Address + FloatingPointer.Size));
        fp[FloatingPointer.Length] = 1;
        fp[FloatingPointer.SpecRev] = SpecRevision;
        // Feature byte 1 = 0: a configuration table is present. Byte 2 bit 7 = 0: no IMCR (virtual wire).

        var table = t.AsSpan(FloatingPointer.Size);
        var h = table[..Header.Size];
        "PCMP"u8.CopyTo(h[Header.Signature..]);
        BinaryPrimitives.WriteUInt16LittleEndian(h[Header.BaseTableLength..], (ushort)table.Length);
        h[Header.SpecRev] = SpecRevision;
        "PROPOLIS"u8.CopyTo(h[Header.OemId..]);
        "STANDALONE  "u8.CopyTo(h[Header.ProductId..]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[Header.LocalApicAddress..], (uint)MemoryLayout.LocalApicBase);

        var ioApicId = (byte)cpus; // the first id after the local APICs
        var at = Header.Size;
        var entries = 0;
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            var e = table.Slice(at, ProcessorSize);
            e[0] = EntryProcessor;
            e[1] = (byte)cpu;
            e[2] = LocalApicVersion;
            e[3] = (byte)(CpuEnabled | (cpu == 0 ? CpuBootstrap : 0));
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], cpuSignature);
            BinaryPrimitives.WriteUInt32LittleEndian(e[8..], featureFlags);
            at += ProcessorSize;
            entries++;
        }
        var bus = table.Slice(at, OtherSize);
        bus[0] = EntryBus;
        bus[1] = IsaBusId;
        "ISA   "u8.CopyTo(bus[2..]);
        at += OtherSize;
        entries++;
        var ioApic = table.Slice(at, OtherSize);
        ioApic[0] = EntryIoApic;
        ioApic[1] = ioApicId;
        ioApic[2] = IoApicVersion;
        ioApic[3] = 1; // enabled
        BinaryPrimitives.WriteUInt32LittleEndian(ioApic[4..], (uint)MemoryLayout.IoApicBase);
        at += OtherSize;
        entries++;
        for (var irq = 0; irq < IoApicPins; irq++)
        {
            // As the MADT and the hypervisor's routing: the PIT's IRQ 0 is I/O APIC pin 2; IRQ 2
            // (the PIC cascade) has no pin.
            if (irq == 2)
                continue;
            Interrupt(table.Slice(at, OtherSize), EntryIoInterrupt, InterruptInt, (byte)irq, ioApicId, (byte)(irq == 0 ? 2 : irq));
            at += OtherSize;
            entries++;
        }
        Interrupt(table.Slice(at, OtherSize), EntryLocalInterrupt, InterruptExtInt, 0, 0x00, 0);
        at += OtherSize;
        Interrupt(table.Slice(at, OtherSize), EntryLocalInterrupt, InterruptNmi, 0, 0xFF, 1);
        at += OtherSize;
        entries += 2;

        BinaryPrimitives.WriteUInt16LittleEndian(h[Header.EntryCount..], (ushort)entries);
        h[Header.Checksum] = Checksum(table);
        fp[FloatingPointer.Checksum] = Checksum(fp);
        return t;
    }

    /// <summary>Writes the tables for <paramref name="cpus"/> vCPUs into guest memory.</summary>
    public static void WriteTo(GuestMemory memory, int cpus, uint cpuSignature, uint featureFlags)
    {
        ArgumentNullException.ThrowIfNull(memory);
        memory.Write(Address, Build(cpus, cpuSignature, featureFlags));
    }

    private static void Interrupt(Span<byte> e, byte entryType, byte interruptType, byte sourceIrq, byte destinationId, byte destinationPin)
    {
        e[0] = entryType;
        e[1] = interruptType;
        // e[2..4]: polarity and trigger "conforms to the bus" (0).
        e[4] = IsaBusId;
        e[5] = sourceIrq;
        e[6] = destinationId;
        e[7] = destinationPin;
    }

    /// <summary>The byte that makes <paramref name="data"/> sum to zero (its own slot counted as 0).</summary>
    private static byte Checksum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (var b in data)
            sum += b;
        return (byte)-sum;
    }
}

using System.Buffers.Binary;
using System.Text;
using Propolis.Core.Hw.Nvme;

namespace Propolis.Core.Tests.Hw.Nvme;

public sealed class NvmeAdminTests : IDisposable
{
    private readonly NvmeHarness _h = new(serial: "block-dev-0");

    public NvmeAdminTests() => _h.Enable();

    public void Dispose() => _h.Dispose();

    private byte[] Identify(uint cns, uint nsid = 0)
    {
        _h.WriteGuest(NvmeHarness.IdentifyBuffer, new byte[4096].AsSpan().ToArray().Select(_ => (byte)0xEE).ToArray());
        var c = _h.Admin_(new Command { Opcode = 0x06, Nsid = nsid, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = cns });
        Assert.Equal(NvmeStatus.Success, c.Status);
        return _h.ReadGuest(NvmeHarness.IdentifyBuffer, 4096);
    }

    [Fact]
    public void IdentifyControllerPinnedFields()
    {
        var d = Identify(1);
        Assert.Equal(new byte[] { 0xDE, 0x01, 0xDE, 0x01 }, d[0..4]);                       // VID, SSVID
        Assert.Equal("block-dev-0         ", Encoding.ASCII.GetString(d, 4, 20));            // SN
        Assert.Equal("propolis-standalone NVMe".PadRight(40), Encoding.ASCII.GetString(d, 24, 40)); // MN
        Assert.Equal("1.0     ", Encoding.ASCII.GetString(d, 64, 8));                        // FR
        Assert.Equal(8, d[77]);                                                              // MDTS
        Assert.Equal(0x0001_0400u, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(80)));  // VER
        Assert.Equal(3, d[259]);                                                             // AERL
        Assert.Equal(0x66, d[512]);                                                          // SQES
        Assert.Equal(0x44, d[513]);                                                          // CQES
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(516)));            // NN
        Assert.Equal(0x000C, BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(520)));       // ONCS: DSM, Write Zeroes
        Assert.Equal(0x07, d[524]);                                                          // VWC
        Assert.Equal(0x0100, BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(256)));       // OACS: Doorbell Buffer Config
        Assert.StartsWith("nqn.", Encoding.ASCII.GetString(d, 768, 8));
        Assert.Equal(0, d[4095]);                                                            // the rest is zero, not left over
    }

    [Fact]
    public void IdentifyNamespaceAndActiveList()
    {
        var ns = Identify(0, nsid: 1);
        Assert.Equal((4UL << 20) / 512, BinaryPrimitives.ReadUInt64LittleEndian(ns));  // NSZE
        Assert.Equal(9, ns[130]);                                                     // LBAF0.LBADS = 512 bytes
        Assert.Equal(0, ns[99]);                                                      // not write protected
        var list = Identify(2, nsid: 0);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(list));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(list.AsSpan(4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(Identify(2, nsid: 1)));
        // NGUID: Oxide OUI, then the first 13 bytes of the serial; the same in the descriptor list.
        var nguid = new byte[] { 0xA8, 0x40, 0x25, (byte)'b', (byte)'l', (byte)'o', (byte)'c', (byte)'k', (byte)'-', (byte)'d', (byte)'e', (byte)'v', (byte)'-', (byte)'0', 0, 0 };
        Assert.Equal(nguid, ns[104..120]);
        var descriptors = Identify(3, nsid: 1);
        Assert.Equal(new byte[] { 2, 16, 0, 0 }, descriptors[0..4]);
        Assert.Equal(nguid, descriptors[4..20]);
        Assert.Equal(new byte[4], descriptors[20..24]);
        Assert.Equal(NvmeStatus.InvalidNamespace, _h.Admin_(new Command { Opcode = 0x06, Nsid = 2, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = 0 }).Status);
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x06, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = 0x55 }).Status);
    }

    [Fact]
    public void IdentifyWithBufferOutsideRamIsDataTransferError()
    {
        Assert.Equal(NvmeStatus.DataTransferError, _h.Admin_(new Command { Opcode = 0x06, Prp1 = NvmeHarness.OutsideRam, Cdw10 = 1 }).Status);
    }

    [Fact]
    public void UnknownAdminOpcodeIsInvalidOpcode()
    {
        Assert.Equal(NvmeStatus.InvalidOpcode, _h.Admin_(new Command { Opcode = 0x80 }).Status);
        Assert.Equal(NvmeStatus.InvalidOpcode, _h.Admin_(new Command { Opcode = 0x10 }).Status); // Firmware Commit
    }

    [Fact]
    public void AdminCompletionsRaiseVectorZero()
    {
        _h.Admin_(new Command { Opcode = 0x06, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = 1 });
        Assert.Equal([(ushort)0], _h.Interrupts.Raised.ToArray());
    }

    [Fact]
    public void CreateQueueErrors()
    {
        var sq = NvmeHarness.QueueArea;
        NvmeStatus CreateCq(uint cdw10, uint cdw11, ulong prp1 = NvmeHarness.QueueArea) =>
            _h.Admin_(new Command { Opcode = 0x05, Prp1 = prp1, Cdw10 = cdw10, Cdw11 = cdw11 }).Status;
        NvmeStatus CreateSq(uint cdw10, uint cdw11) =>
            _h.Admin_(new Command { Opcode = 0x01, Prp1 = sq + 0x8000, Cdw10 = cdw10, Cdw11 = cdw11 }).Status;

        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, CreateCq((15u << 16) | 0, 1));
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, CreateCq((15u << 16) | 17, 1));
        Assert.Equal(NvmeStatus.InvalidQueueSize, CreateCq((0u << 16) | 1, 1));
        Assert.Equal(NvmeStatus.InvalidField, CreateCq((15u << 16) | 1, 0));                       // PC = 0
        Assert.Equal(NvmeStatus.InvalidField, CreateCq((15u << 16) | 1, 1, NvmeHarness.QueueArea + 8)); // not page aligned
        Assert.Equal(NvmeStatus.InvalidField, CreateCq((15u << 16) | 1, 1, NvmeHarness.OutsideRam));
        Assert.Equal(NvmeStatus.InvalidInterruptVector, CreateCq((15u << 16) | 1, (17u << 16) | 3));
        Assert.Equal(NvmeStatus.Success, CreateCq((15u << 16) | 1, (1u << 16) | 3));
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, CreateCq((15u << 16) | 1, (1u << 16) | 3)); // exists

        Assert.Equal(NvmeStatus.CompletionQueueInvalid, CreateSq((15u << 16) | 1, (2u << 16) | 1));
        Assert.Equal(NvmeStatus.CompletionQueueInvalid, CreateSq((15u << 16) | 1, (0u << 16) | 1));
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, CreateSq((15u << 16) | 0, (1u << 16) | 1));
        Assert.Equal(NvmeStatus.InvalidQueueSize, CreateSq((0u << 16) | 1, (1u << 16) | 1));
        Assert.Equal(NvmeStatus.InvalidField, CreateSq((15u << 16) | 1, (1u << 16) | 0));
        Assert.Equal(NvmeStatus.Success, CreateSq((15u << 16) | 1, (1u << 16) | 1));

        // Delete: CQ still in use, unknown ids, then the right order.
        Assert.Equal(NvmeStatus.InvalidQueueDeletion, _h.Admin_(new Command { Opcode = 0x04, Cdw10 = 1 }).Status);
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, _h.Admin_(new Command { Opcode = 0x00, Cdw10 = 0 }).Status);
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, _h.Admin_(new Command { Opcode = 0x00, Cdw10 = 2 }).Status);
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, _h.Admin_(new Command { Opcode = 0x04, Cdw10 = 0 }).Status);
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x00, Cdw10 = 1 }).Status);
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x04, Cdw10 = 1 }).Status);
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, _h.Admin_(new Command { Opcode = 0x04, Cdw10 = 1 }).Status);
    }

    [Fact]
    public void IoEntrySizesMustBeConfiguredBeforeCreatingQueues()
    {
        using var h = new NvmeHarness();
        h.Enable(ccExtra: 0);
        Assert.Equal(NvmeStatus.InvalidQueueSize, h.CreateIoQueuePair(1));
    }

    [Fact]
    public void NumberOfQueues()
    {
        var c = _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x07, Cdw11 = (63u << 16) | 63 });
        Assert.Equal(NvmeStatus.Success, c.Status);
        Assert.Equal((15u << 16) | 15, c.Dw0);
        c = _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x07, Cdw11 = (1u << 16) | 1 });
        Assert.Equal((1u << 16) | 1, c.Dw0);
        Assert.Equal((1u << 16) | 1, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x07 }).Dw0);
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x07, Cdw11 = 0xFFFF }).Status);
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(2));
        Assert.Equal(NvmeStatus.InvalidQueueIdentifier, _h.CreateIoQueuePair(3));
        Assert.Equal(NvmeStatus.CommandSequenceError, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x07, Cdw11 = 0 }).Status);
    }

    [Fact]
    public void FeaturesAreStoredAndReported()
    {
        Assert.Equal(1u, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x06 }).Dw0); // VWC enabled by default
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x06, Cdw11 = 0 }).Status);
        Assert.Equal(0u, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x06 }).Dw0);
        Assert.False(_h.Controller.VolatileWriteCacheEnabled);
        _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x08, Cdw11 = 0x0A04 });
        Assert.Equal(0x0A04u, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x08 }).Dw0);
        Assert.Equal(0x0A04u, _h.Controller.InterruptCoalescing);
        Assert.Equal(0u, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x08 | (1 << 8) }).Dw0); // default
        Assert.Equal(4u, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x08 | (3 << 8) }).Dw0); // changeable
        _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x0B, Cdw11 = 0x1FF });
        Assert.Equal(0x1FFu, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x0B }).Dw0);
        _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x09, Cdw11 = 0x1_0003 });
        Assert.Equal(0x1_0003u, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x09, Cdw11 = 3 }).Dw0);
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x09, Cdw11 = 17 }).Status);
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x02, Cdw11 = 1 }).Status); // PS 1
        Assert.Equal(NvmeStatus.FeatureNotSaveable, _h.Admin_(new Command { Opcode = 0x09, Cdw10 = 0x8000_0006, Cdw11 = 1 }).Status);
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x7F }).Status);
        // A controller reset restores the defaults.
        _h.Write32(0x14, NvmeHarness.CcIoEntrySizes);
        _h.Admin.SqTail = 0; _h.Admin.CqHead = 0; _h.Admin.Phase = true;
        _h.WriteGuest(NvmeHarness.AdminCq, new byte[64 * 16]);
        _h.Enable();
        Assert.Equal(1u, _h.Admin_(new Command { Opcode = 0x0A, Cdw10 = 0x06 }).Dw0);
    }

    [Fact]
    public void AbortIsAnsweredCommandNotAborted()
    {
        var c = _h.Admin_(new Command { Opcode = 0x08, Cdw10 = 0x1234_0001 });
        Assert.Equal(NvmeStatus.Success, c.Status);
        Assert.Equal(1u, c.Dw0 & 1);
    }

    [Fact]
    public void AsyncEventRequestsAreHeldUpToTheLimitAndReportInvalidDoorbells()
    {
        var cids = new ushort[4];
        for (var i = 0; i < 4; i++)
        {
            cids[i] = _h.NextCid();
            _h.Submit(_h.Admin, new Command { Opcode = 0x0C, CommandId = cids[i] });
        }
        Assert.False(_h.TryPoll(_h.Admin, out _));
        Assert.Equal(NvmeStatus.AsyncEventRequestLimitExceeded, _h.Admin_(new Command { Opcode = 0x0C }).Status);

        // SQ tail doorbell value beyond the admin queue: Invalid Doorbell Write Value (§5.2.1).
        _h.Write32(0x1000, 64);
        var e = _h.Poll(_h.Admin);
        Assert.Equal(cids[0], e.CommandId);
        Assert.Equal(0x0001_0100u, e.Dw0);
        // A doorbell of a queue that does not exist: Write to Invalid Doorbell Register.
        _h.Write32(0x1000 + 5 * 8, 1);
        e = _h.Poll(_h.Admin);
        Assert.Equal(cids[1], e.CommandId);
        Assert.Equal(0x0001_0000u, e.Dw0);
        // The admin queue still works; the invalid values were ignored.
        Assert.Equal(NvmeStatus.Success, _h.Admin_(new Command { Opcode = 0x06, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = 1 }).Status);
    }

    [Fact]
    public void EventsWithoutOutstandingRequestWaitForOne()
    {
        _h.Write32(0x1004, 1000); // CQ head beyond the admin CQ
        var c = _h.Admin_(new Command { Opcode = 0x0C });
        Assert.Equal(0x0001_0100u, c.Dw0);
    }

    [Fact]
    public void GetLogPageHandlesOffsetsAndLengths()
    {
        var buf = NvmeHarness.IdentifyBuffer;
        NvmeStatus Log(uint lid, uint numd, ulong offset, uint nsid = 0xFFFF_FFFF) =>
            _h.Admin_(new Command
            {
                Opcode = 0x02, Nsid = nsid, Prp1 = buf, Cdw10 = lid | (((numd - 1) & 0xFFFF) << 16),
                Cdw11 = (numd - 1) >> 16, Cdw12 = (uint)offset, Cdw13 = (uint)(offset >> 32),
            }).Status;

        _h.WriteGuest(buf, Enumerable.Repeat((byte)0xEE, 1024).ToArray());
        Assert.Equal(NvmeStatus.Success, Log(0x02, 128, 0));
        var smart = _h.ReadGuest(buf, 512);
        Assert.Equal(310, BinaryPrimitives.ReadUInt16LittleEndian(smart.AsSpan(1)));
        Assert.Equal(100, smart[3]);

        // Firmware slot log from offset 8: FRS1 first.
        Assert.Equal(NvmeStatus.Success, Log(0x03, 2, 8));
        Assert.Equal("1.0     ", Encoding.ASCII.GetString(_h.ReadGuest(buf, 8)));

        // Beyond the end of the log: zeros after the log's bytes.
        _h.WriteGuest(buf, Enumerable.Repeat((byte)0xEE, 256).ToArray());
        Assert.Equal(NvmeStatus.Success, Log(0x01, 32, 32));
        Assert.All(_h.ReadGuest(buf, 128), b => Assert.Equal(0, b));
        Assert.Equal(0xEE, _h.ReadGuest(buf + 128, 1)[0]);

        Assert.Equal(NvmeStatus.InvalidLogPage, Log(0x7F, 1, 0));
        Assert.Equal(NvmeStatus.InvalidField, Log(0x02, 1, 2));     // offset not dword aligned
        Assert.Equal(NvmeStatus.InvalidField, Log(0x02, 1, 512));   // offset past the log
        Assert.Equal(NvmeStatus.InvalidField, Log(0x02, (1 << 18) + 1, 0)); // above MDTS
        Assert.Equal(NvmeStatus.InvalidNamespace, Log(0x02, 1, 0, nsid: 7));
    }

    [Fact]
    public void SmartLogCountsHostCommands()
    {
        Assert.Equal(NvmeStatus.Success, _h.CreateIoQueuePair(1));
        var q = _h.Io[1];
        _h.WriteBlocks(q, 0, 8, NvmeHarness.Arena);
        _h.ReadBlocks(q, 0, 8, NvmeHarness.Arena);
        _h.ReadBlocks(q, 0, 8, NvmeHarness.Arena);
        _h.Admin_(new Command { Opcode = 0x02, Nsid = 0xFFFF_FFFF, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = 0x02 | (127u << 16) });
        var smart = _h.ReadGuest(NvmeHarness.IdentifyBuffer, 512);
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(smart.AsSpan(32))); // data units read (rounded up)
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(smart.AsSpan(64))); // host read commands
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(smart.AsSpan(80))); // host write commands
    }

    [Fact]
    public void FusedOrSglCommandsAreInvalidField()
    {
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x06, Cdw0Flags = 1u << 14, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = 1 }).Status);
        Assert.Equal(NvmeStatus.InvalidField, _h.Admin_(new Command { Opcode = 0x06, Cdw0Flags = 1u << 8, Prp1 = NvmeHarness.IdentifyBuffer, Cdw10 = 1 }).Status);
    }
}

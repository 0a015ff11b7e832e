using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>
/// Exact frame bytes, derived by hand from the bincode 1.3 legacy rules and the field order
/// of crucible-protocol (message version 13, oxidecomputer/crucible 6d037cb6). Each frame is
/// the u32 LE length (which counts itself) followed by the u32 LE variant index and the
/// fields. The byte groups are annotated with the field they encode.
/// </summary>
public class GoldenFrameTests
{
    // Uuids encode as serde bytes: u64 length 16, then the RFC 4122 (big-endian) bytes.
    private static readonly Guid U1 = Guid.Parse("01020304-0506-0708-090a-0b0c0d0e0f10");
    private static readonly Guid U2 = Guid.Parse("a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf");
    private const string U1Hex = "1000000000000000 0102030405060708090a0b0c0d0e0f10";
    private const string U2Hex = "1000000000000000 a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)(i * 7 + seed);
        }
        return data;
    }

    private static EncryptionContext Ctx() => new(
        Hex.Parse("000102030405060708090a0b"), Hex.Parse("101112131415161718191a1b1c1d1e1f"));

    private static void AssertFrame(string expectedHex, Message message, byte[]? trailingData = null)
    {
        byte[] expected = Hex.Parse(expectedHex);
        if (trailingData is not null)
        {
            expected = [.. expected, .. trailingData];
        }

        byte[] encoded = MessageWriter.ToArray(message);
        Assert.Equal(Hex.Format(expected), Hex.Format(encoded));
        Assert.Equal(expected.Length, MessageWriter.GetFrameLength(message));

        // And the bytes decode to the same message, consuming exactly the frame.
        Assert.Equal(ReadStatus.Complete, MessageReader.TryRead(expected.AsMemory(), out Message? decoded, out int consumed, out _));
        Assert.Equal(expected.Length, consumed);
        Assert.Equal(message, decoded);
    }

    [Fact]
    public void HereIAm_MatchesTheRealHereIAmVersionTest()
    {
        // protocol/src/lib.rs `here_i_am_version`: version 123, generation 567,
        // read_only true, encrypted false, alternate_versions [8, 9].
        AssertFrame($"""
            56000000          // frame length 86, prefix included
            00000000          // tag 0: HereIAm
            7b000000          // version: u32 123
            {U1Hex}           // upstairs_id
            {U2Hex}           // session_id
            3702000000000000  // generation: u64 567
            01                // read_only: true
            00                // encrypted: false
            0200000000000000  // alternate_versions.len()
            08000000          // alternate_versions[0]
            09000000          // alternate_versions[1]
            """,
            new Message.HereIAm(123, U1, U2, 567, ReadOnly: true, Encrypted: false, new uint[] { 8, 9 }));
    }

    [Fact]
    public void YesItsMe_V4_MatchesTheRealYesItsMeVersionTest()
    {
        AssertFrame("""
            16000000  // frame length 22
            01000000  // tag 1: YesItsMe
            7b000000  // version 123
            00000000  // SocketAddr::V4
            7f000001  // ip 127.0.0.1, octets in order
            7b00      // port: u16 123
            """,
            new Message.YesItsMe(123, SocketAddr.Parse("127.0.0.1:123")));
    }

    [Fact]
    public void YesItsMe_V6_MatchesTheRealYesItsMeVersionTest()
    {
        AssertFrame("""
            22000000                          // frame length 34
            01000000                          // tag 1: YesItsMe
            7b000000                          // version 123
            01000000                          // SocketAddr::V6
            ff1d0000000000000000000000 00012e // ip ff1d::12e, 16 octets (no flowinfo, no scope id)
            c801                              // port: u16 456
            """,
            new Message.YesItsMe(123, SocketAddr.Parse("[ff1d::12e]:456")));
    }

    [Fact]
    public void VersionMismatch_MatchesTheRealVersionMismatchTest()
    {
        AssertFrame("""
            0c000000  // frame length 12
            02000000  // tag 2: VersionMismatch
            56340000  // version 0x3456
            """,
            new Message.VersionMismatch(0x3456));
    }

    [Fact]
    public void Ruok_IsATagOnly()
    {
        AssertFrame("08000000 09000000", Message.Ruok.Instance);
        AssertFrame("08000000 0a000000", Message.Imok.Instance);
    }

    [Fact]
    public void RegionInfo()
    {
        AssertFrame($"""
            49000000          // frame length 73
            1a000000          // tag 26: RegionInfo
            0002000000000000  // block_size: u64 512
            6400000000000000  // extent_size.value: u64 100
            09000000          // extent_size.shift: u32 9
            0f000000          // extent_count: u32 15
            {U1Hex}           // uuid
            01                // encrypted: true
            0100000000000000  // database_read_version: usize as u64
            0100000000000000  // database_write_version
            """,
            new Message.RegionInfo(new RegionDefinition
            {
                BlockSize = 512,
                ExtentSize = new Block(100, 9),
                ExtentCount = 15,
                Uuid = U1,
                Encrypted = true,
                DatabaseReadVersion = 1,
                DatabaseWriteVersion = 1,
            }));
    }

    [Fact]
    public void Write_TwoBlocks_HeaderThenLengthThenTrailingData()
    {
        byte[] data = Pattern(1024, 3);
        var header = new WriteHeader(U1, U2, new JobId(1000), new[] { new JobId(998), new JobId(999) },
            new BlockIndex(7),
            new[] { new BlockContext(0x1122334455667788, null), new BlockContext(0x99aabbccddeeff00, Ctx()) });
        AssertFrame($"""
            9e040000          // frame length 1182 = 158 header bytes + 1024 data bytes
            1e000000          // tag 30: Write
            {U1Hex}           // header.upstairs_id
            {U2Hex}           // header.session_id
            e803000000000000  // header.job_id 1000
            0200000000000000  // header.dependencies.len()
            e603000000000000  // 998
            e703000000000000  // 999
            0700000000000000  // header.start: BlockIndex 7
            0200000000000000  // header.contexts.len()
            8877665544332211  // contexts[0].hash
            00                //   encryption_context: None
            00ffeeddccbbaa99  // contexts[1].hash
            01                //   encryption_context: Some
            000102030405060708090a0b          // nonce [u8; 12], no length
            101112131415161718191a1b1c1d1e1f  // tag [u8; 16], no length
            0004000000000000  // data.len() = 1024, then the data ends the frame
            """,
            new Message.Write(header, data), data);
    }

    [Fact]
    public void WriteUnwritten_SharesTheWriteLayout()
    {
        byte[] data = Pattern(512, 9);
        var header = new WriteHeader(U1, U2, new JobId(5), ValueArray<JobId>.Empty, new BlockIndex(0),
            new[] { new BlockContext(1, null) });
        AssertFrame($"""
            69020000          // frame length 617 = 105 + 512
            26000000          // tag 38: WriteUnwritten
            {U1Hex} {U2Hex}
            0500000000000000  // job_id 5
            0000000000000000  // no dependencies
            0000000000000000  // start 0
            0100000000000000 0100000000000000 00  // one context: hash 1, None
            0002000000000000  // data.len() = 512
            """,
            new Message.WriteUnwritten(header, data), data);
    }

    [Fact]
    public void ReadResponse_OkWithEachReadBlockContextVariant()
    {
        byte[] data = Pattern(1536, 1);
        var header = new ReadResponseHeader(U1, U2, new JobId(1000),
            CrucibleResult<ValueArray<ReadBlockContext>>.Ok(new[]
            {
                ReadBlockContext.Unencrypted(0x0123456789abcdef),
                ReadBlockContext.Empty,
                ReadBlockContext.Encrypted(Ctx()),
            }));
        AssertFrame($"""
            84060000          // frame length 1668 = 132 + 1536
            25000000          // tag 37: ReadResponse
            {U1Hex}           // header.upstairs_id
            {U2Hex}           // header.session_id
            e803000000000000  // header.job_id 1000
            00000000          // header.blocks: Result::Ok
            0300000000000000  // Vec<ReadBlockContext>.len()
            02000000 efcdab8967452301  // Unencrypted with hash
            00000000                   // Empty
            01000000 000102030405060708090a0b 101112131415161718191a1b1c1d1e1f  // Encrypted with ctx: nonce, tag
            0006000000000000  // data.len() = 1536, then the data
            """,
            new Message.ReadResponse(header, data), data);
    }

    [Fact]
    public void ReadResponse_Err()
    {
        var header = new ReadResponseHeader(U1, U2, new JobId(1000),
            CrucibleResult<ValueArray<ReadBlockContext>>.Err(CrucibleError.IoError("disk on fire")));
        AssertFrame($"""
            64000000          // frame length 100
            25000000          // tag 37: ReadResponse
            {U1Hex} {U2Hex}
            e803000000000000  // job_id 1000
            01000000          // header.blocks: Result::Err
            01000000          // CrucibleError::IoError
            0c00000000000000 6469736b206f6e2066697265  // String "disk on fire"
            0000000000000000  // data.len() = 0
            """,
            new Message.ReadResponse(header, ReadOnlyMemory<byte>.Empty));
    }

    [Fact]
    public void Flush_WithSnapshotAndExtentLimit()
    {
        AssertFrame($"""
            72000000          // frame length 114
            20000000          // tag 32: Flush
            {U1Hex} {U2Hex}
            e903000000000000  // job_id 1001
            0100000000000000 e803000000000000  // dependencies [1000]
            2a00000000000000  // flush_number 42
            0300000000000000  // gen_number 3
            01 0400000000000000 736e6170  // snapshot_details: Some(SnapshotDetails with snapshot_name "snap")
            01 05000000       // extent_limit: Some(ExtentId(5))
            """,
            new Message.Flush(U1, U2, new JobId(1001), new[] { new JobId(1000) }, 42, 3,
                new SnapshotDetails("snap"), new ExtentId(5)));
    }

    [Fact]
    public void Flush_WithoutOptions()
    {
        AssertFrame($"""
            5a000000          // frame length 90
            20000000          // tag 32: Flush
            {U1Hex} {U2Hex}
            e903000000000000  // job_id 1001
            0000000000000000  // no dependencies
            2a00000000000000  // flush_number 42
            0300000000000000  // gen_number 3
            00                // snapshot_details: None
            00                // extent_limit: None
            """,
            new Message.Flush(U1, U2, new JobId(1001), ValueArray<JobId>.Empty, 42, 3, null, null));
    }

    [Fact]
    public void ErrorReport_StringVariant()
    {
        AssertFrame($"""
            50000000          // frame length 80
            28000000          // tag 40: ErrorReport
            {U1Hex} {U2Hex}
            e803000000000000  // job_id 1000
            01000000          // CrucibleError::IoError (index 1)
            0400000000000000 626f6f6d  // "boom"
            """,
            new Message.ErrorReport(U1, U2, new JobId(1000), CrucibleError.IoError("boom")));
    }

    [Fact]
    public void ErrorReport_NegotiationErrorVariant()
    {
        AssertFrame($"""
            58000000          // frame length 88
            28000000          // tag 40: ErrorReport
            {U1Hex} {U2Hex}
            e803000000000000  // job_id 1000
            29000000          // CrucibleError::NegotiationError (index 41)
            02000000          // NegotiationError::GenerationNumberTooLow (index 2)
            0300000000000000  // requested 3
            0500000000000000  // actual 5
            """,
            new Message.ErrorReport(U1, U2, new JobId(1000),
                CrucibleError.NegotiationError(NegotiationError.GenerationNumberTooLow(3, 5))));
    }

    [Fact]
    public void ErrorReport_StructVariant()
    {
        AssertFrame($"""
            50000000          // frame length 80
            28000000          // tag 40: ErrorReport
            {U1Hex} {U2Hex}
            e803000000000000  // job_id 1000
            24000000          // CrucibleError::MissingContextSlot (index 36)
            0102000000000000  // block 513
            02000000          // extent 2
            """,
            new Message.ErrorReport(U1, U2, new JobId(1000), CrucibleError.MissingContextSlot(513, 2)));
    }

    [Fact]
    public void WriteAck_OkIsResultTagOnly()
    {
        AssertFrame($"""
            44000000          // frame length 68
            1f000000          // tag 31: WriteAck
            {U1Hex} {U2Hex}
            0900000000000000  // job_id 9
            00000000          // result: Ok(())
            """,
            new Message.WriteAck(U1, U2, new JobId(9), null));
    }

    [Fact]
    public void ExtentLiveCloseAck_OkTuple()
    {
        AssertFrame($"""
            55000000          // frame length 85
            16000000          // tag 22: ExtentLiveCloseAck
            {U1Hex} {U2Hex}
            0900000000000000  // job_id 9
            00000000          // result: Ok
            0400000000000000  // gen 4
            0600000000000000  // flush 6
            01                // dirty true
            """,
            new Message.ExtentLiveCloseAck(U1, U2, new JobId(9),
                CrucibleResult<(ulong, ulong, bool)>.Ok((4, 6, true))));
    }

    [Fact]
    public void ExtentRepair_ClientIdsAreBytes()
    {
        AssertFrame("""
            29000000          // frame length 41
            0e000000          // tag 14: ExtentRepair
            0b00000000000000  // repair_id 11
            03000000          // extent_id 3
            01                // source_client_id 1
            00000000 0a000001 b80b  // source_repair_address 10.0.0.1:3000
            0200000000000000 00 02  // dest_clients [0, 2]
            """,
            new Message.ExtentRepair(new ReconciliationId(11), new ExtentId(3), new ClientId(1),
                SocketAddr.Parse("10.0.0.1:3000"), new[] { new ClientId(0), new ClientId(2) }));
    }

    [Fact]
    public void LastFlush_Option()
    {
        AssertFrame("11000000 1d000000 01 0700000000000000", new Message.LastFlush(new JobId(7)));
        AssertFrame("09000000 1d000000 00", new Message.LastFlush(null));
    }

    [Fact]
    public void Unknown_IsU32AndLengthPrefixedBytes()
    {
        AssertFrame("""
            17000000          // frame length 23
            29000000          // tag 41: Unknown
            efbeadde          // u32
            0300000000000000 aabbcc  // BytesMut with its length
            """,
            new Message.Unknown(0xdeadbeef, new byte[] { 0xaa, 0xbb, 0xcc }));
    }

    [Fact]
    public void ReadBlockContext_EncryptedIs32Bytes_AsTheRealReadBlockContextSizeTest()
    {
        // protocol/src/lib.rs `read_block_context_size`.
        var ctx = new EncryptionContext(
            new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2 },
            new byte[] { 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25 });
        var header = new ReadResponseHeader(U1, U2, new JobId(0),
            CrucibleResult<ValueArray<ReadBlockContext>>.Ok(new[] { ReadBlockContext.Encrypted(ctx) }));
        byte[] frame = MessageWriter.ToArray(new Message.ReadResponse(header, new byte[512]));
        int at = 4 + 4 + 24 + 24 + 8 + 4 + 8; // prefix, tag, ids, job, Ok, Vec length
        Assert.Equal(
            "01000000" + "010203040506070809000102" + "0a0b0c0d0e0f10111213141516171819",
            Hex.Format(frame.AsSpan(at, 32)));
    }

    [Fact]
    public void MessageVersionAndLimitAreThoseOfTheSource()
    {
        Assert.Equal(13u, CrucibleProtocol.CrucibleMessageVersion);
        Assert.Equal(104857600, CrucibleProtocol.MaxFrameLength);
        Assert.Equal(42u, Message.VariantCount);
        Assert.Equal(42, Enum.GetValues<MessageTag>().Length);
        Assert.Equal(42u, CrucibleError.VariantCount);
        Assert.Equal(41u, (uint)CrucibleErrorKind.NegotiationError);
        Assert.Equal(36u, (uint)CrucibleErrorKind.MissingContextSlot);
    }
}

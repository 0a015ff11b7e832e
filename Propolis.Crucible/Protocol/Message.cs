using Propolis.Crucible.Protocol.Bincode;

namespace Propolis.Crucible.Protocol;

/// <summary>
/// The discriminants of <c>crucible_protocol::Message</c> (<c>MessageDiscriminants</c>):
/// bincode writes the variant's declaration index as a little-endian <c>u32</c>, first in
/// the frame body. Message version 13 has 42 variants.
/// </summary>
public enum MessageTag : uint
{
    HereIAm = 0,
    YesItsMe = 1,
    VersionMismatch = 2,
    ReadOnlyMismatch = 3,
    EncryptedMismatch = 4,
    PromoteToActive = 5,
    YouAreNowActive = 6,
    YouAreNoLongerActive = 7,
    UuidMismatch = 8,
    Ruok = 9,
    Imok = 10,
    ExtentClose = 11,
    ExtentReopen = 12,
    ExtentFlush = 13,
    ExtentRepair = 14,
    RepairAckId = 15,
    ExtentError = 16,
    ExtentLiveClose = 17,
    ExtentLiveFlushClose = 18,
    ExtentLiveRepair = 19,
    ExtentLiveReopen = 20,
    ExtentLiveNoOp = 21,
    ExtentLiveCloseAck = 22,
    ExtentLiveRepairAckId = 23,
    ExtentLiveAckId = 24,
    RegionInfoPlease = 25,
    RegionInfo = 26,
    ExtentVersionsPlease = 27,
    ExtentVersions = 28,
    LastFlush = 29,
    Write = 30,
    WriteAck = 31,
    Flush = 32,
    FlushAck = 33,
    Barrier = 34,
    BarrierAck = 35,
    ReadRequest = 36,
    ReadResponse = 37,
    WriteUnwritten = 38,
    WriteUnwrittenAck = 39,
    ErrorReport = 40,
    Unknown = 41,
}

/// <summary><c>SnapshotDetails { snapshot_name: String }</c>, carried by a Flush.</summary>
public sealed record SnapshotDetails(string SnapshotName);

/// <summary>
/// <c>WriteHeader</c>: everything of a Write / WriteUnwritten but its bulk data. The number
/// of blocks is <c>Contexts.Count</c>, which must match <c>data.len() / block_size</c>.
/// </summary>
public sealed record WriteHeader(
    Guid UpstairsId,
    Guid SessionId,
    JobId JobId,
    ValueArray<JobId> Dependencies,
    BlockIndex Start,
    ValueArray<BlockContext> Contexts)
{
    internal static WriteHeader Read(ref BincodeReader r) => new(
        r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r),
        new BlockIndex(r.ReadU64()), Wire.ReadBlockContexts(ref r));

    internal void Write(ref BincodeWriter w)
    {
        w.WriteUuid(UpstairsId);
        w.WriteUuid(SessionId);
        JobId.Write(ref w);
        Wire.WriteJobIds(ref w, Dependencies);
        w.WriteU64(Start.Value);
        Wire.WriteBlockContexts(ref w, Contexts);
    }
}

/// <summary><c>ReadResponseHeader</c>: everything of a ReadResponse but its bulk data.</summary>
public sealed record ReadResponseHeader(
    Guid UpstairsId,
    Guid SessionId,
    JobId JobId,
    CrucibleResult<ValueArray<ReadBlockContext>> Blocks)
{
    internal static ReadResponseHeader Read(ref BincodeReader r)
    {
        Guid up = r.ReadUuid();
        Guid session = r.ReadUuid();
        JobId job = JobId.Read(ref r);
        CrucibleResult<ValueArray<ReadBlockContext>> blocks = Wire.ReadResultTag(ref r)
            ? CrucibleResult<ValueArray<ReadBlockContext>>.Ok(Wire.ReadReadBlockContexts(ref r))
            : CrucibleResult<ValueArray<ReadBlockContext>>.Err(CrucibleError.Read(ref r));
        return new ReadResponseHeader(up, session, job, blocks);
    }

    internal void Write(ref BincodeWriter w)
    {
        w.WriteUuid(UpstairsId);
        w.WriteUuid(SessionId);
        JobId.Write(ref w);
        Wire.WriteResultTag(ref w, Blocks.IsOk);
        if (Blocks.IsOk)
        {
            Wire.WriteReadBlockContexts(ref w, Blocks.Value);
        }
        else
        {
            Blocks.Error!.Write(ref w);
        }
    }
}

/// <summary>
/// <c>crucible_protocol::Message</c>, one nested record per variant, named and ordered as in
/// <c>protocol/src/lib.rs</c> (message version 13). Each record's positional parameters are
/// its fields in wire order. Unit results (<c>Result&lt;(), CrucibleError&gt;</c>) are a
/// nullable <see cref="CrucibleError"/>: null is <c>Ok(())</c>.
/// </summary>
/// <remarks>
/// <see cref="Write"/>, <see cref="WriteUnwritten"/> and <see cref="ReadResponse"/> carry bulk
/// data that ends the frame (after its <c>u64</c> length). A decoder may hand it out as a
/// slice of its receive buffer; see <see cref="MessageReader"/>.
/// </remarks>
public abstract record Message
{
    /// <summary>Number of variants: a received tag must be below this.</summary>
    public const uint VariantCount = (uint)MessageTag.Unknown + 1;

    private protected Message()
    {
    }

    /// <summary>This variant's discriminant.</summary>
    public abstract MessageTag Tag { get; }

    /// <summary>Bulk data that follows the encoded header at the end of the frame.</summary>
    internal virtual ReadOnlyMemory<byte> BulkData => ReadOnlyMemory<byte>.Empty;

    /// <summary>Writes the fields after the tag; bulk variants stop after the data length.</summary>
    internal abstract void WriteFields(ref BincodeWriter w);

    /// <summary>The error this message reports, if any (the real <c>Message::err</c>).</summary>
    public virtual CrucibleError? Err => null;

    /// <summary>Initial negotiation: the first message an upstairs sends.</summary>
    public sealed record HereIAm(
        uint Version,
        Guid UpstairsId,
        Guid SessionId,
        ulong Generation,
        bool ReadOnly,
        bool Encrypted,
        ValueArray<uint> AlternateVersions) : Message
    {
        public override MessageTag Tag => MessageTag.HereIAm;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU32(Version);
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            w.WriteU64(Generation);
            w.WriteBool(ReadOnly);
            w.WriteBool(Encrypted);
            Wire.WriteU32s(ref w, AlternateVersions);
        }

        internal static HereIAm Read(ref BincodeReader r) => new(
            r.ReadU32(), r.ReadUuid(), r.ReadUuid(), r.ReadU64(), r.ReadBool(), r.ReadBool(), Wire.ReadU32s(ref r));
    }

    /// <summary>The downstairs' positive answer to HereIAm, with its repair address.</summary>
    public sealed record YesItsMe(uint Version, SocketAddr RepairAddr) : Message
    {
        public override MessageTag Tag => MessageTag.YesItsMe;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU32(Version);
            RepairAddr.Write(ref w);
        }

        internal static YesItsMe Read(ref BincodeReader r) => new(r.ReadU32(), SocketAddr.Read(ref r));
    }

    /// <summary>The downstairs wanted another message version.</summary>
    public sealed record VersionMismatch(uint Version) : Message
    {
        public override MessageTag Tag => MessageTag.VersionMismatch;

        internal override void WriteFields(ref BincodeWriter w) => w.WriteU32(Version);

        internal static VersionMismatch Read(ref BincodeReader r) => new(r.ReadU32());
    }

    public sealed record ReadOnlyMismatch(bool Expected) : Message
    {
        public override MessageTag Tag => MessageTag.ReadOnlyMismatch;

        internal override void WriteFields(ref BincodeWriter w) => w.WriteBool(Expected);

        internal static ReadOnlyMismatch Read(ref BincodeReader r) => new(r.ReadBool());
    }

    public sealed record EncryptedMismatch(bool Expected) : Message
    {
        public override MessageTag Tag => MessageTag.EncryptedMismatch;

        internal override void WriteFields(ref BincodeWriter w) => w.WriteBool(Expected);

        internal static EncryptedMismatch Read(ref BincodeReader r) => new(r.ReadBool());
    }

    /// <summary>Promote this upstairs to active, kicking out an older one.</summary>
    public sealed record PromoteToActive(Guid UpstairsId, Guid SessionId, ulong Generation) : Message
    {
        public override MessageTag Tag => MessageTag.PromoteToActive;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            w.WriteU64(Generation);
        }

        internal static PromoteToActive Read(ref BincodeReader r) => new(r.ReadUuid(), r.ReadUuid(), r.ReadU64());
    }

    public sealed record YouAreNowActive(Guid UpstairsId, Guid SessionId, ulong Generation) : Message
    {
        public override MessageTag Tag => MessageTag.YouAreNowActive;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            w.WriteU64(Generation);
        }

        internal static YouAreNowActive Read(ref BincodeReader r) => new(r.ReadUuid(), r.ReadUuid(), r.ReadU64());
    }

    public sealed record YouAreNoLongerActive(Guid NewUpstairsId, Guid NewSessionId, ulong NewGen) : Message
    {
        public override MessageTag Tag => MessageTag.YouAreNoLongerActive;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(NewUpstairsId);
            w.WriteUuid(NewSessionId);
            w.WriteU64(NewGen);
        }

        internal static YouAreNoLongerActive Read(ref BincodeReader r) => new(r.ReadUuid(), r.ReadUuid(), r.ReadU64());
    }

    /// <summary>The downstairs saw a UUID that does not match the negotiated one.</summary>
    public sealed record UuidMismatch(Guid ExpectedId) : Message
    {
        public override MessageTag Tag => MessageTag.UuidMismatch;

        internal override void WriteFields(ref BincodeWriter w) => w.WriteUuid(ExpectedId);

        internal static UuidMismatch Read(ref BincodeReader r) => new(r.ReadUuid());
    }

    /// <summary>Ping.</summary>
    public sealed record Ruok : Message
    {
        public static readonly Ruok Instance = new();

        public override MessageTag Tag => MessageTag.Ruok;

        internal override void WriteFields(ref BincodeWriter w)
        {
        }
    }

    /// <summary>Pong.</summary>
    public sealed record Imok : Message
    {
        public static readonly Imok Instance = new();

        public override MessageTag Tag => MessageTag.Imok;

        internal override void WriteFields(ref BincodeWriter w)
        {
        }
    }

    /// <summary>Reconciliation: close the given extent.</summary>
    public sealed record ExtentClose(ReconciliationId RepairId, ExtentId ExtentId) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentClose;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU64(RepairId.Value);
            w.WriteU32(ExtentId.Value);
        }

        internal static ExtentClose Read(ref BincodeReader r) =>
            new(new ReconciliationId(r.ReadU64()), new ExtentId(r.ReadU32()));
    }

    /// <summary>Reconciliation: reopen the given extent.</summary>
    public sealed record ExtentReopen(ReconciliationId RepairId, ExtentId ExtentId) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentReopen;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU64(RepairId.Value);
            w.WriteU32(ExtentId.Value);
        }

        internal static ExtentReopen Read(ref BincodeReader r) =>
            new(new ReconciliationId(r.ReadU64()), new ExtentId(r.ReadU32()));
    }

    /// <summary>Reconciliation: flush just this extent on just this downstairs.</summary>
    public sealed record ExtentFlush(
        ReconciliationId RepairId,
        ExtentId ExtentId,
        ClientId ClientId,
        ulong FlushNumber,
        ulong GenNumber) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentFlush;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU64(RepairId.Value);
            w.WriteU32(ExtentId.Value);
            w.WriteU8(ClientId.Value);
            w.WriteU64(FlushNumber);
            w.WriteU64(GenNumber);
        }

        internal static ExtentFlush Read(ref BincodeReader r) => new(
            new ReconciliationId(r.ReadU64()), new ExtentId(r.ReadU32()), ClientId.Read(ref r), r.ReadU64(), r.ReadU64());
    }

    /// <summary>Reconciliation: replace an extent with the data of the source downstairs.</summary>
    public sealed record ExtentRepair(
        ReconciliationId RepairId,
        ExtentId ExtentId,
        ClientId SourceClientId,
        SocketAddr SourceRepairAddress,
        ValueArray<ClientId> DestClients) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentRepair;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU64(RepairId.Value);
            w.WriteU32(ExtentId.Value);
            w.WriteU8(SourceClientId.Value);
            SourceRepairAddress.Write(ref w);
            Wire.WriteClientIds(ref w, DestClients);
        }

        internal static ExtentRepair Read(ref BincodeReader r) => new(
            new ReconciliationId(r.ReadU64()), new ExtentId(r.ReadU32()), ClientId.Read(ref r),
            SocketAddr.Read(ref r), Wire.ReadClientIds(ref r));
    }

    /// <summary>The reconciliation job finished without error.</summary>
    public sealed record RepairAckId(ReconciliationId RepairId) : Message
    {
        public override MessageTag Tag => MessageTag.RepairAckId;

        internal override void WriteFields(ref BincodeWriter w) => w.WriteU64(RepairId.Value);

        internal static RepairAckId Read(ref BincodeReader r) => new(new ReconciliationId(r.ReadU64()));
    }

    /// <summary>A problem with the given extent during reconciliation.</summary>
    public sealed record ExtentError(ReconciliationId RepairId, ExtentId ExtentId, CrucibleError Error) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentError;

        public override CrucibleError? Err => Error;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU64(RepairId.Value);
            w.WriteU32(ExtentId.Value);
            Error.Write(ref w);
        }

        internal static ExtentError Read(ref BincodeReader r) =>
            new(new ReconciliationId(r.ReadU64()), new ExtentId(r.ReadU32()), CrucibleError.Read(ref r));
    }

    /// <summary>Live repair: close an extent.</summary>
    public sealed record ExtentLiveClose(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        ValueArray<JobId> Dependencies,
        ExtentId ExtentId) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveClose;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
            w.WriteU32(ExtentId.Value);
        }

        internal static ExtentLiveClose Read(ref BincodeReader r) => new(
            r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r), new ExtentId(r.ReadU32()));
    }

    /// <summary>Live repair: flush and then close an extent.</summary>
    public sealed record ExtentLiveFlushClose(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        ValueArray<JobId> Dependencies,
        ExtentId ExtentId,
        ulong FlushNumber,
        ulong GenNumber) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveFlushClose;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
            w.WriteU32(ExtentId.Value);
            w.WriteU64(FlushNumber);
            w.WriteU64(GenNumber);
        }

        internal static ExtentLiveFlushClose Read(ref BincodeReader r) => new(
            r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r), new ExtentId(r.ReadU32()),
            r.ReadU64(), r.ReadU64());
    }

    /// <summary>Live repair of an extent from the source downstairs.</summary>
    public sealed record ExtentLiveRepair(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        ValueArray<JobId> Dependencies,
        ExtentId ExtentId,
        ClientId SourceClientId,
        SocketAddr SourceRepairAddress) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveRepair;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
            w.WriteU32(ExtentId.Value);
            w.WriteU8(SourceClientId.Value);
            SourceRepairAddress.Write(ref w);
        }

        internal static ExtentLiveRepair Read(ref BincodeReader r) => new(
            r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r), new ExtentId(r.ReadU32()),
            ClientId.Read(ref r), SocketAddr.Read(ref r));
    }

    /// <summary>Live repair: reopen the extent.</summary>
    public sealed record ExtentLiveReopen(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        ValueArray<JobId> Dependencies,
        ExtentId ExtentId) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveReopen;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
            w.WriteU32(ExtentId.Value);
        }

        internal static ExtentLiveReopen Read(ref BincodeReader r) => new(
            r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r), new ExtentId(r.ReadU32()));
    }

    /// <summary>Live repair: no real work, but the job id must complete.</summary>
    public sealed record ExtentLiveNoOp(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        ValueArray<JobId> Dependencies) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveNoOp;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
        }

        internal static ExtentLiveNoOp Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r));
    }

    /// <summary>
    /// Ack of ExtentLiveClose / ExtentLiveFlushClose with the committed
    /// <c>(gen, flush, dirty)</c> of the extent.
    /// </summary>
    public sealed record ExtentLiveCloseAck(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        CrucibleResult<(ulong Gen, ulong Flush, bool Dirty)> Result) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveCloseAck;

        public override CrucibleError? Err => Result.Error;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteResultTag(ref w, Result.IsOk);
            if (Result.IsOk)
            {
                (ulong gen, ulong flush, bool dirty) = Result.Value;
                w.WriteU64(gen);
                w.WriteU64(flush);
                w.WriteBool(dirty);
            }
            else
            {
                Result.Error!.Write(ref w);
            }
        }

        internal static ExtentLiveCloseAck Read(ref BincodeReader r)
        {
            Guid up = r.ReadUuid();
            Guid session = r.ReadUuid();
            JobId job = JobId.Read(ref r);
            CrucibleResult<(ulong, ulong, bool)> result = Wire.ReadResultTag(ref r)
                ? CrucibleResult<(ulong, ulong, bool)>.Ok((r.ReadU64(), r.ReadU64(), r.ReadBool()))
                : CrucibleResult<(ulong, ulong, bool)>.Err(CrucibleError.Read(ref r));
            return new ExtentLiveCloseAck(up, session, job, result);
        }
    }

    /// <summary>Ack of ExtentLiveRepair.</summary>
    public sealed record ExtentLiveRepairAckId(Guid UpstairsId, Guid SessionId, JobId JobId, CrucibleError? Result)
        : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveRepairAckId;

        public override CrucibleError? Err => Result;

        internal override void WriteFields(ref BincodeWriter w) => WriteAckFields(ref w, UpstairsId, SessionId, JobId, Result);

        internal static ExtentLiveRepairAckId Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadUnitResult(ref r));
    }

    /// <summary>Ack of ExtentLiveRepair, ExtentLiveReopen or ExtentLiveNoOp.</summary>
    public sealed record ExtentLiveAckId(Guid UpstairsId, Guid SessionId, JobId JobId, CrucibleError? Result) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentLiveAckId;

        public override CrucibleError? Err => Result;

        internal override void WriteFields(ref BincodeWriter w) => WriteAckFields(ref w, UpstairsId, SessionId, JobId, Result);

        internal static ExtentLiveAckId Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadUnitResult(ref r));
    }

    public sealed record RegionInfoPlease : Message
    {
        public static readonly RegionInfoPlease Instance = new();

        public override MessageTag Tag => MessageTag.RegionInfoPlease;

        internal override void WriteFields(ref BincodeWriter w)
        {
        }
    }

    public sealed record RegionInfo(RegionDefinition RegionDef) : Message
    {
        public override MessageTag Tag => MessageTag.RegionInfo;

        internal override void WriteFields(ref BincodeWriter w) => RegionDef.Write(ref w);

        internal static RegionInfo Read(ref BincodeReader r) => new(RegionDefinition.Read(ref r));
    }

    public sealed record ExtentVersionsPlease : Message
    {
        public static readonly ExtentVersionsPlease Instance = new();

        public override MessageTag Tag => MessageTag.ExtentVersionsPlease;

        internal override void WriteFields(ref BincodeWriter w)
        {
        }
    }

    /// <summary>Per-extent generation numbers, flush numbers and dirty bits.</summary>
    public sealed record ExtentVersions(
        ValueArray<ulong> GenNumbers,
        ValueArray<ulong> FlushNumbers,
        ValueArray<bool> DirtyBits) : Message
    {
        public override MessageTag Tag => MessageTag.ExtentVersions;

        internal override void WriteFields(ref BincodeWriter w)
        {
            Wire.WriteU64s(ref w, GenNumbers);
            Wire.WriteU64s(ref w, FlushNumbers);
            Wire.WriteBools(ref w, DirtyBits);
        }

        internal static ExtentVersions Read(ref BincodeReader r) =>
            new(Wire.ReadU64s(ref r), Wire.ReadU64s(ref r), Wire.ReadBools(ref r));
    }

    /// <summary><c>LastFlush { last_flush_number: Option&lt;JobId&gt; }</c>.</summary>
    public sealed record LastFlush(JobId? LastFlushNumber) : Message
    {
        public override MessageTag Tag => MessageTag.LastFlush;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteOptionTag(LastFlushNumber.HasValue);
            LastFlushNumber?.Write(ref w);
        }

        internal static LastFlush Read(ref BincodeReader r) => new(r.ReadOptionTag() ? JobId.Read(ref r) : null);
    }

    /// <summary>Write blocks; <c>Data</c> is <c>Header.Contexts.Count</c> blocks.</summary>
    public sealed record Write(WriteHeader Header, ReadOnlyMemory<byte> Data) : Message
    {
        public override MessageTag Tag => MessageTag.Write;

        internal override ReadOnlyMemory<byte> BulkData => Data;

        internal override void WriteFields(ref BincodeWriter w)
        {
            Header.Write(ref w);
            w.WriteLength(Data.Length);
        }

        public bool Equals(Write? other) =>
            other is not null && Header.Equals(other.Header) && Data.Span.SequenceEqual(other.Data.Span);

        public override int GetHashCode() => HashCode.Combine(Header, Data.Length);
    }

    public sealed record WriteAck(Guid UpstairsId, Guid SessionId, JobId JobId, CrucibleError? Result) : Message
    {
        public override MessageTag Tag => MessageTag.WriteAck;

        public override CrucibleError? Err => Result;

        internal override void WriteFields(ref BincodeWriter w) => WriteAckFields(ref w, UpstairsId, SessionId, JobId, Result);

        internal static WriteAck Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadUnitResult(ref r));
    }

    /// <summary>Flush; <c>ExtentLimit</c> is the last extent this downstairs must flush.</summary>
    public sealed record Flush(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        ValueArray<JobId> Dependencies,
        ulong FlushNumber,
        ulong GenNumber,
        SnapshotDetails? SnapshotDetails,
        ExtentId? ExtentLimit) : Message
    {
        public override MessageTag Tag => MessageTag.Flush;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
            w.WriteU64(FlushNumber);
            w.WriteU64(GenNumber);
            w.WriteOptionTag(SnapshotDetails is not null);
            if (SnapshotDetails is not null)
            {
                w.WriteString(SnapshotDetails.SnapshotName);
            }
            w.WriteOptionTag(ExtentLimit.HasValue);
            if (ExtentLimit is ExtentId limit)
            {
                w.WriteU32(limit.Value);
            }
        }

        internal static Flush Read(ref BincodeReader r) => new(
            r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r), r.ReadU64(), r.ReadU64(),
            r.ReadOptionTag() ? new SnapshotDetails(r.ReadString()) : null,
            r.ReadOptionTag() ? new ExtentId(r.ReadU32()) : null);
    }

    public sealed record FlushAck(Guid UpstairsId, Guid SessionId, JobId JobId, CrucibleError? Result) : Message
    {
        public override MessageTag Tag => MessageTag.FlushAck;

        public override CrucibleError? Err => Result;

        internal override void WriteFields(ref BincodeWriter w) => WriteAckFields(ref w, UpstairsId, SessionId, JobId, Result);

        internal static FlushAck Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadUnitResult(ref r));
    }

    public sealed record Barrier(Guid UpstairsId, Guid SessionId, JobId JobId, ValueArray<JobId> Dependencies)
        : Message
    {
        public override MessageTag Tag => MessageTag.Barrier;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
        }

        internal static Barrier Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r));
    }

    public sealed record BarrierAck(Guid UpstairsId, Guid SessionId, JobId JobId, CrucibleError? Result) : Message
    {
        public override MessageTag Tag => MessageTag.BarrierAck;

        public override CrucibleError? Err => Result;

        internal override void WriteFields(ref BincodeWriter w) => WriteAckFields(ref w, UpstairsId, SessionId, JobId, Result);

        internal static BarrierAck Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadUnitResult(ref r));
    }

    /// <summary>Read <c>Count</c> blocks from the absolute block position <c>Start</c>.</summary>
    public sealed record ReadRequest(
        Guid UpstairsId,
        Guid SessionId,
        JobId JobId,
        ValueArray<JobId> Dependencies,
        BlockIndex Start,
        ulong Count) : Message
    {
        public override MessageTag Tag => MessageTag.ReadRequest;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Wire.WriteJobIds(ref w, Dependencies);
            w.WriteU64(Start.Value);
            w.WriteU64(Count);
        }

        internal static ReadRequest Read(ref BincodeReader r) => new(
            r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadJobIds(ref r), new BlockIndex(r.ReadU64()),
            r.ReadU64());
    }

    /// <summary>The blocks of a ReadRequest: contexts in the header, bytes in <c>Data</c>.</summary>
    public sealed record ReadResponse(ReadResponseHeader Header, ReadOnlyMemory<byte> Data) : Message
    {
        public override MessageTag Tag => MessageTag.ReadResponse;

        public override CrucibleError? Err => Header.Blocks.Error;

        internal override ReadOnlyMemory<byte> BulkData => Data;

        internal override void WriteFields(ref BincodeWriter w)
        {
            Header.Write(ref w);
            w.WriteLength(Data.Length);
        }

        public bool Equals(ReadResponse? other) =>
            other is not null && Header.Equals(other.Header) && Data.Span.SequenceEqual(other.Data.Span);

        public override int GetHashCode() => HashCode.Combine(Header, Data.Length);
    }

    /// <summary>Write only the blocks that were never written.</summary>
    public sealed record WriteUnwritten(WriteHeader Header, ReadOnlyMemory<byte> Data) : Message
    {
        public override MessageTag Tag => MessageTag.WriteUnwritten;

        internal override ReadOnlyMemory<byte> BulkData => Data;

        internal override void WriteFields(ref BincodeWriter w)
        {
            Header.Write(ref w);
            w.WriteLength(Data.Length);
        }

        public bool Equals(WriteUnwritten? other) =>
            other is not null && Header.Equals(other.Header) && Data.Span.SequenceEqual(other.Data.Span);

        public override int GetHashCode() => HashCode.Combine(Header, Data.Length);
    }

    public sealed record WriteUnwrittenAck(Guid UpstairsId, Guid SessionId, JobId JobId, CrucibleError? Result)
        : Message
    {
        public override MessageTag Tag => MessageTag.WriteUnwrittenAck;

        public override CrucibleError? Err => Result;

        internal override void WriteFields(ref BincodeWriter w) => WriteAckFields(ref w, UpstairsId, SessionId, JobId, Result);

        internal static WriteUnwrittenAck Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), Wire.ReadUnitResult(ref r));
    }

    /// <summary>A downstairs reports an error for a job outside its ack.</summary>
    public sealed record ErrorReport(Guid UpstairsId, Guid SessionId, JobId JobId, CrucibleError Error) : Message
    {
        public override MessageTag Tag => MessageTag.ErrorReport;

        public override CrucibleError? Err => Error;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteUuid(UpstairsId);
            w.WriteUuid(SessionId);
            JobId.Write(ref w);
            Error.Write(ref w);
        }

        internal static ErrorReport Read(ref BincodeReader r) =>
            new(r.ReadUuid(), r.ReadUuid(), JobId.Read(ref r), CrucibleError.Read(ref r));
    }

    /// <summary><c>Unknown(u32, BytesMut)</c>: a u32 and a length-prefixed byte buffer.</summary>
    public sealed record Unknown(uint Value, ReadOnlyMemory<byte> Data) : Message
    {
        public override MessageTag Tag => MessageTag.Unknown;

        internal override void WriteFields(ref BincodeWriter w)
        {
            w.WriteU32(Value);
            w.WriteByteBuf(Data.Span);
        }

        internal static Unknown Read(ref BincodeReader r) => new(r.ReadU32(), r.ReadByteBuf().ToArray());

        public bool Equals(Unknown? other) =>
            other is not null && Value == other.Value && Data.Span.SequenceEqual(other.Data.Span);

        public override int GetHashCode() => HashCode.Combine(Value, Data.Length);
    }

    private static void WriteAckFields(ref BincodeWriter w, Guid upstairsId, Guid sessionId, JobId jobId, CrucibleError? result)
    {
        w.WriteUuid(upstairsId);
        w.WriteUuid(sessionId);
        jobId.Write(ref w);
        Wire.WriteUnitResult(ref w, result);
    }
}

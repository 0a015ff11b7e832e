using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Tests.Protocol;

/// <summary>Random messages of every variant, with random field values, for property tests.</summary>
internal sealed class MessageGenerator(int seed)
{
    private readonly Random _random = new(seed);

    public Random Random => _random;

    private ulong U64() => _random.Next(4) switch
    {
        0 => 0,
        1 => ulong.MaxValue,
        _ => (ulong)_random.NextInt64() ^ ((ulong)_random.Next() << 40),
    };

    private uint U32() => (uint)U64();

    private bool Bool() => _random.Next(2) == 1;

    private Guid Uuid()
    {
        Span<byte> b = stackalloc byte[16];
        _random.NextBytes(b);
        return new Guid(b);
    }

    private JobId Job() => new(U64());

    private ExtentId Extent() => new(U32());

    private ClientId Client() => new((byte)_random.Next(3));

    private int Small(int max = 5) => _random.Next(max + 1);

    private T[] Many<T>(Func<T> make, int max = 5)
    {
        var a = new T[Small(max)];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = make();
        }
        return a;
    }

    private string Text()
    {
        string[] samples = ["", "boom", "IO error: disk on fire", "snapshot-2026-08-04", "ünïcødé ✓ 𝄞"];
        return samples[_random.Next(samples.Length)];
    }

    private byte[] Bytes(int max)
    {
        var b = new byte[_random.Next(max + 1)];
        _random.NextBytes(b);
        return b;
    }

    private SocketAddr Addr()
    {
        Span<byte> octets = stackalloc byte[16];
        _random.NextBytes(octets);
        return Bool() ? SocketAddr.V4(octets[..4], (ushort)_random.Next(65536)) : SocketAddr.V6(octets, (ushort)_random.Next(65536));
    }

    private EncryptionContext Ctx()
    {
        Span<byte> b = stackalloc byte[28];
        _random.NextBytes(b);
        return new EncryptionContext(b[..12], b[12..]);
    }

    public NegotiationError Negotiation() => (NegotiationErrorKind)_random.Next(8) switch
    {
        NegotiationErrorKind.OutOfOrder => NegotiationError.OutOfOrder,
        NegotiationErrorKind.GenerationZeroIsIllegal => NegotiationError.GenerationZeroIsIllegal,
        NegotiationErrorKind.GenerationNumberTooLow => NegotiationError.GenerationNumberTooLow(U64(), U64()),
        NegotiationErrorKind.IncompatibleVersion => NegotiationError.IncompatibleVersion(U32(), U32()),
        NegotiationErrorKind.EncryptionMismatch => NegotiationError.EncryptionMismatch(Bool(), Bool()),
        NegotiationErrorKind.ReadOnlyMismatch => NegotiationError.ReadOnlyMismatch(Bool(), Bool()),
        NegotiationErrorKind.UpstairsIdMismatch => NegotiationError.UpstairsIdMismatch(Uuid(), Uuid()),
        _ => NegotiationError.SessionIdMismatch(Uuid(), Uuid()),
    };

    public CrucibleError Error()
    {
        var kind = (CrucibleErrorKind)_random.Next((int)CrucibleError.VariantCount);
        return CrucibleError.PayloadOf(kind) switch
        {
            ErrorPayload.String => CrucibleError.WithDetail(kind, Text()),
            ErrorPayload.ContextSlot => CrucibleError.MissingContextSlot(U64(), U32()),
            ErrorPayload.Negotiation => CrucibleError.NegotiationError(Negotiation()),
            _ => CrucibleError.Of(kind),
        };
    }

    private CrucibleError? UnitResult() => Bool() ? null : Error();

    private BlockContext BlockCtx() => new(U64(), Bool() ? Ctx() : null);

    private ReadBlockContext ReadCtx() => _random.Next(3) switch
    {
        0 => ReadBlockContext.Empty,
        1 => ReadBlockContext.Encrypted(Ctx()),
        _ => ReadBlockContext.Unencrypted(U64()),
    };

    private WriteHeader WriteHeader(int blocks) =>
        new(Uuid(), Uuid(), Job(), Many(Job), new BlockIndex(U64()), Enumerable.Range(0, blocks).Select(_ => BlockCtx()).ToArray());

    private (WriteHeader, byte[]) WriteParts()
    {
        int blocks = Small(3);
        int blockSize = 1 << _random.Next(4, 10);
        byte[] data = new byte[blocks * blockSize];
        _random.NextBytes(data);
        return (WriteHeader(blocks), data);
    }

    public Message Next() => Make((MessageTag)_random.Next((int)Message.VariantCount));

    public Message Make(MessageTag tag)
    {
        switch (tag)
        {
            case MessageTag.HereIAm:
                return new Message.HereIAm(U32(), Uuid(), Uuid(), U64(), Bool(), Bool(), Many(U32));
            case MessageTag.YesItsMe:
                return new Message.YesItsMe(U32(), Addr());
            case MessageTag.VersionMismatch:
                return new Message.VersionMismatch(U32());
            case MessageTag.ReadOnlyMismatch:
                return new Message.ReadOnlyMismatch(Bool());
            case MessageTag.EncryptedMismatch:
                return new Message.EncryptedMismatch(Bool());
            case MessageTag.PromoteToActive:
                return new Message.PromoteToActive(Uuid(), Uuid(), U64());
            case MessageTag.YouAreNowActive:
                return new Message.YouAreNowActive(Uuid(), Uuid(), U64());
            case MessageTag.YouAreNoLongerActive:
                return new Message.YouAreNoLongerActive(Uuid(), Uuid(), U64());
            case MessageTag.UuidMismatch:
                return new Message.UuidMismatch(Uuid());
            case MessageTag.Ruok:
                return Message.Ruok.Instance;
            case MessageTag.Imok:
                return Message.Imok.Instance;
            case MessageTag.ExtentClose:
                return new Message.ExtentClose(new ReconciliationId(U64()), Extent());
            case MessageTag.ExtentReopen:
                return new Message.ExtentReopen(new ReconciliationId(U64()), Extent());
            case MessageTag.ExtentFlush:
                return new Message.ExtentFlush(new ReconciliationId(U64()), Extent(), Client(), U64(), U64());
            case MessageTag.ExtentRepair:
                return new Message.ExtentRepair(new ReconciliationId(U64()), Extent(), Client(), Addr(), Many(Client, 3));
            case MessageTag.RepairAckId:
                return new Message.RepairAckId(new ReconciliationId(U64()));
            case MessageTag.ExtentError:
                return new Message.ExtentError(new ReconciliationId(U64()), Extent(), Error());
            case MessageTag.ExtentLiveClose:
                return new Message.ExtentLiveClose(Uuid(), Uuid(), Job(), Many(Job), Extent());
            case MessageTag.ExtentLiveFlushClose:
                return new Message.ExtentLiveFlushClose(Uuid(), Uuid(), Job(), Many(Job), Extent(), U64(), U64());
            case MessageTag.ExtentLiveRepair:
                return new Message.ExtentLiveRepair(Uuid(), Uuid(), Job(), Many(Job), Extent(), Client(), Addr());
            case MessageTag.ExtentLiveReopen:
                return new Message.ExtentLiveReopen(Uuid(), Uuid(), Job(), Many(Job), Extent());
            case MessageTag.ExtentLiveNoOp:
                return new Message.ExtentLiveNoOp(Uuid(), Uuid(), Job(), Many(Job));
            case MessageTag.ExtentLiveCloseAck:
                return new Message.ExtentLiveCloseAck(Uuid(), Uuid(), Job(), Bool()
                    ? CrucibleResult<(ulong, ulong, bool)>.Ok((U64(), U64(), Bool()))
                    : CrucibleResult<(ulong, ulong, bool)>.Err(Error()));
            case MessageTag.ExtentLiveRepairAckId:
                return new Message.ExtentLiveRepairAckId(Uuid(), Uuid(), Job(), UnitResult());
            case MessageTag.ExtentLiveAckId:
                return new Message.ExtentLiveAckId(Uuid(), Uuid(), Job(), UnitResult());
            case MessageTag.RegionInfoPlease:
                return Message.RegionInfoPlease.Instance;
            case MessageTag.RegionInfo:
                return new Message.RegionInfo(new RegionDefinition
                {
                    BlockSize = U64(),
                    ExtentSize = new Block(U64(), U32()),
                    ExtentCount = U32(),
                    Uuid = Uuid(),
                    Encrypted = Bool(),
                    DatabaseReadVersion = U64(),
                    DatabaseWriteVersion = U64(),
                });
            case MessageTag.ExtentVersionsPlease:
                return Message.ExtentVersionsPlease.Instance;
            case MessageTag.ExtentVersions:
                return new Message.ExtentVersions(Many(U64, 8), Many(U64, 8), Many(Bool, 8));
            case MessageTag.LastFlush:
                return new Message.LastFlush(Bool() ? Job() : null);
            case MessageTag.Write:
            {
                (WriteHeader h, byte[] d) = WriteParts();
                return new Message.Write(h, d);
            }
            case MessageTag.WriteAck:
                return new Message.WriteAck(Uuid(), Uuid(), Job(), UnitResult());
            case MessageTag.Flush:
                return new Message.Flush(Uuid(), Uuid(), Job(), Many(Job), U64(), U64(),
                    Bool() ? new SnapshotDetails(Text()) : null, Bool() ? Extent() : null);
            case MessageTag.FlushAck:
                return new Message.FlushAck(Uuid(), Uuid(), Job(), UnitResult());
            case MessageTag.Barrier:
                return new Message.Barrier(Uuid(), Uuid(), Job(), Many(Job));
            case MessageTag.BarrierAck:
                return new Message.BarrierAck(Uuid(), Uuid(), Job(), UnitResult());
            case MessageTag.ReadRequest:
                return new Message.ReadRequest(Uuid(), Uuid(), Job(), Many(Job), new BlockIndex(U64()), U64());
            case MessageTag.ReadResponse:
            {
                bool ok = Bool();
                ReadBlockContext[] blocks = ok ? Many(ReadCtx, 3) : [];
                byte[] data = new byte[blocks.Length * 64];
                _random.NextBytes(data);
                return new Message.ReadResponse(new ReadResponseHeader(Uuid(), Uuid(), Job(), ok
                    ? CrucibleResult<ValueArray<ReadBlockContext>>.Ok(blocks)
                    : CrucibleResult<ValueArray<ReadBlockContext>>.Err(Error())), data);
            }
            case MessageTag.WriteUnwritten:
            {
                (WriteHeader h, byte[] d) = WriteParts();
                return new Message.WriteUnwritten(h, d);
            }
            case MessageTag.WriteUnwrittenAck:
                return new Message.WriteUnwrittenAck(Uuid(), Uuid(), Job(), UnitResult());
            case MessageTag.ErrorReport:
                return new Message.ErrorReport(Uuid(), Uuid(), Job(), Error());
            case MessageTag.Unknown:
                return new Message.Unknown(U32(), Bytes(40));
            default:
                throw new ArgumentOutOfRangeException(nameof(tag), tag, "no such Message variant");
        }
    }
}

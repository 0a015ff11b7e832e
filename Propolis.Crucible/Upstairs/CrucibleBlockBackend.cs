using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Core.Memory;
using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Upstairs;

/// <summary>
/// A block backend on a Crucible volume (propolis <c>block::CrucibleBackend</c>): the device's
/// requests go to an <see cref="Upstairs"/>. Each worker thread owns one reusable request handle,
/// so a request allocates no handle; a write's data is copied once, from guest memory into the
/// job's buffer where it is encrypted in place (it must outlive the guest's request for replay);
/// a read's data is validated (decrypted) in the receive buffer and copied once into guest memory.
/// </summary>
/// <remarks>Flush waits for two downstairs (the upstairs' flush rule). Discard and write-zeroes
/// are not offered: the Crucible protocol at message version 13 has neither.</remarks>
public sealed class CrucibleBlockBackend : BlockBackend
{
    public const string CrucibleKind = "crucible";

    /// <summary>Workers when the caller does not choose: requests in flight to the upstairs at once.</summary>
    public const int DefaultWorkers = 16;

    private readonly Upstairs _upstairs;
    private readonly WorkerIo[] _workers;
    private readonly WorkerIo _flushIo = new();
    private readonly object _flushLock = new();
    private readonly uint _blockSize;
    private int _loggedUnaligned;

    private CrucibleBlockBackend(Upstairs upstairs, BlockDeviceInfo info, BlockBackendOptions options, ILogger? logger)
        : base(CrucibleKind, info, options, logger)
    {
        _upstairs = upstairs;
        _blockSize = info.BlockSize;
        _workers = new WorkerIo[info.Workers];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new WorkerIo();
        }
    }

    public Upstairs Upstairs => _upstairs;

    /// <summary>
    /// Connects to the three downstairs, activates (reconciling if needed) and returns the backend;
    /// throws <see cref="UpstairsException"/> with the reason when activation is refused.
    /// </summary>
    public static async Task<CrucibleBlockBackend> ActivateAsync(UpstairsOptions options, int workers = DefaultWorkers,
        bool skipFlush = false, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        var upstairs = new Upstairs(options, logger);
        try
        {
            await upstairs.ActivateAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await upstairs.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        RegionDefinition region = upstairs.Region!.Value;
        var backendOptions = new BlockBackendOptions
        {
            BlockSize = (uint)region.BlockSize,
            ReadOnly = options.ReadOnly,
            SkipFlush = skipFlush,
            Workers = workers,
        };
        backendOptions.Validate();
        var info = new BlockDeviceInfo((uint)region.BlockSize, upstairs.TotalBlocks, options.ReadOnly,
            SupportsDiscard: false, SupportsFlush: true, SupportsWriteZeroes: false, workers);
        return new CrucibleBlockBackend(upstairs, info, backendOptions, logger);
    }

    protected override BlockResult Execute(BlockRequest request, int worker)
    {
        switch (request.Operation)
        {
            case BlockOperation.Read:
            case BlockOperation.Write:
                if (request.Offset % _blockSize != 0 || request.Length % _blockSize != 0 || request.Length == 0)
                {
                    if (Interlocked.Exchange(ref _loggedUnaligned, 1) == 0)
                    {
                        Logger.LogWarning("crucible: {Operation} of {Length} bytes at {Offset} is not whole {BlockSize}-byte blocks; failed",
                            request.Operation, request.Length, request.Offset, _blockSize);
                    }
                    return BlockResult.IoError;
                }
                WorkerIo io = _workers[worker];
                io.Begin(request);
                ulong start = request.Offset / _blockSize, blocks = request.Length / _blockSize;
                if (request.Operation == BlockOperation.Read)
                {
                    _upstairs.SubmitRead(start, blocks, io);
                }
                else
                {
                    _upstairs.SubmitWrite(start, blocks, io);
                }
                return io.Wait();
            case BlockOperation.Flush:
                return FlushStore();
            default:
                return BlockResult.Unsupported;
        }
    }

    protected override BlockResult FlushStore()
    {
        lock (_flushLock)
        {
            _flushIo.Begin(null);
            _upstairs.SubmitFlush(_flushIo);
            return _flushIo.Wait();
        }
    }

    protected override void DisposeStore() => _upstairs.DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>One worker's handle: moves data between the request's guest segments and the upstairs.</summary>
    private sealed class WorkerIo : UpstairsIo
    {
        private readonly ManualResetEventSlim _done = new();
        private BlockRequest? _request;
        private BlockResult _result;

        public void Begin(BlockRequest? request)
        {
            _request = request;
            _result = BlockResult.Success;
            _done.Reset();
        }

        public BlockResult Wait()
        {
            _done.Wait();
            _request = null;
            return _result;
        }

        protected internal override void FillWrite(Span<byte> destination)
        {
            BlockRequest r = _request!;
            GuestMemory memory = r.Memory;
            int at = 0;
            foreach (GuestSegment s in r.Segments)
            {
                if (!memory.TryRead(s.Address, destination.Slice(at, (int)s.Length)))
                {
                    _result = BlockResult.IoError;
                }
                at += (int)s.Length;
            }
        }

        protected internal override void ReadData(ReadOnlySpan<byte> data)
        {
            BlockRequest r = _request!;
            GuestMemory memory = r.Memory;
            int at = 0;
            foreach (GuestSegment s in r.Segments)
            {
                if (!memory.TryWrite(s.Address, data.Slice(at, (int)s.Length)))
                {
                    _result = BlockResult.IoError;
                }
                at += (int)s.Length;
            }
        }

        protected internal override void Completed(CrucibleError? error)
        {
            if (error is not null)
            {
                _result = error.Kind == CrucibleErrorKind.ModifyingReadOnlyRegion ? BlockResult.ReadOnly : BlockResult.IoError;
            }
            _done.Set();
        }
    }
}

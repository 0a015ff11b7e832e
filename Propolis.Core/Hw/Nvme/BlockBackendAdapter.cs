using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Core.Memory;

namespace Propolis.Core.Hw.Nvme;

/// <summary>Serves namespace 1 of an <see cref="NvmeController"/> from a block layer
/// <see cref="IBlockBackend"/>, through a <see cref="BlockAttachment"/> of its own.</summary>
/// <remarks>
/// <para>One NVMe command is one block request, with two exceptions: a Dataset Management
/// deallocation of several ranges runs them one after the other (each completion submits the
/// next), and a write with Force Unit Access is followed by a Flush before it completes.</para>
/// <para>Deallocate is a hint (NVMe 1.4 §6.7.1.1): a backend that cannot discard still lets the
/// command succeed. Other failures are reported as <see cref="NvmeIoResult.Failure"/>, which the
/// controller turns into a media error status.</para>
/// </remarks>
public sealed class BlockBackendAdapter : INvmeBlockBackend, IBlockCompletionHandler
{
    /// <summary>Tag of the Flush that follows a FUA write.</summary>
    private const ulong FuaFlushTag = ulong.MaxValue;

    private readonly BlockAttachment _attachment;

    public BlockBackendAdapter(IBlockBackend backend, GuestMemory memory, ILogger? logger = null)
    {
        // Every controller slot and the shutdown flush may hold a request, and a multi-range
        // deallocation rents its next request before the previous one is returned.
        _attachment = new BlockAttachment(backend, memory, this, NvmeController.MaxInflight + 2,
            Prp.MaxSegments(NvmeController.MaxTransferBytes), logger);
    }

    public BlockAttachment Attachment => _attachment;

    public ulong Capacity => _attachment.Info.SizeInBytes;

    public int BlockSize => (int)_attachment.Info.BlockSize;

    public bool IsReadOnly => _attachment.Info.ReadOnly;

    public void Submit(NvmeIoRequest request)
    {
        if (request.Operation == NvmeIoOperation.Discard)
        {
            SubmitRange(request, 0);
            return;
        }
        if (!_attachment.TryRent(out var b))
        {
            request.Complete(NvmeIoResult.Failure);
            return;
        }
        switch (request.Operation)
        {
            case NvmeIoOperation.Read:
                b.PrepareRead(request.Offset);
                break;
            case NvmeIoOperation.Write:
                b.PrepareWrite(request.Offset);
                break;
            case NvmeIoOperation.WriteZeroes:
                b.PrepareWriteZeroes(request.Offset, request.Length);
                break;
            default:
                b.PrepareFlush();
                break;
        }
        foreach (var s in request.Segments)
        {
            if (!b.TryAddSegment(s.Address, s.Length))
            {
                _attachment.Release(b);
                request.Complete(NvmeIoResult.Failure);
                return;
            }
        }
        b.Context = request;
        _attachment.Submit(b);
    }

    private void SubmitRange(NvmeIoRequest request, int index)
    {
        if (!_attachment.TryRent(out var b))
        {
            request.Complete(NvmeIoResult.Failure);
            return;
        }
        var range = request.Ranges[index];
        b.PrepareDiscard(range.Offset, range.Length);
        b.Tag = (ulong)index;
        b.Context = request;
        _attachment.Submit(b);
    }

    private void SubmitFuaFlush(NvmeIoRequest request)
    {
        if (!_attachment.TryRent(out var b))
        {
            request.Complete(NvmeIoResult.Failure);
            return;
        }
        b.PrepareFlush();
        b.Tag = FuaFlushTag;
        b.Context = request;
        _attachment.Submit(b);
    }

    void IBlockCompletionHandler.Complete(BlockRequest b, BlockResult result)
    {
        var request = (NvmeIoRequest)b.Context!;
        var op = b.Operation;
        var tag = b.Tag;
        if (op == BlockOperation.Discard)
        {
            var ok = result is BlockResult.Success or BlockResult.Unsupported;
            var next = (int)tag + 1;
            if (ok && next < request.Ranges.Length)
            {
                SubmitRange(request, next);
                return;
            }
            request.Complete(ok ? NvmeIoResult.Success : NvmeIoResult.Failure);
            return;
        }
        if (op == BlockOperation.Write && result == BlockResult.Success && request.ForceUnitAccess)
        {
            SubmitFuaFlush(request);
            return;
        }
        request.Complete(result == BlockResult.Success ? NvmeIoResult.Success : NvmeIoResult.Failure);
    }
}

using Propolis.Crucible.Protocol;

namespace Propolis.Crucible.Downstairs;

/// <summary>One IO job from the upstairs, waiting for its dependencies (the real <c>IOop</c>).</summary>
internal sealed class PendingJob
{
    public PendingJob(JobId id, ValueArray<JobId> dependencies, Message request, ReceivedMessage lease)
    {
        Id = id;
        Dependencies = dependencies;
        Request = request;
        Lease = lease;
    }

    public JobId Id { get; }

    public ValueArray<JobId> Dependencies { get; }

    /// <summary>The Write, Flush, ReadRequest, ... that created the job.</summary>
    public Message Request { get; }

    /// <summary>Keeps a Write's data (a slice of the receive buffer) alive until the job is done.</summary>
    public ReceivedMessage Lease { get; }

    /// <summary>Set when the job failed in the current pass; it is retried on a later pass.</summary>
    public bool FailedThisPass { get; set; }
}

/// <summary>
/// The real <c>Work</c> and <c>CompletedJobs</c>: jobs waiting for dependencies, in arrival
/// order, and the jobs completed since the last flush or barrier. A flush or barrier
/// forgets every older job, becoming the oldest complete one.
/// </summary>
internal sealed class Work
{
    private readonly HashSet<JobId> _completed = new();

    public Work(JobId? lastFlush)
    {
        if (lastFlush is JobId id)
        {
            _completed.Add(id);
        }
    }

    public LinkedList<PendingJob> Pending { get; } = new();

    public bool IsComplete(JobId id) => _completed.Contains(id);

    public bool IsReady(PendingJob job)
    {
        foreach (JobId dep in job.Dependencies.AsSpan())
        {
            if (!_completed.Contains(dep))
            {
                return false;
            }
        }
        return true;
    }

    public void Complete(JobId id, bool resets)
    {
        if (resets)
        {
            _completed.Clear();
        }
        _completed.Add(id);
    }

    /// <summary>Completed job ids in order (for tests and logs).</summary>
    public JobId[] Completed() => _completed.Order().ToArray();
}

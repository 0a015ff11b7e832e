namespace Propolis.Crucible.Dsc.Tests;

/// <summary><c>dsc start</c> run in-process on a thread of its own, with a free control port.</summary>
internal sealed class RunningDsc : IDisposable
{
    private readonly TempDir _dir;
    private readonly Thread _thread;
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly StringWriter _out = new();

    public RunningDsc(TempDir dir, string dsBin, int portBase, int count, params string[] extra)
    {
        _dir = dir;
        PortBase = portBase;
        int control = Ports.FreePort();
        Server = $"http://127.0.0.1:{control}";
        var args = new List<string>
        {
            "start", "--ds-bin", dsBin, "--output-dir", dir["out"], "--region-dir", dir["regions"],
            "--port-base", portBase.ToString(), "--region-count", count.ToString(), "--control", $"127.0.0.1:{control}",
        };
        args.AddRange(extra);
        TextWriter output = TextWriter.Synchronized(_out);
        _thread = new Thread(() =>
        {
            try
            {
                _exit.TrySetResult(Cli.Run(args.ToArray(), output, output));
            }
            catch (Exception e)
            {
                _exit.TrySetException(e);
            }
        }) { IsBackground = true, Name = "dsc start" };
        _thread.Start();
    }

    public int PortBase { get; }

    public string Server { get; }

    public Task<int> Exit => _exit.Task;

    public string Output
    {
        get
        {
            lock (_out)
            {
                return _out.ToString();
            }
        }
    }

    /// <summary><c>dsc cmd --server SERVER ARGS</c>: its output line, or throws with its error.</summary>
    public string Cmd(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Run(["cmd", "--server", Server, .. args], o, e);
        if (code != 0)
        {
            throw new InvalidOperationException($"dsc cmd {string.Join(' ', args)}: {e}");
        }
        return o.ToString().Trim();
    }

    public string? TryCmd(params string[] args)
    {
        try
        {
            return Cmd(args);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    public void WaitFor(string expected, params string[] args) =>
        WaitUntil(() => TryCmd(args) == expected, $"dsc cmd {string.Join(' ', args)} to say {expected} (last: {TryCmd(args)})");

    public void WaitUntil(Func<bool> condition, string what, int seconds = 30)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (Exit.IsCompleted)
            {
                throw new Xunit.Sdk.XunitException($"dsc exited ({Exit.Status}) while waiting for {what}\n{Output}");
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out waiting for {what}\n{Output}");
            }
            Thread.Sleep(100);
        }
    }

    public int Pid(int cid)
    {
        string s = Cmd("pid", "-c", cid.ToString());
        Assert.StartsWith("Some(", s);
        return int.Parse(s["Some(".Length..^1]);
    }

    public void Dispose()
    {
        if (!Exit.IsCompleted)
        {
            TryCmd("shutdown");
            Exit.Wait(TimeSpan.FromSeconds(30));
        }
        FakeDownstairs.KillAll(_dir);
    }
}

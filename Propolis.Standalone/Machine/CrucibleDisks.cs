using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
using Propolis.Crucible.Tls;
using Propolis.Crucible.Upstairs;
using Propolis.Standalone.Config;

namespace Propolis.Standalone.Machine;

/// <summary>
/// <c>[block_dev.NAME] type = "crucible"</c>: the backend is an upstairs on the three targets
/// (propolis-standalone's <c>block::CrucibleBackend::create</c>). Building it connects to the
/// downstairs and activates the volume (reconciling if needed) before the guest starts; the run
/// waits for all three downstairs, as the real upstairs does.
/// </summary>
internal static class CrucibleDisks
{
    /// <exception cref="MachineException">Activation was refused (generation too low, region
    /// mismatch, encryption mismatch), a TLS file cannot be used, or control_addr cannot be bound.</exception>
    public static IBlockBackend Create(CrucibleBlockDev c, ILoggerFactory lf)
    {
        CrucibleTlsContext? tls = null;
        if (c.Tls is { } t)
        {
            try
            {
                tls = CrucibleTlsContext.FromPaths(t.CertPem, t.KeyPem, t.RootCertPem);
            }
            catch (CrucibleTlsException e)
            {
                throw new MachineException($"[block_dev.{c.Name}]: {e.Message}");
            }
        }
        var options = new UpstairsOptions
        {
            Targets = c.Targets,
            Generation = c.Generation,
            UpstairsId = c.UpstairsId ?? Guid.NewGuid(),
            EncryptionKey = c.EncryptionKey,
            ReadOnly = c.ReadOnly,
            Lossy = c.Lossy,
            FlushTimeout = c.FlushTimeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : UpstairsOptions.DefaultFlushTimeout,
            BlockSize = (ulong)c.BlockSize,
            BlocksPerExtent = c.BlocksPerExtent,
            ExtentCount = c.ExtentCount,
            Tls = tls,
            ControlAddress = c.ControlAddress,
        };
        var logger = lf.CreateLogger($"crucible.{c.Name}");
        try
        {
            options.Validate();
            logger.LogInformation("[block_dev.{Name}] connecting to downstairs {Targets} with generation {Generation}{Tls}",
                c.Name, string.Join(", ", c.Targets), c.Generation, tls is null ? "" : " over TLS");
            return CrucibleBlockBackend.ActivateAsync(options, CrucibleBlockBackend.DefaultWorkers, c.SkipFlush, logger)
                .GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is UpstairsException or ArgumentException)
        {
            throw new MachineException($"[block_dev.{c.Name}]: {e.Message}");
        }
    }
}

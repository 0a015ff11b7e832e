using Microsoft.Extensions.Logging;
using Propolis.Core.Block;
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
    /// mismatch, encryption mismatch) or an option this build does not implement is set.</exception>
    public static IBlockBackend Create(CrucibleBlockDev c, ILoggerFactory lf)
    {
        if (c.Tls is not null)
        {
            throw new MachineException($"[block_dev.{c.Name}]: TLS to the downstairs (cert_pem, key_pem, root_cert_pem) is not supported by this build; remove the three keys");
        }
        if (c.ControlAddress is not null)
        {
            throw new MachineException($"[block_dev.{c.Name}]: the upstairs control server (control_addr) is not supported by this build; remove control_addr");
        }
        if (c.Lossy)
        {
            throw new MachineException($"[block_dev.{c.Name}]: lossy = true (crucible's test mode that drops work) is not supported by this build; remove it");
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
        };
        var logger = lf.CreateLogger($"crucible.{c.Name}");
        try
        {
            options.Validate();
            logger.LogInformation("[block_dev.{Name}] connecting to downstairs {Targets} with generation {Generation}",
                c.Name, string.Join(", ", c.Targets), c.Generation);
            return CrucibleBlockBackend.ActivateAsync(options, CrucibleBlockBackend.DefaultWorkers, c.SkipFlush, logger)
                .GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is UpstairsException or ArgumentException)
        {
            throw new MachineException($"[block_dev.{c.Name}]: {e.Message}");
        }
    }
}

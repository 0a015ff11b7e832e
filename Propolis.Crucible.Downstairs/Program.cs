using System.CommandLine;
using Propolis.Crucible.Regions;

namespace Propolis.Crucible.Downstairs;

/// <summary>
/// <c>crucible-downstairs</c>: the disk side of Crucible (crucible downstairs/src/main.rs). This build
/// has <c>create</c>, <c>dump</c> and <c>run</c>.
///
/// Exit codes: 0 success; 1 the operation failed (the region could not be created, opened or read;
/// or <c>dump</c> found regions that differ); 2 the command line is wrong.
/// </summary>
public static class Program
{
    public const int ExitOk = 0;
    public const int ExitFailed = 1;
    public const int ExitUsage = 2;

    public static int Main(string[] args)
    {
        var root = new RootCommand("disk-side storage component")
        {
            CreateCommand.Build(),
            DumpCommand.Build(),
            RunCommand.Build(),
        };
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine($"crucible-downstairs: {error.Message}");
            }
            Console.Error.WriteLine("Try 'crucible-downstairs --help'.");
            return ExitUsage;
        }
        try
        {
            // Errors are ours to report (no stack traces for user mistakes).
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (RegionException e)
        {
            Console.Error.WriteLine($"crucible-downstairs: {e.Message}");
            return ExitFailed;
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"crucible-downstairs: {e.Message}");
            return ExitUsage;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"crucible-downstairs: {e.Message}");
            return ExitFailed;
        }
    }
}

/// <summary>A command line that parses but asks for something impossible.</summary>
internal sealed class UsageException(string message) : Exception(message);

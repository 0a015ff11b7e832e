using Propolis.Crucible.Tests.Regions;

namespace Propolis.Crucible.Tests;

/// <summary>
/// The test assembly's entry point, used only when a test starts the assembly as a child process
/// (<c>dotnet exec Propolis.Crucible.Tests.dll crash-writer ...</c>); the test runner does not call it.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == CrashWriter.Verb)
        {
            return CrashWriter.Run(args[1..]);
        }
        Console.Error.WriteLine($"usage: {CrashWriter.Verb} REGION_DIR LOG_FILE SEED FIRST_VERSION");
        return 2;
    }
}

namespace Propolis.Standalone;

/// <summary>The command line. Filled in by the Foundation issue.</summary>
internal static class Cli
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("propolis-standalone: command line not built yet");
        return 1;
    }
}

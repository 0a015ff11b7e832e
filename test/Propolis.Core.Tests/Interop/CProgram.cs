using System.Diagnostics;

namespace Propolis.Core.Tests.InteropTests;

/// <summary>Compiles a generated C program with gcc and runs it: how the interop layout tests
/// check managed structs and constants against the kernel and libc headers.</summary>
internal static class CProgram
{
    /// <summary>The non-empty lines the program printed. Fails the test when gcc is missing,
    /// the program does not compile, or it exits non-zero.</summary>
    /// <param name="what">What the program checks, for the failure messages
    /// (e.g. "the interop structs against &lt;linux/kvm.h&gt;").</param>
    public static string[] CompileAndRun(string source, string what)
    {
        var dir = Directory.CreateTempSubdirectory("propolis-layout-");
        try
        {
            string src = Path.Combine(dir.FullName, "layout.c");
            string exe = Path.Combine(dir.FullName, "layout");
            File.WriteAllText(src, source);
            var (gccExit, gccOutput) = Run("gcc", ["-std=gnu11", "-Wall", "-o", exe, src],
                $"gcc is required to check {what}: install gcc and linux-libc-dev (build.sh does)");
            Assert.True(gccExit == 0, $"gcc could not compile the program that checks {what}:\n" + gccOutput);
            var (exit, output) = Run(exe, [], $"the compiled program that checks {what} did not start");
            Assert.True(exit == 0, $"the program that checks {what} exited with {exit}:\n{output}");
            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static (int Exit, string Output) Run(string file, string[] args, string whenMissing)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"{whenMissing} ({file}: {e.Message})");
            throw;
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, stdout + stderr.Result);
        }
    }
}

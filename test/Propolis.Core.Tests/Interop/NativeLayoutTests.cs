using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Propolis.Core.Interop;
using Native = Propolis.Core.Interop.Interop;

namespace Propolis.Core.Tests.InteropTests;

/// <summary>Pins every interop struct (size, and offset and size of every field, nested
/// members included) and every constant against the C headers, by generating a C program,
/// compiling it with gcc and comparing what it prints with what the managed side computes.</summary>
public class NativeLayoutTests
{
    /// <summary>The C name of every struct the interop layer mirrors at top level. Helper types
    /// that only exist as union members (kvm_run_io, ...) are reached through their parents.</summary>
    private static readonly (Type Managed, string C)[] Structs =
    [
        (typeof(kvm_run), "struct kvm_run"),
        (typeof(kvm_regs), "struct kvm_regs"),
        (typeof(kvm_segment), "struct kvm_segment"),
        (typeof(kvm_dtable), "struct kvm_dtable"),
        (typeof(kvm_sregs), "struct kvm_sregs"),
        (typeof(kvm_fpu), "struct kvm_fpu"),
        (typeof(kvm_msr_entry), "struct kvm_msr_entry"),
        (typeof(kvm_msrs), "struct kvm_msrs"),
        (typeof(kvm_cpuid_entry2), "struct kvm_cpuid_entry2"),
        (typeof(kvm_cpuid2), "struct kvm_cpuid2"),
        (typeof(kvm_userspace_memory_region), "struct kvm_userspace_memory_region"),
        (typeof(kvm_irq_level), "struct kvm_irq_level"),
        (typeof(kvm_pit_config), "struct kvm_pit_config"),
        (typeof(kvm_irq_routing_irqchip), "struct kvm_irq_routing_irqchip"),
        (typeof(kvm_irq_routing_msi), "struct kvm_irq_routing_msi"),
        (typeof(kvm_irq_routing_entry), "struct kvm_irq_routing_entry"),
        (typeof(kvm_irq_routing), "struct kvm_irq_routing"),
        (typeof(kvm_irqfd), "struct kvm_irqfd"),
        (typeof(kvm_ioeventfd), "struct kvm_ioeventfd"),
        (typeof(kvm_msi), "struct kvm_msi"),
        (typeof(kvm_lapic_state), "struct kvm_lapic_state"),
        (typeof(kvm_mp_state), "struct kvm_mp_state"),
        (typeof(kvm_signal_mask), "struct kvm_signal_mask"),
        (typeof(kvm_irqchip), "struct kvm_irqchip"),
        (typeof(kvm_pit_state2), "struct kvm_pit_state2"),
        (typeof(kvm_vcpu_events), "struct kvm_vcpu_events"),
        (typeof(sigset_t), "sigset_t"),
        (typeof(timespec), "struct timespec"),
        (typeof(pollfd), "struct pollfd"),
    ];

    private static readonly Type[] ConstantClasses = [typeof(Native.Kvm), typeof(Native.Sys)];

    private const string Headers = """
        #include <stddef.h>
        #include <stdio.h>
        #include <errno.h>
        #include <fcntl.h>
        #include <signal.h>
        #include <time.h>
        #include <sys/mman.h>
        #include <sys/eventfd.h>
        #include <poll.h>
        #include <sys/ioctl.h>
        #include <linux/kvm.h>
        #define P(key, expr) printf("%s=%llu\n", key, (unsigned long long)(expr))

        """;

    [Fact]
    public void StructsAndConstantsMatchKernelHeaders()
    {
        var expected = new SortedDictionary<string, ulong>(StringComparer.Ordinal);
        var c = new StringBuilder(Headers).Append("int main(void) {\n");

        foreach (var (type, cName) in Structs)
        {
            Add(expected, c, $"sizeof({cName})", $"sizeof({cName})", (ulong)Marshal.SizeOf(type));
            AddFields(expected, c, type, cName, prefix: "", baseOffset: 0);
        }

        foreach (var cls in ConstantClasses)
        {
            foreach (var f in cls.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            {
                if (f.IsPrivate || !(f.IsLiteral || f.IsInitOnly))
                {
                    continue;
                }
                Add(expected, c, f.Name, f.Name, ToUInt64(f.GetValue(null)!));
            }
        }

        foreach (Errno e in Enum.GetValues<Errno>())
        {
            Add(expected, c, e.ToString(), e.ToString(), (ulong)(int)e);
        }

        c.Append("return 0;\n}\n");
        var actual = CompileAndRun(c.ToString());

        var problems = new List<string>();
        foreach (var (key, value) in expected)
        {
            if (!actual.TryGetValue(key, out var cValue))
            {
                problems.Add($"{key}: the C program printed nothing");
            }
            else if (cValue != value)
            {
                problems.Add($"{key}: managed {value} (0x{value:X}), C {cValue} (0x{cValue:X})");
            }
        }
        Assert.True(problems.Count == 0, "interop disagrees with the C headers:\n" + string.Join('\n', problems));
        // The program really was checked field by field, not just a handful of sizes.
        Assert.True(expected.Count > 300, $"only {expected.Count} facts checked");
    }

    [Fact]
    public void EveryInteropStructIsCovered()
    {
        var reached = new HashSet<Type>();
        foreach (var (type, _) in Structs)
        {
            Reach(type, reached);
        }
        var all = typeof(kvm_run).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsEnum && t.Namespace == typeof(kvm_run).Namespace && !t.IsNested)
            .ToList();
        var missing = all.Where(t => !reached.Contains(t)).Select(t => t.Name).ToList();
        Assert.True(missing.Count == 0, "interop structs without a layout check: " + string.Join(", ", missing));

        static void Reach(Type t, HashSet<Type> reached)
        {
            if (!reached.Add(t))
            {
                return;
            }
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                if (IsNestedStruct(f))
                {
                    Reach(f.FieldType, reached);
                }
            }
        }
    }

    private static void AddFields(SortedDictionary<string, ulong> expected, StringBuilder c, Type type, string cName, string prefix, int baseOffset)
    {
        foreach (var f in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            var path = prefix + f.Name;
            var offset = baseOffset + (int)Marshal.OffsetOf(type, f.Name);
            Add(expected, c, $"offsetof({cName}, {path})", $"offsetof({cName}, {path})", (ulong)offset);
            Add(expected, c, $"sizeof({cName}.{path})", $"sizeof((({cName}*)0)->{path})", (ulong)Marshal.SizeOf(f.FieldType));
            if (IsNestedStruct(f))
            {
                AddFields(expected, c, f.FieldType, cName, path + ".", offset);
            }
        }
    }

    private static bool IsNestedStruct(FieldInfo f) =>
        f.FieldType.IsValueType && !f.FieldType.IsPrimitive && !f.FieldType.IsEnum
        && f.GetCustomAttribute<FixedBufferAttribute>() is null;

    private static void Add(SortedDictionary<string, ulong> expected, StringBuilder c, string key, string cExpr, ulong value)
    {
        expected.Add(key, value);
        c.Append("P(\"").Append(key).Append("\", ").Append(cExpr).Append(");\n");
    }

    private static ulong ToUInt64(object value) => value switch
    {
        nint n => unchecked((ulong)(long)n),
        sbyte or short or int or long => unchecked((ulong)Convert.ToInt64(value, CultureInfo.InvariantCulture)),
        _ => Convert.ToUInt64(value, CultureInfo.InvariantCulture),
    };

    private static Dictionary<string, ulong> CompileAndRun(string source)
    {
        var result = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (string line in CProgram.CompileAndRun(source, "the interop structs against <linux/kvm.h>"))
        {
            int eq = line.LastIndexOf('=');
            result[line[..eq]] = ulong.Parse(line[(eq + 1)..], CultureInfo.InvariantCulture);
        }
        return result;
    }
}

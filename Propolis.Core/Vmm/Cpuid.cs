namespace Propolis.Core.Vmm;

/// <summary>One CPUID leaf/subleaf as the guest will see it.</summary>
public struct CpuidEntry
{
    public uint Function;
    public uint Index;
    /// <summary>True if <see cref="Index"/> (ECX on input) selects among subleaves of this function.</summary>
    public bool IndexSignificant;
    public uint Eax, Ebx, Ecx, Edx;

    public CpuidEntry(uint function, uint index, bool indexSignificant, uint eax, uint ebx, uint ecx, uint edx)
    {
        Function = function;
        Index = index;
        IndexSignificant = indexSignificant;
        Eax = eax;
        Ebx = ebx;
        Ecx = ecx;
        Edx = edx;
    }

    public override readonly string ToString() =>
        $"{Function:X8}.{Index:X}{(IndexSignificant ? "" : "*")}: eax={Eax:X8} ebx={Ebx:X8} ecx={Ecx:X8} edx={Edx:X8}";
}

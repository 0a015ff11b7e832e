using Propolis.Crucible.Crypto;

namespace Propolis.Crucible.Tests.Crypto;

/// <summary>Shared helpers: the backends this CPU can run, and hex.</summary>
internal static class CryptoTestData
{
    /// <summary>Every backend this machine can run; the portable one always.</summary>
    public static IEnumerable<bool> HardwareChoices()
    {
        yield return false;
        if (AesNi.IsSupported && PolyvalClmul.IsSupported)
        {
            yield return true;
        }
    }

    public static AesGcmSivBackend Backend(bool hardware) => hardware ? AesGcmSivBackend.Hardware : AesGcmSivBackend.Portable;

    public static AesGcmSiv Create(ReadOnlySpan<byte> key, bool hardware) => new(key, Backend(hardware));

    public static byte[] Hex(string hex) => Convert.FromHexString(hex);

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}

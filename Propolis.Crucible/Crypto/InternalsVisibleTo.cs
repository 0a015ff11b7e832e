using System.Runtime.CompilerServices;

// test/Bench/CryptoBench forces the portable backend (AesGcmSiv's internal constructor) to print
// its figures next to the hardware ones.
[assembly: InternalsVisibleTo("CryptoBench")]

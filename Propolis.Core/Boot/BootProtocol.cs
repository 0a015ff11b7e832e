namespace Propolis.Core.Boot;

/// <summary>Offsets of the x86 Linux boot protocol's real-mode setup header, in the bzImage
/// file and in boot_params (Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header").</summary>
public static class SetupHeader
{
    public const int SetupSects = 0x1F1;        // u8
    public const int RootFlags = 0x1F2;         // u16
    public const int SysSize = 0x1F4;           // u32
    public const int RamSize = 0x1F8;           // u16
    public const int VidMode = 0x1FA;           // u16
    public const int RootDev = 0x1FC;           // u16
    public const int BootFlag = 0x1FE;          // u16, 0xAA55
    public const int Jump = 0x200;              // u16, EB xx
    public const int Header = 0x202;            // u32, "HdrS"
    public const int Version = 0x206;           // u16
    public const int RealmodeSwtch = 0x208;     // u32
    public const int StartSysSeg = 0x20C;       // u16
    public const int KernelVersion = 0x20E;     // u16
    public const int TypeOfLoader = 0x210;      // u8
    public const int LoadFlags = 0x211;         // u8
    public const int SetupMoveSize = 0x212;     // u16
    public const int Code32Start = 0x214;       // u32
    public const int RamdiskImage = 0x218;      // u32
    public const int RamdiskSize = 0x21C;       // u32
    public const int BootsectKludge = 0x220;    // u32
    public const int HeapEndPtr = 0x224;        // u16
    public const int ExtLoaderVer = 0x226;      // u8
    public const int ExtLoaderType = 0x227;     // u8
    public const int CmdLinePtr = 0x228;        // u32
    public const int InitrdAddrMax = 0x22C;     // u32
    public const int KernelAlignment = 0x230;   // u32
    public const int RelocatableKernel = 0x234; // u8
    public const int MinAlignment = 0x235;      // u8
    public const int XLoadFlags = 0x236;        // u16
    public const int CmdlineSize = 0x238;       // u32
    public const int HardwareSubarch = 0x23C;   // u32
    public const int HardwareSubarchData = 0x240; // u64
    public const int PayloadOffset = 0x248;     // u32
    public const int PayloadLength = 0x24C;     // u32
    public const int SetupData = 0x250;         // u64
    public const int PrefAddress = 0x258;       // u64
    public const int InitSize = 0x260;          // u32
    public const int HandoverOffset = 0x264;    // u32
    public const int KernelInfoOffset = 0x268;  // u32
    /// <summary>First byte past the last field this loader reads.</summary>
    public const int End = 0x26C;

    public const uint HeaderMagic = 0x5372_6448; // "HdrS"
    public const ushort BootFlagMagic = 0xAA55;

    // loadflags
    public const byte LoadedHigh = 0x01;
    public const byte CanUseHeap = 0x80;

    // xloadflags
    public const ushort XlfKernel64 = 0x0001;
    public const ushort XlfCanBeLoadedAbove4G = 0x0002;

    /// <summary>type_of_loader 0xFF: a boot loader without an assigned id.</summary>
    public const byte LoaderTypeUndefined = 0xFF;

    /// <summary>vid_mode 0xFFFF: "normal" VGA text mode; a headless guest ignores it.</summary>
    public const ushort VidModeNormal = 0xFFFF;
}

/// <summary>Offsets of boot_params (the "zero page") outside the embedded setup header
/// (arch/x86/include/uapi/asm/bootparam.h and Documentation/arch/x86/zero-page.rst).</summary>
public static class ZeroPage
{
    public const int Size = 0x1000;
    public const int ExtRamdiskImage = 0x0C0;   // u32, high half of ramdisk_image
    public const int ExtRamdiskSize = 0x0C4;    // u32
    public const int ExtCmdLinePtr = 0x0C8;     // u32
    public const int E820Entries = 0x1E8;       // u8
    public const int Sentinel = 0x1EF;          // u8
    public const int E820Table = 0x2D0;         // 128 × 20 bytes
    public const int E820MaxEntries = 128;
}

using System.Buffers.Binary;
using Propolis.Core.Boot;

namespace Propolis.Core.Tests.Boot;

/// <summary>Builds bzImage headers as boot.rst describes them, with a recognisable payload.</summary>
internal static class TestImages
{
    public const int SetupSects = 2;
    public const int PayloadOffset = (SetupSects + 1) * 512;
    public const int PayloadLength = 0x3000;

    public static byte[] BzImage(ushort version = 0x020F, byte loadFlags = SetupHeader.LoadedHigh, ushort xloadflags = SetupHeader.XlfKernel64 | SetupHeader.XlfCanBeLoadedAbove4G,
        uint cmdlineSize = 2047, uint initrdAddrMax = 0x7FFF_FFFF, uint initSize = 0x80_0000, ulong prefAddress = 0x100_0000)
    {
        var image = new byte[PayloadOffset + PayloadLength];
        var s = image.AsSpan();
        s[SetupHeader.SetupSects] = SetupSects;
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.RootFlags..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.SysSize..], PayloadLength / 16);
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.VidMode..], 0xFFFD); // "ask"; the loader must override it
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.BootFlag..], SetupHeader.BootFlagMagic);
        s[SetupHeader.Jump] = 0xEB;
        s[SetupHeader.Jump + 1] = 0x66; // header ends at 0x268
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.Header..], SetupHeader.HeaderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.Version..], version);
        s[SetupHeader.LoadFlags] = loadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.Code32Start..], 0x10_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.InitrdAddrMax..], initrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.KernelAlignment..], 0x20_0000);
        s[SetupHeader.RelocatableKernel] = 1;
        s[SetupHeader.MinAlignment] = 21;
        BinaryPrimitives.WriteUInt16LittleEndian(s[SetupHeader.XLoadFlags..], xloadflags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.CmdlineSize..], cmdlineSize);
        BinaryPrimitives.WriteUInt64LittleEndian(s[SetupHeader.PrefAddress..], prefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[SetupHeader.InitSize..], initSize);
        for (var i = 0; i < PayloadLength; i++)
        {
            image[PayloadOffset + i] = (byte)(i * 7 + 3);
        }
        return image;
    }
}

namespace Propolis.Core.Hw.Virtio;

/// <summary>virtio-net feature bits, header, configuration layout and control commands
/// (virtio 1.2 §5.1, include/uapi/linux/virtio_net.h).</summary>
public static class VirtioNetSpec
{
    public const ushort DeviceId = 1;

    // §5.1.3 feature bits
    public const ulong FeatureCsum = 1UL << 0;
    public const ulong FeatureGuestCsum = 1UL << 1;
    public const ulong FeatureCtrlGuestOffloads = 1UL << 2;
    public const ulong FeatureMtu = 1UL << 3;
    public const ulong FeatureMac = 1UL << 5;
    public const ulong FeatureGuestTso4 = 1UL << 7;
    public const ulong FeatureGuestTso6 = 1UL << 8;
    public const ulong FeatureGuestEcn = 1UL << 9;
    public const ulong FeatureGuestUfo = 1UL << 10;
    public const ulong FeatureHostTso4 = 1UL << 11;
    public const ulong FeatureHostTso6 = 1UL << 12;
    public const ulong FeatureHostEcn = 1UL << 13;
    public const ulong FeatureHostUfo = 1UL << 14;
    public const ulong FeatureMrgRxbuf = 1UL << 15;
    public const ulong FeatureStatus = 1UL << 16;
    public const ulong FeatureCtrlVq = 1UL << 17;
    public const ulong FeatureCtrlRx = 1UL << 18;
    public const ulong FeatureCtrlVlan = 1UL << 19;
    public const ulong FeatureGuestAnnounce = 1UL << 21;
    public const ulong FeatureMq = 1UL << 22;
    public const ulong FeatureCtrlMacAddr = 1UL << 23;

    /// <summary>VIRTIO_NET_S_LINK_UP (§5.1.4).</summary>
    public const ushort StatusLinkUp = 1;

    /// <summary>VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX (§5.1.4.1: 1 to 0x8000).</summary>
    public const int MaxQueuePairsLimit = 0x8000;

    /// <summary>struct virtio_net_config field offsets (§5.1.4).</summary>
    public static class Config
    {
        public const int Mac = 0;                 // u8[6]
        public const int Status = 6;              // le16
        public const int MaxVirtqueuePairs = 8;   // le16
        public const int Mtu = 10;                // le16
        public const int Size = 12;
    }

    /// <summary>struct virtio_net_hdr (§5.1.6): flags, gso_type, hdr_len, gso_size, csum_start,
    /// csum_offset, then num_buffers when VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF was negotiated.</summary>
    public static class Header
    {
        public const int Flags = 0;
        public const int GsoType = 1;
        public const int HdrLen = 2;
        public const int GsoSize = 4;
        public const int CsumStart = 6;
        public const int CsumOffset = 8;
        public const int NumBuffers = 10;

        /// <summary>The legacy header without num_buffers.</summary>
        public const int LegacySize = 10;

        /// <summary>struct virtio_net_hdr_v1 / virtio_net_hdr_mrg_rxbuf.</summary>
        public const int Size = 12;
    }

    /// <summary>Control virtqueue classes and commands (§5.1.6.5).</summary>
    public static class Ctrl
    {
        public const byte Ok = 0;
        public const byte Err = 1;

        public const byte ClassRx = 0;
        public const byte RxPromisc = 0;
        public const byte RxAllMulti = 1;

        public const byte ClassMac = 1;
        public const byte MacTableSet = 0;
        public const byte MacAddrSet = 1;

        public const byte ClassVlan = 2;
        public const byte ClassAnnounce = 3;

        public const byte ClassMq = 4;
        public const byte MqVqPairsSet = 0;

        public const byte ClassGuestOffloads = 5;
    }
}

# shellcheck shell=bash
# The boot disk (test/e2e/boot-disk.sh) is good: QEMU -accel kvm with OVMF boots it from an NVMe
# drive through GRUB to the demo guest's shell, and picks it by bootindex over a second bootable
# disk (a copy named "second", on virtio-blk at a lower PCI slot). This checks the image and the
# harness; case 41 runs the same with propolis-standalone.
# e2e-timeout: 420
. "$E2E_ROOT/test/e2e/lib/bootdisk.sh"
require_firmware_kvm

[ -w /dev/kvm ] || fail "no usable /dev/kvm here"
boot_disk_copy boot.img boot
boot_disk_copy second.img second
spawn qemu qemu-system-x86_64 -accel kvm -cpu host -m 512 -smp 2 \
    -nodefaults -display none -no-reboot -net none -bios "$E2E_OVMF" \
    -drive file=second.img,if=none,id=d1,format=raw,cache=writeback \
    -device virtio-blk-pci,drive=d1,addr=4,bootindex=1 \
    -drive file=boot.img,if=none,id=d0,format=raw,cache=writeback \
    -device nvme,drive=d0,serial=boot,addr=5,bootindex=0 \
    -chardev socket,id=con,path=ttya,server=on,wait=on -serial chardev:con

connect ttya 30
expect_boot_disk boot 360
send 'echo disks: $(ls /sys/block)'
expect_line '^disks: .*nvme0n1' 30
[[ $CONSOLE_MATCH == *vda* ]] || fail "the guest does not see the virtio-blk disk: $CONSOLE_MATCH"
expect_text '~ # ' 30
send 'poweroff -f'
wait_exit qemu 60

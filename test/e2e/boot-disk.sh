#!/usr/bin/env bash
# boot-disk.sh: a UEFI boot disk for the demo guest, made without loop mounts or root.
#
#   test/e2e/boot-disk.sh [--with TOOL[,TOOL...]] [--print]
#
# Writes out/guest/boot-disk.img (boot-disk+TOOL+....img with --with): a raw disk image with a
# GPT (made by sfdisk on the file) holding one partition, the EFI system partition, from 1 MiB to
# the end. The ESP is a FAT file system made and filled with mtools (mformat/mmd/mcopy on
# IMAGE@@OFFSET) and holds:
#   EFI/BOOT/BOOTX64.EFI   GRUB for x86_64-efi (grub-mkstandalone, Debian's grub-efi-amd64-bin)
#                          with an embedded grub.cfg: no menu, it boots at once
#   vmlinuz                the demo guest's kernel (test/e2e/demo-guest.sh)
#   initramfs.img          its initramfs (with the --with programs, as demo-guest.sh --with makes)
#   disk-name.cfg          `set disk_name=boot`
# The embedded grub.cfg takes the disk GRUB itself was loaded from ($cmdpath), reads
# disk-name.cfg from it, prints "propolis boot disk: NAME on (DEV)" and boots
#   vmlinuz console=ttyS0 reboot=k panic=-1 quiet propolis.boot_disk=NAME
# with initramfs.img, so the guest's /proc/cmdline tells which disk the firmware picked. To make
# a second bootable disk that is told apart, copy the image and replace disk-name.cfg:
#   printf 'set disk_name=second\n' > n.cfg; mcopy -o -i COPY@@1M n.cfg ::/disk-name.cfg
# (BOOT_DISK_ESP_OFFSET, 1048576, is the partition's byte offset.)
# --print           print the image's path on stdout.
# --verify          then boot it twice: qemu-system-x86_64 with OVMF (-accel kvm where /dev/kvm
#                   works, else TCG: about 20 s a boot) with the image on NVMe and a copy named
#                   "second" on virtio-blk at a lower PCI slot; bootindex first picks the NVMe
#                   disk, then the copy; each time GRUB's line, the guest's shell and
#                   propolis.boot_disk=NAME in /proc/cmdline are checked. Prints
#                   "boot disk verified (...)" or fails. This is how the image is checked where
#                   the e2e sandbox cannot run firmware (see README.md, "Nested OVMF").
# The image is rebuilt only when this script, GRUB, the kernel or the initramfs changes. Needs
# (installed with apt-get when missing): fdisk (sfdisk), mtools, grub-efi-amd64-bin, and ovmf for
# booting it: qemu-system-x86_64 -accel kvm -bios /usr/share/ovmf/OVMF.fd -nographic \
#   -drive file=out/guest/boot-disk.img,if=none,id=d0,format=raw -device nvme,drive=d0,serial=boot
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
with=() print=0 verify=0
while [ $# -gt 0 ]; do
    case "$1" in
        --with) [ -n "${2:-}" ] || e2e_die "--with needs program names"; with=(--with "$2"); shift 2 ;;
        --print) print=1; shift ;;
        --verify) verify=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) e2e_die "unknown argument '$1' (see --help)" ;;
    esac
done

BOOT_DISK_ESP_OFFSET=1048576
CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"      # the demo guest's usual command line
ESP_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B        # UEFI 2.9 §5.3.3: EFI System Partition

initrd=$("$HERE/demo-guest.sh" ${with[@]+"${with[@]}"} --print)
dir=$E2E_OUT/guest
kernel=$dir/vmlinuz
name=boot-disk$(basename "$initrd" .img | sed -n 's/^initramfs//p')
image=$dir/$name.img
stamp=$dir/.$name.stamp

# ovmf: the firmware that boots this disk in the e2e cases and by hand (see the header).
e2e_apt_need fdisk mtools grub-efi-amd64-bin ovmf
GRUB_DIR=/usr/lib/grub/x86_64-efi
[ -f "$GRUB_DIR/linux.mod" ] || e2e_die "no GRUB x86_64-efi modules in $GRUB_DIR (grub-efi-amd64-bin)"

exec {lock}>"$dir/.boot-disk.lock"
flock "$lock"
key=$(e2e_hash "$HERE/boot-disk.sh" "$HERE/lib/common.sh" "$kernel" "$initrd" "$GRUB_DIR/linux.mod" "$GRUB_DIR/kernel.img")

# verify_boot WORK NAME BOOTINDEX-OF-SECOND: boot QEMU+OVMF with WORK/boot.img on NVMe (bootindex 1
# unless told) and WORK/second.img on virtio-blk at a lower PCI slot; expect the disk NAME.
verify_boot() {
    local work=$1 want=$2 second_index=$3 boot_index qpid status=0
    boot_index=$((1 - second_index))
    rm -f "$work/ttya"
    qemu-system-x86_64 -accel "$verify_accel" -m 512 -nodefaults -display none -no-reboot -net none \
        -bios /usr/share/ovmf/OVMF.fd \
        -drive "file=$work/second.img,if=none,id=d1,format=raw" \
        -device "virtio-blk-pci,drive=d1,addr=4,bootindex=$second_index" \
        -drive "file=$work/boot.img,if=none,id=d0,format=raw" \
        -device "nvme,drive=d0,serial=boot,addr=5,bootindex=$boot_index" \
        -chardev "socket,id=con,path=$work/ttya,server=on,wait=on" -serial chardev:con \
        > "$work/qemu.log" 2>&1 < /dev/null &
    qpid=$!
    if connect "$work/ttya" 30 && expect_line 'propolis boot disk: ' "$verify_timeout" \
        && [[ $CONSOLE_MATCH == *"propolis boot disk: $want on "* ]] \
        && expect_line 'propolis demo guest' "$verify_timeout" && expect_text '~ # ' 60; then
        send "grep -o 'propolis.boot_disk=[a-z]*' /proc/cmdline"
        expect_line "^propolis\\.boot_disk=$want\$" 30 || status=1
    else
        status=1
    fi
    [ $status -eq 0 ] && send 'poweroff -f'
    disconnect
    sleep 1
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
    if [ $status -ne 0 ]; then
        echo "boot-disk.sh: expected the disk '$want'; GRUB said: ${CONSOLE_MATCH:-nothing}" >&2
        tail -n 20 "$work/qemu.log" >&2
    fi
    return $status
}

# verify_image: see --verify.
verify_image() {
    e2e_apt_need qemu-system-x86 socat ovmf
    local work status=0
    verify_accel=tcg verify_timeout=600
    if [ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null; then verify_accel=kvm verify_timeout=180; fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/boot-disk-verify.XXXXXX")
    cp --sparse=always "$image" "$work/boot.img"
    cp --sparse=always "$image" "$work/second.img"
    printf 'set disk_name=second\n' > "$work/name.cfg"
    MTOOLS_SKIP_CHECK=1 mcopy -o -i "$work/second.img@@$BOOT_DISK_ESP_OFFSET" "$work/name.cfg" ::/disk-name.cfg
    CONSOLE_LOG=$work/console.log
    # shellcheck source=lib/console.sh
    . "$HERE/lib/console.sh"
    verify_boot "$work" boot 1 && verify_boot "$work" second 0 || status=1
    rm -rf "$work"
    [ $status -eq 0 ] || e2e_die "the boot disk did not boot as expected (QEMU -accel $verify_accel, OVMF)"
    e2e_log "boot disk verified (QEMU -accel $verify_accel, OVMF: bootindex picks the NVMe disk over a virtio-blk copy at a lower slot, and the other way round; GRUB, kernel, shell)"
}

if [ -f "$image" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    [ $verify -eq 1 ] && verify_image
    [ $print -eq 1 ] && echo "$image"
    exit 0
fi

e2e_log "building the boot disk $name.img"
stage=$(mktemp -d "$dir/.boot-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# GRUB's embedded configuration. $cmdpath is where GRUB was loaded from, "(hd0,gpt1)/EFI/BOOT":
# the kernel is taken from that same partition, never from another disk that also has one.
cat > "$stage/grub.cfg" <<EOF
set timeout=0
set disk_name=unnamed
regexp --set=1:bootdev '^\\(([^)]*)\\)' "\$cmdpath"
if [ -n "\$bootdev" ]; then
    set root=(\$bootdev)
else
    search --no-floppy --file --set=root /disk-name.cfg
fi
if [ -f /disk-name.cfg ]; then
    source /disk-name.cfg
fi
echo "propolis boot disk: \$disk_name on (\$root)"
linux /vmlinuz $CMDLINE propolis.boot_disk=\$disk_name
initrd /initramfs.img
boot
EOF
# Modules for that configuration, loaded from GRUB's own image (no module files on the ESP).
grub-mkstandalone -O x86_64-efi -o "$stage/BOOTX64.EFI" \
    --modules="part_gpt fat regexp search search_fs_file test echo linux configfile normal all_video" \
    --install-modules="part_gpt part_msdos fat regexp search search_fs_file search_fs_uuid search_label test echo linux configfile normal all_video gfxterm" \
    --locales= --fonts= --themes= \
    "boot/grub/grub.cfg=$stage/grub.cfg" \
    || e2e_die "grub-mkstandalone failed"
printf 'set disk_name=boot\n' > "$stage/disk-name.cfg"

# Size: the files, plus a quarter and 8 MiB for FAT overhead, rounded up to MiB, at least 64 MiB;
# 1 MiB before the ESP (protective MBR, GPT header and entries) and 1 MiB after (backup GPT).
payload=$(( $(stat -c %s "$kernel") + $(stat -c %s "$initrd") + $(stat -c %s "$stage/BOOTX64.EFI") ))
esp_mib=$(( (payload * 5 / 4 + 8 * 1048576 + 1048575) / 1048576 ))
[ $esp_mib -ge 64 ] || esp_mib=64
disk_mib=$((esp_mib + 2))
tmp=$stage/disk.img
truncate -s "${disk_mib}M" "$tmp"
esp_start=$((BOOT_DISK_ESP_OFFSET / 512))
esp_sectors=$((esp_mib * 2048))
# Fixed GUIDs, so that images differ only by the files in them.
sfdisk --quiet --no-reread --no-tell-kernel "$tmp" <<EOF || e2e_die "sfdisk failed on $tmp"
label: gpt
label-id: 0D15C0DE-B007-4D15-8000-000000000001
first-lba: 2048
start=$esp_start, size=$esp_sectors, type=$ESP_TYPE, uuid=0D15C0DE-B007-4D15-8000-0000000000E5, name="EFI System"
EOF

esp="$tmp@@$BOOT_DISK_ESP_OFFSET"
export MTOOLS_SKIP_CHECK=1
# -T total sectors, -H hidden sectors (the partition's start), -h/-s a nominal geometry.
mformat -i "$esp" -T "$esp_sectors" -H "$esp_start" -h 64 -s 32 -v PROPOLISESP -N 0B00D15C :: \
    || e2e_die "mformat failed"
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -i "$esp" "$stage/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$kernel" ::/vmlinuz
mcopy -i "$esp" "$initrd" ::/initramfs.img
mcopy -i "$esp" "$stage/disk-name.cfg" ::/disk-name.cfg
mv "$tmp" "$image"
echo "$key" > "$stamp"
e2e_log "boot disk: $image (${disk_mib} MiB, ESP at $BOOT_DISK_ESP_OFFSET)"
[ $verify -eq 1 ] && verify_image
[ $print -eq 1 ] && echo "$image"
exit 0

# shellcheck shell=bash
# Helpers for cases that boot from disk through UEFI firmware (sourced after lib/e2e.sh).
#
#   E2E_BOOT_DISK         out/guest/boot-disk.img (test/e2e/boot-disk.sh; run.sh builds it): a GPT
#                         disk whose EFI system partition holds GRUB, the demo kernel and initrd;
#                         GRUB boots the kernel with propolis.boot_disk=NAME on its command line
#   E2E_OVMF              the OVMF image booted as the firmware (/usr/share/ovmf/OVMF.fd, code and
#                         variable store in one 2 MiB file; E2E_OVMF overrides)
#   boot_disk_copy DEST NAME
#                         copy the boot disk to DEST, its disk-name.cfg saying NAME, so that the
#                         guest tells which copy the firmware booted
#   (require_firmware_kvm, which these cases call first, is in lib/e2e.sh)
#   expect_boot_disk NAME [TIMEOUT]
#                         wait for GRUB's "propolis boot disk: NAME on (...)" line, the demo guest's
#                         banner and prompt, and check that /proc/cmdline has propolis.boot_disk=NAME

E2E_BOOT_DISK=$E2E_OUT/guest/boot-disk.img
E2E_OVMF=${E2E_OVMF:-/usr/share/ovmf/OVMF.fd}
BOOT_DISK_ESP_OFFSET=1048576     # as in boot-disk.sh

boot_disk_copy() {
    local dest=$1 name=$2
    [ -f "$E2E_BOOT_DISK" ] || fail "no $E2E_BOOT_DISK (test/e2e/boot-disk.sh makes it)"
    [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || fail "boot_disk_copy: bad disk name '$name'"
    cp --sparse=always "$E2E_BOOT_DISK" "$dest"
    printf 'set disk_name=%s\n' "$name" > "$dest.name.cfg"
    MTOOLS_SKIP_CHECK=1 mcopy -o -i "$dest@@$BOOT_DISK_ESP_OFFSET" "$dest.name.cfg" ::/disk-name.cfg
    rm -f "$dest.name.cfg"
}

expect_boot_disk() {
    local name=$1 timeout=${2:-300}
    expect_line 'propolis boot disk: ' "$timeout"
    note "GRUB: $CONSOLE_MATCH"
    [[ $CONSOLE_MATCH == *"propolis boot disk: $name on "* ]] \
        || fail "the firmware booted another disk: '$CONSOLE_MATCH', expected '$name'"
    expect_line 'propolis demo guest' "$timeout"
    note "banner: $CONSOLE_MATCH"
    expect_text '~ # ' 60
    send "tr ' ' '\\n' < /proc/cmdline | grep '^propolis.boot_disk='"
    expect_line '^propolis\.boot_disk=' 30
    [ "$CONSOLE_MATCH" = "propolis.boot_disk=$name" ] || fail "the kernel's command line has $CONSOLE_MATCH, expected $name"
    expect_text '~ # ' 30
}

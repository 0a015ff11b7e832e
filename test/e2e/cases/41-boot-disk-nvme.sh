# shellcheck shell=bash
# propolis-standalone boots from disk: OVMF (bootrom) finds the boot disk (test/e2e/boot-disk.sh:
# GPT, an EFI system partition with GRUB, the demo kernel and initrd) on pci-nvme and boots it to
# the demo guest's shell. A second bootable disk (a copy named "second") sits on pci-virtio-block
# at a lower PCI slot; boot_order, which becomes fw_cfg's bootorder file, decides: first
# ["boot", "second"] boots the NVMe disk, then ["second", "boot"] boots the virtio-block one.
# e2e-timeout: 720
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/bootdisk.sh"
require_firmware_kvm

boot_disk_copy boot.img boot
boot_disk_copy second.img second

# vm.toml with this boot_order (TOML array items, e.g. '"boot", "second"').
disk_config() {
    cat > "$1" <<TOML
[main]
name = "e2e-boot-disk"
cpus = 2
memory = 512
bootrom = "$E2E_OVMF"
boot_order = [$2]

[block_dev.second_disk]
type = "file"
path = "$PWD/second.img"

[block_dev.boot_disk]
type = "file"
path = "$PWD/boot.img"

[dev.second]
driver = "pci-virtio-block"
block_dev = "second_disk"
pci-path = "0.4.0"

[dev.boot]
driver = "pci-nvme"
block_dev = "boot_disk"
pci-path = "0.5.0"
TOML
    cp "$1" "$E2E_ARTIFACTS/"
}

disk_config nvme-first.toml '"boot", "second"'
start_vmm vmm nvme-first.toml
connect ttya 30
t0=$SECONDS
expect_boot_disk boot 480
note "OVMF booted the NVMe disk to the shell in $((SECONDS - t0))s"
shell 'echo disks: $(ls /sys/block)' '^disks: .*nvme0n1'
[[ $CONSOLE_MATCH == *vda* ]] || fail "the guest does not see the virtio-block disk: $CONSOLE_MATCH"
send 'poweroff -f'
wait_exit vmm 60 0

disconnect
disk_config virtio-first.toml '"second", "boot"'
start_vmm vmm2 virtio-first.toml
connect ttya 30
t1=$SECONDS
expect_boot_disk second 480
note "OVMF booted the virtio-block disk to the shell in $((SECONDS - t1))s"
send 'poweroff -f'
wait_exit vmm2 60 0

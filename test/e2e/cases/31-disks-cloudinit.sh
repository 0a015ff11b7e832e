# shellcheck shell=bash
# A cloudinit block_dev shows up in the guest as a FAT volume labelled "cidata" holding
# user-data, meta-data and network-config from [cloudinit], read-only.
# e2e-timeout: 400
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/disks.sh"

printf '#cloud-config\nhostname: from-file\n' > user-data.yaml
write_config ci.toml 1 256
cat >> ci.toml <<TOML

[cloudinit]
user-data-path = "$PWD/user-data.yaml"
meta-data = "instance-id: e2e-31"
network-config = "version: 2"
TOML
disk_toml ci.toml seed pci-virtio-block 0.4.0 'type = "cloudinit"'

start_vmm ci ci.toml
boot_to_shell 300
wait_disks vda
shell 'cat /sys/block/vda/ro' '^1$'
shell 'mkdir -p /mnt && mount -t vfat -o ro /dev/vda /mnt && echo mounted' '^mounted$' 60
shell 'ls /mnt | tr "\n" " "; echo' '^meta-data network-config user-data ?$'
shell 'cat /mnt/meta-data; echo' '^instance-id: e2e-31$'
shell 'cat /mnt/network-config; echo' '^version: 2$'
shell 'grep hostname /mnt/user-data' '^hostname: from-file$'
# The volume label: BS_VolLab, 11 bytes at offset 43 of the FAT12 boot sector.
shell 'dd if=/dev/vda bs=1 skip=43 count=11 2>/dev/null; echo "|"' '^cidata +\|$'
send 'poweroff -f'
wait_exit ci 60 0

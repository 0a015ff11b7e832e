# shellcheck shell=bash
# The guest writes a pattern (4 MiB at scattered offsets) to a pci-virtio-block disk and to a
# pci-nvme disk, syncs and powers off: the image files equal the host's expectation byte for
# byte. A second boot reads the pattern back. A read_only disk refuses writes in the guest. The
# 2-vCPU guest sees two blk-mq hardware queues on the virtio disk (VIRTIO_BLK_F_MQ).
# e2e-timeout: 600
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/disks.sh"

# 1 MiB (256 blocks of 4 KiB) at each of these block offsets of a 16 MiB disk.
OFFSETS="0 513 1999 3840"
truncate -s 16M vblk.img nvme.img ro.img
pattern readonly-disk 4096 | dd of=ro.img conv=notrunc status=none

# What both images must hold afterwards: the pattern where written, zeros elsewhere.
for d in vblk nvme; do
    truncate -s 16M "expect-$d.img"
    for off in $OFFSETS; do
        pattern "$d-$off" 1048576 | dd of="expect-$d.img" bs=4096 seek="$off" conv=notrunc status=none
    done
done

write_config disks.toml 2 512
disk_toml disks.toml vblk pci-virtio-block 0.4.0 'type = "file"' "path = \"$PWD/vblk.img\"" 'workers = 4'
disk_toml disks.toml ro pci-virtio-block 0.5.0 'type = "file"' "path = \"$PWD/ro.img\"" 'read_only = true'
disk_toml disks.toml nvme pci-nvme 0.6.0 'type = "file"' "path = \"$PWD/nvme.img\"" 'workers = 4'

start_vmm write disks.toml
boot_to_shell 300
wait_disks vda vdb nvme0n1
shell 'cat /sys/block/vda/size /sys/block/nvme0n1/size | tr "\n" " "; echo' '^32768 32768 ?$'
shell 'cat /sys/block/nvme0n1/device/serial' '^nvme *$'
# A request queue per vCPU (VIRTIO_BLK_F_MQ): blk-mq shows one hardware queue for each of the 2.
shell 'ls /sys/block/vda/mq | wc -l' '^2$'
for off in $OFFSETS; do
    shell "yes vblk-$off | head -c 1048576 | dd of=/dev/vda iflag=fullblock bs=4096 seek=$off conv=fsync 2>/dev/null; echo vda-$off=\$?" "^vda-$off=0$" 60
    shell "yes nvme-$off | head -c 1048576 | dd of=/dev/nvme0n1 iflag=fullblock bs=4096 seek=$off conv=fsync 2>/dev/null; echo nvme-$off=\$?" "^nvme-$off=0$" 60
done
shell 'sync; echo synced' '^synced$' 60

# The read-only disk: the kernel marks it so and a write fails.
shell 'cat /sys/block/vdb/ro' '^1$'
shell 'dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; echo ro-write=$?' '^ro-write=[1-9]'
shell 'head -c 13 /dev/vdb; echo' '^readonly-disk$'

send 'poweroff -f'
wait_exit write 60 0
disconnect

cmp expect-vblk.img vblk.img || fail "vblk.img differs from what the guest wrote"
cmp expect-nvme.img nvme.img || fail "nvme.img differs from what the guest wrote"
cmp <(pattern readonly-disk 4096) <(head -c 4096 ro.img) || fail "the read-only image changed"
note "both images match byte for byte"

# A fresh boot reads the pattern back.
start_vmm read disks.toml
boot_to_shell 300
wait_disks vda nvme0n1
for off in $OFFSETS; do
    for pair in vblk:vda nvme:nvme0n1; do
        d=${pair%%:*} dev=${pair#*:}
        # (The command line is long enough to wrap on the console: the expected line carries a
        # computed status, never text that also appears in the command.)
        shell "[ \"\$(dd if=/dev/$dev bs=4096 skip=$off count=256 2>/dev/null | md5sum)\" = \"\$(yes $d-$off | head -c 1048576 | md5sum)\" ]; echo read-$d-$off=\$?" "^read-$d-$off=[0-9]+$" 60
        [ "$CONSOLE_MATCH" = "read-$d-$off=0" ] || fail "the second boot read different data from $dev at block $off"
    done
done
send 'poweroff -f'
wait_exit read 60 0

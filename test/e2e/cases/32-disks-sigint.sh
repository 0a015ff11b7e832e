# shellcheck shell=bash
# Ctrl+C (SIGINT) while the guest runs a write loop on a pci-nvme disk and a pci-virtio-block
# disk: every write the guest saw complete before the interrupt is in the image file.
# e2e-timeout: 400
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/disks.sh"

truncate -s 8M vblk.img nvme.img
write_config loop.toml 2 256
disk_toml loop.toml vblk pci-virtio-block 0.4.0 'type = "file"' "path = \"$PWD/vblk.img\""
disk_toml loop.toml nvme pci-nvme 0.5.0 'type = "file"' "path = \"$PWD/nvme.img\""

start_vmm loop loop.toml
boot_to_shell 300
wait_disks vda nvme0n1
# Block i of each disk gets "w<i>" repeated; "done <i>" is printed once both writes (with
# fsync) have completed.
send 'i=0; while [ $i -lt 1500 ]; do yes w$i | head -c 4096 | dd of=/dev/vda iflag=fullblock bs=4096 seek=$i conv=fsync 2>/dev/null && yes w$i | head -c 4096 | dd of=/dev/nvme0n1 iflag=fullblock bs=4096 seek=$i conv=fsync 2>/dev/null && echo "done $i"; i=$((i+1)); done'
expect_line '^done 40$' 240
kill -INT "$(vmm_pid loop)"
wait_exit loop 30 0
disconnect

last=$(grep -aoE '^done [0-9]+' "$E2E_ARTIFACTS/console.log" | tail -n 1 | cut -d' ' -f2)
note "the guest saw writes 0..$last complete"
[ "${last:-0}" -ge 40 ] || fail "no completed writes recorded"
for ((i = 0; i <= last; i++)); do
    for d in vblk nvme; do
        cmp -s <(pattern "w$i" 4096) <(dd if="$d.img" bs=4096 skip="$i" count=1 status=none) \
            || fail "write $i, which the guest saw complete, is not in $d.img"
    done
done
note "all $((last + 1)) completed writes are in both images"

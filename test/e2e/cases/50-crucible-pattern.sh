# shellcheck shell=bash
# The seed "Run propolis-standalone with crucible disks": dsc creates three encrypted regions and
# starts their downstairs; the guest's NVMe disk is the Crucible volume on them. The guest writes
# a pattern, syncs and powers off; a second run with the generation raised reads it back. The
# region files hold no plaintext, and generation 1 is refused on a third run (its flushes gave
# the extents generation 1; a new upstairs must be above it).
# e2e-timeout: 900
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/disks.sh"

# The sandbox's init leaves the loopback interface down; the downstairs, dsc's control API and
# the upstairs talk over 127.0.0.1.
ip link set lo up 2>/dev/null || busybox ip link set lo up || fail "cannot bring up the loopback interface"

DSC=$E2E_OUT/dsc
DS=$E2E_OUT/crucible-downstairs
KEY=tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=
CONTROL=127.0.0.1:9998
OFFSETS="0 700 2047 3900"   # 4 KiB blocks of a 16 MiB volume; 64 KiB written at each

"$DSC" create --ds-bin "$DS" --cleanup --extent-size 256 --extent-count 16 --block-size 4096 --encrypted \
    --region-dir "$PWD/r0" --region-dir "$PWD/r1" --region-dir "$PWD/r2" --output-dir "$PWD/dsc-out" \
    > "$E2E_ARTIFACTS/dsc-create.log" 2>&1 || fail "dsc create failed (see dsc-create.log)"
spawn dsc "$DSC" start --ds-bin "$DS" --region-dir "$PWD/r0" --region-dir "$PWD/r1" --region-dir "$PWD/r2" \
    --output-dir "$PWD/dsc-out" --control "$CONTROL"
n=0
until [ "$("$DSC" cmd --server "http://$CONTROL" all-running 2>/dev/null)" = true ]; do
    n=$((n + 1)); [ $n -lt 300 ] || fail "the three downstairs are not running after 60 s"
    sleep 0.2
done
note "three downstairs running"

crucible_config() {   # FILE GENERATION
    write_config "$1" 2 512
    disk_toml "$1" cru pci-nvme 0.4.0 'type = "crucible"' 'block_size = 4096' 'blocks_per_extent = 256' \
        'extent_count = 16' 'targets = ["127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8830"]' \
        "generation = $2" 'upstairs_id = "e4396bd0-ede1-48d7-ac14-3d2094dfba5b"' "encryption_key = \"$KEY\""
}

crucible_config gen1.toml 1
start_vmm write gen1.toml
boot_to_shell 300
wait_disks nvme0n1
shell 'cat /sys/block/nvme0n1/size' '^32768$'
for off in $OFFSETS; do
    shell "yes cru-$off | head -c 65536 | dd of=/dev/nvme0n1 iflag=fullblock bs=4096 seek=$off conv=fsync 2>/dev/null; echo w-$off=\$?" "^w-$off=0$" 120
done
shell 'sync; echo synced' '^synced$' 60
send 'poweroff -f'
wait_exit write 120 0
disconnect
grep -q "is active" "$E2E_ARTIFACTS/write.log" || fail "the upstairs never logged its activation"

for r in r0 r1 r2; do
    if grep -rqa "cru-700" "$r"; then fail "plaintext of the pattern found in region $r"; fi
done
note "the regions hold ciphertext only"

crucible_config gen2.toml 2
start_vmm read gen2.toml
boot_to_shell 300
wait_disks nvme0n1
for off in $OFFSETS; do
    shell "[ \"\$(dd if=/dev/nvme0n1 bs=4096 skip=$off count=16 2>/dev/null | md5sum)\" = \"\$(yes cru-$off | head -c 65536 | md5sum)\" ]; echo r-$off=\$?" "^r-$off=[0-9]+$" 120
    [ "$CONSOLE_MATCH" = "r-$off=0" ] || fail "generation 2 read different data at block $off"
done
send 'poweroff -f'
wait_exit read 120 0
disconnect

# Generation 1 again: the extents carry generation 1 (the first run's flushes), so activation is
# refused, with the reason.
start_vmm stale gen1.toml
wait_exit stale 120 1
grep -q "generation 1 is too low" "$E2E_ARTIFACTS/stale.log" || fail "a stale generation was not refused by name"

"$DSC" cmd --server "http://$CONTROL" shutdown >/dev/null 2>&1 || true

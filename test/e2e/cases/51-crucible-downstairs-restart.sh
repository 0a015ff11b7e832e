# shellcheck shell=bash
# A downstairs stopped and started again (dsc cmd stop -c 1, start -c 1) while the guest writes to
# its Crucible NVMe disk: the guest sees no I/O error, and afterwards the three regions hold the
# same data and contexts (crucible-downstairs dump, extent by extent).
# e2e-timeout: 900
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/disks.sh"

# The sandbox's init leaves the loopback interface down; the downstairs, dsc's control API and
# the upstairs talk over 127.0.0.1.
ip link set lo up 2>/dev/null || busybox ip link set lo up || fail "cannot bring up the loopback interface"

DSC=$E2E_OUT/dsc
DS=$E2E_OUT/crucible-downstairs
CONTROL=127.0.0.1:9998
dsc_cmd() { "$DSC" cmd --server "http://$CONTROL" "$@"; }

"$DSC" create --ds-bin "$DS" --cleanup --extent-size 256 --extent-count 16 --block-size 4096 \
    --region-dir "$PWD/r0" --region-dir "$PWD/r1" --region-dir "$PWD/r2" --output-dir "$PWD/dsc-out" \
    > "$E2E_ARTIFACTS/dsc-create.log" 2>&1 || fail "dsc create failed (see dsc-create.log)"
spawn dsc "$DSC" start --ds-bin "$DS" --region-dir "$PWD/r0" --region-dir "$PWD/r1" --region-dir "$PWD/r2" \
    --output-dir "$PWD/dsc-out" --control "$CONTROL"
n=0
until [ "$(dsc_cmd all-running 2>/dev/null)" = true ]; do
    n=$((n + 1)); [ $n -lt 300 ] || fail "the three downstairs are not running after 60 s"
    sleep 0.2
done

write_config cru.toml 2 512
disk_toml cru.toml cru pci-nvme 0.4.0 'type = "crucible"' 'block_size = 4096' 'blocks_per_extent = 256' \
    'extent_count = 16' 'targets = ["127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8830"]' 'generation = 1'
start_vmm vm cru.toml
boot_to_shell 300
wait_disks nvme0n1

# 120 passes of 64 KiB at moving offsets, each synced; the loop reports the first failure.
send 'e=0; for i in $(seq 0 119); do yes loop-$i | head -c 65536 | dd of=/dev/nvme0n1 iflag=fullblock bs=4096 seek=$((i * 31 % 4000)) conv=fsync 2>/dev/null || e=$i; done; echo loop-done-$e'
sleep 3
dsc_cmd stop -c 1 >/dev/null
n=0
until [ "$(dsc_cmd state -c 1)" != Running ]; do n=$((n + 1)); [ $n -lt 100 ] || fail "downstairs 1 did not stop"; sleep 0.2; done
note "downstairs 1: $(dsc_cmd state -c 1)"
sleep 5
dsc_cmd start -c 1 >/dev/null
note "downstairs 1 started again"
expect_line '^loop-done-[0-9]+' 600
[ "$CONSOLE_MATCH" = loop-done-0 ] || fail "the guest saw a write fail ($CONSOLE_MATCH)"
shell 'sync; echo synced' '^synced$' 60
# Let the returning downstairs catch up (replay) before the VM stops.
n=0
until grep -q "\[1\] replayed\|live repair of downstairs 1 .* finished" "$E2E_ARTIFACTS/vm.log"; do
    n=$((n + 1)); [ $n -lt 600 ] || fail "downstairs 1 never caught up (see vm.log)"
    sleep 0.2
done
send 'poweroff -f'
wait_exit vm 120 0
disconnect
dsc_cmd shutdown >/dev/null 2>&1 || true
sleep 2

for e in $(seq 0 15); do
    "$DS" dump -d "$PWD/r0/8810" -d "$PWD/r1/8820" -d "$PWD/r2/8830" -e "$e" -o > "$E2E_ARTIFACTS/dump-$e.txt" 2>&1 \
        || fail "extent $e differs between the regions (see dump-$e.txt)"
done
note "the three regions hold the same blocks"

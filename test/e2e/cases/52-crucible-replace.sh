# shellcheck shell=bash
# The seed "server-send-vcr" on propolis-standalone: dsc creates and starts four encrypted
# downstairs, the VM's NVMe disk is the Crucible volume on the first three, and while the guest
# writes to it `propolis-standalone vcr` sends the VM's --api a replacement (generation raised,
# target 2 -> the fourth downstairs). The upstairs live-repairs the fourth while the writes go
# on; the guest sees no I/O error; afterwards regions 0, 1 and 3 hold the same blocks and
# contexts (crucible-downstairs dump), and a second boot on those three at generation 3 reads
# back what the guest wrote. A request changing two targets is refused with crucible's rule.
# e2e-timeout: 1200
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/disks.sh"

# The sandbox's init leaves the loopback interface down; the downstairs, dsc's control API, the
# upstairs and the management API talk over 127.0.0.1.
ip link set lo up 2>/dev/null || busybox ip link set lo up || fail "cannot bring up the loopback interface"

DSC=$E2E_OUT/dsc
DS=$E2E_OUT/crucible-downstairs
KEY=tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=
ID=0cedae45-3d6e-4d90-b2cb-56f1a1a42a89
CONTROL=127.0.0.1:9998
API=127.0.0.1:55400
REGIONS=(--region-dir "$PWD/r0" --region-dir "$PWD/r1" --region-dir "$PWD/r2" --region-dir "$PWD/r3")
dsc_cmd() { "$DSC" cmd --server "http://$CONTROL" "$@"; }

dsc_start() {   # NAME [--create ...]
    local name=$1; shift
    spawn "$name" "$DSC" start --ds-bin "$DS" "${REGIONS[@]}" --region-count 4 --output-dir "$PWD/dsc-out" --control "$CONTROL" "$@"
    local n=0
    until [ "$(dsc_cmd all-running 2>/dev/null)" = true ]; do
        n=$((n + 1)); [ $n -lt 300 ] || fail "the four downstairs are not running after 60 s"
        sleep 0.2
    done
}

crucible_config() {   # FILE GENERATION TARGET...
    local file=$1 gen=$2; shift 2
    write_config "$file" 2 512
    disk_toml "$file" cru pci-nvme 0.4.0 'type = "crucible"' 'block_size = 4096' 'blocks_per_extent = 256' \
        'extent_count = 16' "targets = [\"$1\", \"$2\", \"$3\"]" "generation = $gen" \
        "upstairs_id = \"$ID\"" "encryption_key = \"$KEY\""
}

# vcr GEN TARGET...: the volume construction request the VM's block_dev stands for, with this
# generation and these targets (the seed's replace.json VCR, geometry of the regions above).
vcr() {
    local gen=$1; shift
    cat <<JSON
{
    "type": "volume",
    "block_size": 4096,
    "id": "$ID",
    "read_only_parent": null,
    "sub_volumes": [
        {
            "type": "region",
            "block_size": 4096,
            "blocks_per_extent": 256,
            "extent_count": 16,
            "gen": $gen,
            "opts": {
                "cert_pem": null,
                "control": null,
                "flush_timeout": null,
                "id": "$ID",
                "key": "$KEY",
                "key_pem": null,
                "lossy": false,
                "read_only": false,
                "root_cert_pem": null,
                "target": ["$1", "$2", "$3"]
            }
        }
    ]
}
JSON
}

# 16 MiB regions (256 blocks of 4 KiB per extent, 16 extents): downstairs 0-3 on 8810-8840.
"$DSC" create --ds-bin "$DS" --cleanup --extent-size 256 --extent-count 16 --block-size 4096 --encrypted \
    "${REGIONS[@]}" --region-count 4 --output-dir "$PWD/dsc-out" \
    > "$E2E_ARTIFACTS/dsc-create.log" 2>&1 || fail "dsc create failed (see dsc-create.log)"
dsc_start dsc
note "four downstairs running"

crucible_config gen1.toml 1 127.0.0.1:8810 127.0.0.1:8820 127.0.0.1:8830
start_vmm vm gen1.toml --api "$API"
boot_to_shell 300
wait_disks nvme0n1
grep -q "management API listening on $API" "$E2E_ARTIFACTS/vm.log" || fail "the VM does not say it serves --api $API"

# The seed's replace.json (the VCR inline), and propolis-server's form (the VCR as a string) for
# the refused request: two targets changed.
{ echo '{ "name": "cru", "vcr":'; vcr 2 127.0.0.1:8810 127.0.0.1:8820 127.0.0.1:8840; echo '}'; } > replace.json
printf '{ "name": "cru", "vcr_json": %s }\n' \
    "$(vcr 2 127.0.0.1:8810 127.0.0.1:8850 127.0.0.1:8840 | tr -d '\n' | sed 's/"/\\"/g; s/^/"/; s/$/"/')" > two-targets.json
cp replace.json two-targets.json "$E2E_ARTIFACTS/"

# 200 passes of 64 KiB at moving offsets (no two overlap), each synced; the loop reports the
# first failure.
send 'e=0; for i in $(seq 0 199); do yes loop-$i | head -c 65536 | dd of=/dev/nvme0n1 iflag=fullblock bs=4096 seek=$((i * 19 % 4000)) conv=fsync 2>/dev/null || e=$i; done; echo loop-done-$e'
sleep 3

if "$E2E_PROPOLIS" vcr --api "$API" -u "$ID" --vcr-replace two-targets.json > two-targets.out 2> two-targets.err; then
    fail "a replacement changing two targets was accepted: $(cat two-targets.out)"
fi
cp two-targets.out two-targets.err "$E2E_ARTIFACTS/"
grep -q "refused the request (HTTP 400): Invalid downstairs replace sub_volume multiple different targets" two-targets.err \
    || fail "the two-target request was not refused with crucible's rule: $(cat two-targets.err)"
note "two targets changed: $(cat two-targets.err)"

"$E2E_PROPOLIS" vcr --api "$API" -u "$ID" --vcr-replace replace.json > replace.out 2> replace.err \
    || fail "the replacement was refused: $(cat replace.err)"
cp replace.out replace.err "$E2E_ARTIFACTS/"
[ "$(cat replace.out)" = started ] || fail "the replacement answered '$(cat replace.out)', not started"
note "replacement of 127.0.0.1:8830 by 127.0.0.1:8840: started"

n=0
until grep -q "live repair of downstairs 2 (127.0.0.1:8840) finished" "$E2E_ARTIFACTS/vm.log"; do
    n=$((n + 1)); [ $n -lt 3000 ] || fail "the live repair onto 127.0.0.1:8840 did not finish (see vm.log)"
    sleep 0.2
done
if grep -q '^loop-done' "$E2E_ARTIFACTS/console.log"; then
    note "live repair finished after the write loop"
else
    note "live repair finished while the write loop was still running"
fi
# The same request again: the VM now answers to the replacement, so there is nothing to change.
if "$E2E_PROPOLIS" vcr --api "$API" -u "$ID" --vcr-replace replace.json > again.out 2> again.err; then
    fail "the same replacement twice was accepted: $(cat again.out)"
fi
grep -q "The VCRs have no difference" again.err || fail "the repeated replacement: $(cat again.err)"

expect_line '^loop-done-[0-9]+' 900
[ "$CONSOLE_MATCH" = loop-done-0 ] || fail "the guest saw a write fail ($CONSOLE_MATCH)"
shell 'sync; echo synced' '^synced$' 60
send 'poweroff -f'
wait_exit vm 120 0
disconnect
dsc_cmd shutdown >/dev/null 2>&1 || true
wait_exit dsc 60 0

for e in $(seq 0 15); do
    "$DS" dump -d "$PWD/r0/8810" -d "$PWD/r1/8820" -d "$PWD/r3/8840" -e "$e" -o > "$E2E_ARTIFACTS/dump-$e.txt" 2>&1 \
        || fail "extent $e differs between regions 0, 1 and 3 (see dump-$e.txt)"
done
note "regions 0, 1 and 3 hold the same blocks"
# The replaced downstairs stopped getting writes when it left (informative: which extents).
stale=""
for e in $(seq 0 15); do
    "$DS" dump -d "$PWD/r0/8810" -d "$PWD/r2/8830" -e "$e" -o > /dev/null 2>&1 || stale+=" $e"
done
note "region 2 (replaced) differs from region 0 in extents:${stale:- none}"

# A second boot on the three that now make the volume, at generation 3, reads the pattern back.
dsc_start dsc2
crucible_config gen3.toml 3 127.0.0.1:8810 127.0.0.1:8820 127.0.0.1:8840
start_vmm read gen3.toml
boot_to_shell 300
wait_disks nvme0n1
for i in 0 57 123 199; do
    off=$((i * 19 % 4000))
    shell "[ \"\$(dd if=/dev/nvme0n1 bs=4096 skip=$off count=16 2>/dev/null | md5sum)\" = \"\$(yes loop-$i | head -c 65536 | md5sum)\" ]; echo r-$i=\$?" "^r-$i=[0-9]+$" 120
    [ "$CONSOLE_MATCH" = "r-$i=0" ] || fail "generation 3 read different data for pass $i (block $off)"
done
send 'poweroff -f'
wait_exit read 120 0
disconnect
dsc_cmd shutdown >/dev/null 2>&1 || true
wait_exit dsc2 60 0

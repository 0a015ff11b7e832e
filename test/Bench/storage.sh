#!/usr/bin/env bash
# storage.sh: storage benchmark. fio in the demo guest (demo-guest.sh --with fio) runs the same
# jobs on an NVMe and a virtio-block disk, with propolis-standalone (pci-nvme, pci-virtio-block)
# and with qemu-system-x86_64 -accel kvm (nvme, virtio-blk-pci), all over the same raw image
# file in the same run, and prints IOPS and MiB/s for each and the ratio ours/qemu:
#   4 KiB random read, 4 KiB random write, 1 MiB sequential read, 1 MiB sequential write,
#   each at queue depth 1 and 32 (fio: direct=1, ioengine=libaio, time_based, one job).
# Every (VMM, device) pair boots its own guest (direct kernel boot: out/guest/vmlinuz and
# initramfs+fio.img, 512 MiB, 2 vCPUs) with that one disk and runs the eight jobs in order over
# its console; fio's terse output is reduced in the guest to one "@@FIO job rc= ..." line per job.
# QEMU's drive: format=raw, cache=none, aio=threads where the image's file system takes O_DIRECT
# (tmpfs does not: inside the sandbox the image is on tmpfs, where cache=writeback is used and
# the output says so; STORAGE_BENCH_QEMU_CACHE overrides). Ours: block_dev type "file".
# Where our VMM cannot run a device (yet), its columns read "n/a" and the reason is printed.
#
#   test/Bench/storage.sh [--runtime SECONDS] [--size MIB]   (10 s per job, a 512 MiB image)
#   ./build.sh bench storage [...]                           (publishes out/propolis-standalone first)
#
# Everything runs in one test/e2e/kvm-sandbox.sh invocation (directly where /dev/kvm is usable,
# else under nested KVM in a QEMU TCG sandbox: absolute figures are then dominated by the
# emulation; read the ratio). A run of the defaults takes 10 to 15 minutes in the sandbox.
# STORAGE_BENCH_BOOT_TIMEOUT (seconds, default 300) bounds one guest boot.
# STORAGE_BENCH_TARGETS (an extended regular expression) runs only the rows whose
# "vmm device backend" matches it: 'nvme' for the NVMe rows (QEMU's among them), 'crucible' for
# the Crucible rows alone (NVMe and virtio-block; their QEMU columns then read n/a).
#
# More rows: TARGETS below lists "vmm device backend" triples; a backend of ours other than
# "file" is one more case in ours_backend_up / ours_block_dev / ours_backend_down, and its rows
# are compared with QEMU on the same device over the file. "crucible": three downstairs from
# out/dsc (encrypted regions of 4 KiB blocks, 16 MiB extents, the image's size rounded up to an
# extent, beside the image), written through once by the guest before the jobs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF="$ROOT/test/Bench/storage.sh"
GUEST_MIB=512 GUEST_CPUS=2
CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
BOOT_TIMEOUT=${STORAGE_BENCH_BOOT_TIMEOUT:-300}

die() { printf 'storage.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

runtime=10 size_mib=512 inner=0 where=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runtime) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--runtime needs seconds"; runtime=$2; shift 2 ;;
        --size) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] && [ "$2" -ge 64 ] || die "--size needs MiB (at least 64)"; size_mib=$2; shift 2 ;;
        --inner) inner=1; where=${2:?}; shift 2 ;;   # internal: the measuring half, where KVM works
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

PROPOLIS="$ROOT/out/propolis-standalone"
KERNEL="$ROOT/out/guest/vmlinuz"
INITRD="$ROOT/out/guest/initramfs+fio.img"

# The rows, in the order they run: VMM (ours|qemu), device (nvme|virtio), backend (ours only).
TARGETS=(
    "qemu nvme file"
    "ours nvme file"
    "qemu virtio file"
    "ours virtio file"
    "ours nvme crucible"
    "ours virtio crucible"
)
if [ -n "${STORAGE_BENCH_TARGETS:-}" ]; then
    selected=()
    for t in "${TARGETS[@]}"; do
        if [[ $t =~ $STORAGE_BENCH_TARGETS ]]; then selected+=("$t"); fi
    done
    [ ${#selected[@]} -gt 0 ] || die "STORAGE_BENCH_TARGETS='$STORAGE_BENCH_TARGETS' matches none of: $(printf '"%s" ' "${TARGETS[@]}")"
    TARGETS=("${selected[@]}")
fi

# The jobs: name, fio rw, block size, iodepth.
JOBS=(
    "randread-4k-qd1   randread  4k 1"
    "randread-4k-qd32  randread  4k 32"
    "randwrite-4k-qd1  randwrite 4k 1"
    "randwrite-4k-qd32 randwrite 4k 32"
    "read-1m-qd1       read      1m 1"
    "read-1m-qd32      read      1m 32"
    "write-1m-qd1      write     1m 1"
    "write-1m-qd32     write     1m 32"
)

# ---------------------------------------------------------------------------------------------
# The outer half: prepare, then run the inner half where /dev/kvm works.
if [ $inner -eq 0 ]; then
    [ -x "$PROPOLIS" ] || echo "storage.sh: no $PROPOLIS (./build.sh bench storage publishes it); our columns will read n/a" >&2
    # shellcheck source=../e2e/lib/common.sh
    . "$ROOT/test/e2e/lib/common.sh"
    e2e_apt_need qemu-system-x86 socat
    "$ROOT/test/e2e/demo-guest.sh" --with fio >&2
    if [ "${KVM_SANDBOX:-auto}" != force ] && [ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null; then
        where=host
    else
        where=sandbox
    fi
    per_target=$(( BOOT_TIMEOUT + ${#JOBS[@]} * (runtime + 60) + 60 ))
    exec "$ROOT/test/e2e/kvm-sandbox.sh" --timeout $(( ${#TARGETS[@]} * per_target + 120 )) \
        --env STORAGE_BENCH_QEMU_CACHE --env STORAGE_BENCH_TARGETS -- "$SELF" --runtime "$runtime" --size "$size_mib" --inner "$where"
fi

# ---------------------------------------------------------------------------------------------
# The inner half: measure.
[ -w /dev/kvm ] || die "no usable /dev/kvm here"
work=$(mktemp -d "${TMPDIR:-/tmp}/storage-bench.XXXXXX")
CONSOLE_LOG=$work/console.log
# shellcheck source=../e2e/lib/console.sh
. "$ROOT/test/e2e/lib/console.sh"
vmm_pid="" dsc_pid=""
cleanup() {
    disconnect
    [ -n "$vmm_pid" ] && kill -KILL "$vmm_pid" 2>/dev/null || true
    [ -n "$dsc_pid" ] && ours_backend_down crucible
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# The disk: written through once (a file of holes would make reads free on the host).
image=$work/disk.raw
dd if=/dev/zero of="$image" bs=1M count="$size_mib" status=none
if [ -n "${STORAGE_BENCH_QEMU_CACHE:-}" ]; then
    qemu_cache=$STORAGE_BENCH_QEMU_CACHE
    cache_text="QEMU cache=$qemu_cache (STORAGE_BENCH_QEMU_CACHE)"
elif dd if="$image" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null; then
    qemu_cache=none
    cache_text="QEMU cache=none"
else
    qemu_cache=writeback
    cache_text="QEMU cache=writeback: $(stat -f -c %T "$image") takes no O_DIRECT"
fi

# The hook for more backends of ours (crucible: issue 8), three functions with one case each:
#   ours_backend_up BACKEND     start what the backend needs outside the VMM (crucible: three
#                               downstairs from dsc with a region of $size_mib MiB), before boot
#   ours_block_dev BACKEND NAME the [block_dev.NAME] section of our VMM for it
#   ours_backend_down BACKEND   stop it again, after the guest is gone
# plus its rows in TARGETS ("ours nvme crucible", "ours virtio crucible").
DSC="$ROOT/out/dsc" DOWNSTAIRS="$ROOT/out/crucible-downstairs"
CRUCIBLE_KEY=tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=
CRUCIBLE_CONTROL=127.0.0.1:9998
CRUCIBLE_BLOCK=4096 CRUCIBLE_EXTENT_BLOCKS=4096           # 16 MiB extents
CRUCIBLE_EXTENTS=$(( (size_mib + 15) / 16 ))
ours_backend_up() {
    case "$1" in
        file) ;;                      # the image file is all it needs
        crucible)
            [ -x "$DSC" ] && [ -x "$DOWNSTAIRS" ] || { echo "no $DSC or $DOWNSTAIRS (./build.sh publishes them)" >&2; return 1; }
            # The sandbox's init leaves the loopback interface down; dsc and the downstairs use it.
            ip link set lo up 2>/dev/null || busybox ip link set lo up 2>/dev/null || true
            rm -rf "$work/crucible"
            local dirs=(--region-dir "$work/crucible/r0" --region-dir "$work/crucible/r1" --region-dir "$work/crucible/r2")
            "$DSC" create --ds-bin "$DOWNSTAIRS" --cleanup --block-size $CRUCIBLE_BLOCK \
                --extent-size $CRUCIBLE_EXTENT_BLOCKS --extent-count $CRUCIBLE_EXTENTS --encrypted \
                "${dirs[@]}" --output-dir "$work/crucible/out" > dsc-create.log 2>&1 \
                || { echo "dsc create failed: $(tail -n 1 dsc-create.log)" >&2; return 1; }
            "$DSC" start --ds-bin "$DOWNSTAIRS" "${dirs[@]}" --output-dir "$work/crucible/out" \
                --control "$CRUCIBLE_CONTROL" > dsc.log 2>&1 &
            dsc_pid=$!
            local n=0
            until [ "$("$DSC" cmd --server "http://$CRUCIBLE_CONTROL" all-running 2>/dev/null)" = true ]; do
                n=$((n + 1))
                if [ $n -ge 300 ] || ! kill -0 $dsc_pid 2>/dev/null; then
                    echo "the three downstairs are not running after $((n / 5)) s: $(tail -n 1 dsc.log)" >&2
                    return 1
                fi
                sleep 0.2
            done
            ;;
        *) echo "storage.sh: no setup for backend '$1'" >&2; return 1 ;;
    esac
}
ours_backend_down() {
    case "$1" in
        file) ;;
        crucible)
            [ -n "$dsc_pid" ] || return 0
            "$DSC" cmd --server "http://$CRUCIBLE_CONTROL" shutdown > /dev/null 2>&1 || true
            for _ in $(seq 1 50); do kill -0 "$dsc_pid" 2>/dev/null || break; sleep 0.2; done
            kill -TERM "$dsc_pid" 2>/dev/null || true
            wait "$dsc_pid" 2>/dev/null || true
            dsc_pid=""
            rm -rf "$work/crucible"
            ;;
        *) ;;
    esac
}

# ours_backend_fill BACKEND: true when the guest writes the whole disk once before the jobs (a
# region of never-written blocks would make reads free; the file is written through above).
ours_backend_fill() {
    [ "$1" = crucible ]
}

# ours_block_dev BACKEND NAME: see above; the file backend is $image.
ours_block_dev() {
    case "$1" in
        file)
            printf '[block_dev.%s]\ntype = "file"\npath = "%s"\n' "$2" "$image"
            ;;
        crucible)
            printf '[block_dev.%s]\ntype = "crucible"\nblock_size = %d\nblocks_per_extent = %d\nextent_count = %d\n' \
                "$2" $CRUCIBLE_BLOCK $CRUCIBLE_EXTENT_BLOCKS $CRUCIBLE_EXTENTS
            printf 'targets = ["127.0.0.1:8810", "127.0.0.1:8820", "127.0.0.1:8830"]\ngeneration = 1\n'
            printf 'upstairs_id = "%s"\nencryption_key = "%s"\n' "$(cat /proc/sys/kernel/random/uuid)" "$CRUCIBLE_KEY"
            ;;
        *)
            echo "storage.sh: no block_dev recipe for backend '$1'" >&2
            return 1
            ;;
    esac
}

# start_vmm VMM DEVICE BACKEND: start the VMM with the disk, its console at ./ttya.
start_vmm() {
    local vmm=$1 dev=$2 backend=$3
    rm -f ttya
    case "$vmm" in
        ours)
            local driver
            case "$dev" in nvme) driver=pci-nvme ;; virtio) driver=pci-virtio-block ;; esac
            ours_block_dev "$backend" disk0 > block_dev.toml || return 1
            {
                printf '[main]\nname = "storage-bench"\ncpus = %d\nmemory = %d\n' $GUEST_CPUS $GUEST_MIB
                printf 'kernel = "%s"\ninitrd = "%s"\ncmdline = "%s"\n\n' "$KERNEL" "$INITRD" "$CMDLINE"
                cat block_dev.toml
                printf '\n[dev.disk]\ndriver = "%s"\nblock_dev = "disk0"\npci-path = "0.4.0"\n' "$driver"
            } > vm.toml
            env --default-signal=INT,TERM "$PROPOLIS" vm.toml --console ttya > vmm.log 2>&1 &
            ;;
        qemu)
            local device
            case "$dev" in
                nvme) device="nvme,drive=d0,serial=disk0,addr=4" ;;
                virtio) device="virtio-blk-pci,drive=d0,addr=4" ;;
            esac
            qemu-system-x86_64 -accel kvm -cpu host -m $GUEST_MIB -smp $GUEST_CPUS \
                -nodefaults -no-user-config -display none -no-reboot -net none \
                -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE" \
                -drive "file=$image,if=none,id=d0,format=raw,cache=$qemu_cache,aio=threads" \
                -device "$device" \
                -chardev socket,id=con,path=ttya,server=on,wait=on -serial chardev:con \
                > vmm.log 2>&1 < /dev/null &
            ;;
    esac
    vmm_pid=$!
}

stop_vmm() {
    if [ -n "$vmm_pid" ] && kill -0 "$vmm_pid" 2>/dev/null; then
        send 'poweroff -f' 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$vmm_pid" 2>/dev/null || break; sleep 0.2; done
        kill -TERM "$vmm_pid" 2>/dev/null || true
        sleep 1
        kill -KILL "$vmm_pid" 2>/dev/null || true
    fi
    [ -n "$vmm_pid" ] && { wait "$vmm_pid" 2>/dev/null || true; }
    vmm_pid=""
    disconnect
}

# why_failed: one line saying why the VMM did not get to the guest's shell.
why_failed() {
    local line
    if ! kill -0 "$vmm_pid" 2>/dev/null; then
        # A refusal names the device ("... does not support this device yet"); else the first
        # error line, else the last line.
        line=$(grep -m1 -E 'does not support|cannot|[Ee]rror' vmm.log || grep -v '^[[:space:]]*$' vmm.log | tail -n 1 || true)
        line=${line#propolis-standalone: storage-bench: }
        echo "the VMM exited: $(printf '%s' "${line:-no output}" | cut -c1-160)"
    else
        echo "no guest shell after ${BOOT_TIMEOUT}s"
    fi
}

# run_target VMM DEVICE BACKEND: boot, run every job, append "vmm dev backend job iops kib/s"
# (or "vmm dev backend job n/a reason") to results.
run_target() {
    local vmm=$1 dev=$2 backend=$3 disk t0 t_shell=0 name rw bs qd reason="" line
    case "$dev" in nvme) disk=/dev/nvme0n1 ;; virtio) disk=/dev/vda ;; esac
    printf '  %-4s %-6s %-8s booting\n' "$vmm" "$dev" "$backend" >&2
    t0=$SECONDS
    if [ "$vmm" = ours ] && [ ! -x "$PROPOLIS" ]; then
        reason="no $PROPOLIS"
    elif [ "$vmm" = ours ] && ! ours_backend_up "$backend" 2>vmm.err; then
        reason="backend $backend: $(tail -n 1 vmm.err)"
    elif ! start_vmm "$vmm" "$dev" "$backend" 2>vmm.err; then
        reason=$(tail -n 1 vmm.err)
    elif ! { connect ttya 60 && expect_line 'propolis demo guest' "$BOOT_TIMEOUT" && expect_text '~ # ' 60; } >/dev/null 2>&1; then
        reason=$(why_failed)
    else
        send 'stty cols 1000'      # one console line per command, however long
        expect_text '~ # ' 30 >/dev/null
        send "test -b $disk && command -v fio > /dev/null && echo @@READY || echo @@NOT-READY"
        if ! expect_line '^@@(READY|NOT-READY)$' 60 >/dev/null || [ "$CONSOLE_MATCH" != @@READY ]; then
            reason="the guest has no $disk or no fio"
        fi
        expect_text '~ # ' 30 >/dev/null || true
        t_shell=$((SECONDS - t0))
        if [ -z "$reason" ] && [ "$vmm" = ours ] && ours_backend_fill "$backend"; then
            local f0=$SECONDS
            send "dd if=/dev/zero of=$disk bs=1M conv=fsync 2>/dev/null; echo @@FILLED"
            if expect_line '^@@FILLED$' 600 >/dev/null; then
                printf '  %-4s %-6s %-8s written through once in %ss\n' "$vmm" "$dev" "$backend" $((SECONDS - f0)) >&2
            else
                reason="the guest could not write $disk through once"
            fi
            expect_text '~ # ' 30 >/dev/null || true
        fi
    fi
    if [ -n "$reason" ]; then
        printf '  %-4s %-6s %-8s n/a: %s\n' "$vmm" "$dev" "$backend" "$reason" >&2
        for j in "${JOBS[@]}"; do
            read -r name _ <<< "$j"
            printf '%s %s %s %s n/a %s\n' "$vmm" "$dev" "$backend" "$name" "$reason" >> results
        done
        stop_vmm
        [ "$vmm" = ours ] && ours_backend_down "$backend"
        return 0
    fi
    printf '  %-4s %-6s %-8s shell after %ss\n' "$vmm" "$dev" "$backend" "$t_shell" >&2
    for j in "${JOBS[@]}"; do
        read -r name rw bs qd <<< "$j"
        # Terse v3: field 7/8 read KiB/s and IOPS, 48/49 the same for writes.
        send "fio --output-format=terse --terse-version=3 --name=$name --filename=$disk --direct=1 --ioengine=libaio --rw=$rw --bs=$bs --iodepth=$qd --numjobs=1 --time_based --runtime=$runtime --norandommap --randrepeat=0 > /tmp/fio.out 2>&1; echo \"@@FIO $name rc=\$? \$(awk -F';' '/^3;/ { print \$7, \$8, \$48, \$49 }' /tmp/fio.out) \$(grep -v '^3;' /tmp/fio.out | tail -n 1)\""
        if expect_line "^@@FIO $name rc=[0-9]+" $((runtime + 120)) >/dev/null; then
            line=$CONSOLE_MATCH
            local rc kr ir kw iw rest
            read -r _ _ rc kr ir kw iw rest <<< "$line"
            if [ "$rc" = rc=0 ] && [[ $iw =~ ^[0-9]+$ ]]; then
                case "$rw" in
                    *read) printf '%s %s %s %s %s %s\n' "$vmm" "$dev" "$backend" "$name" "$ir" "$kr" >> results ;;
                    *) printf '%s %s %s %s %s %s\n' "$vmm" "$dev" "$backend" "$name" "$iw" "$kw" >> results ;;
                esac
            else
                # No terse line: what fio said last is in the line instead of the figures.
                printf '%s %s %s %s n/a fio failed (%s): %s\n' "$vmm" "$dev" "$backend" "$name" "$rc" \
                    "$(read -r _ _ _ rest <<< "$line"; printf '%s' "$rest" | cut -c1-120)" >> results
            fi
            expect_text '~ # ' 30 >/dev/null || true
        else
            printf '%s %s %s %s n/a no fio result within %ss\n' "$vmm" "$dev" "$backend" "$name" $((runtime + 120)) >> results
        fi
        printf '    %s\n' "$(tail -n 1 results | cut -d' ' -f4-)" >&2
    done
    stop_vmm
    [ "$vmm" = ours ] && ours_backend_down "$backend"
    return 0
}

case "$where" in
    host) where_text="host KVM" ;;
    *) where_text="nested KVM in the TCG sandbox: absolute figures are dominated by the emulation; read the ratio" ;;
esac
: > results
echo "storage.sh: ${#JOBS[@]} jobs of ${runtime}s on ${#TARGETS[@]} disks, a ${size_mib} MiB raw image on $(stat -f -c %T "$image"), $cache_text ($where_text)" >&2
for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    run_target $t
done

# The table: one row per device/backend of ours and job, beside QEMU on the same device.
printf '\nstorage benchmark: fio in the demo guest (%d vCPUs, %d MiB), %s s per job, direct=1 libaio, %d MiB raw image, %s (%s)\n' \
    $GUEST_CPUS $GUEST_MIB "$runtime" "$size_mib" "$cache_text" "$where_text"
awk '
{
    key = $2 " " $4
    if ($1 == "qemu") { qi[key] = $5; qk[key] = $6; if ($5 == "n/a") { qk[key] = "n/a"; qwhy[key] = substr($0, index($0, "n/a ") + 4) } }
    else {
        row = $2 "/" $3 " " $4
        if (!(row in seen)) { seen[row] = 1; order[++n] = row; rkey[row] = key }
        oi[row] = $5; ok[row] = $6; if ($5 == "n/a") { ok[row] = "n/a"; owhy[row] = substr($0, index($0, "n/a ") + 4) }
    }
}
function iops(v) { return v == "n/a" || v == "" ? "n/a" : sprintf("%d", v) }
function mibs(v) { return v == "n/a" || v == "" ? "n/a" : sprintf(v < 10240 ? "%.2f" : "%.1f", v / 1024) }
END {
    fmt = "%-16s %-18s %10s %11s %10s %11s %9s\n"
    printf fmt, "device/backend", "job", "ours IOPS", "ours MiB/s", "qemu IOPS", "qemu MiB/s", "ours/qemu"
    for (i = 1; i <= n; i++) {
        r = order[i]; k = rkey[r]; split(r, p, " ")
        ratio = (oi[r] == "n/a" || qi[k] == "n/a" || qi[k] == "" || qi[k] + 0 == 0) ? "n/a" : sprintf("%.2f", oi[r] / qi[k])
        printf fmt, p[1], p[2], iops(oi[r]), mibs(ok[r]), iops(qi[k]), mibs(qk[k]), ratio
    }
    for (r in owhy) why[owhy[r]] = why[owhy[r]] ? why[owhy[r]] : r
    for (w in why) printf "n/a (ours): %s\n", w
    for (k in qwhy) printf "n/a (qemu %s): %s\n", k, qwhy[k]
}' results
# QEMU is the reference: the benchmark fails when its side does not run.
if grep -q '^qemu .* n/a ' results; then
    echo "storage.sh: QEMU could not run some jobs; see above" >&2
    exit 1
fi

#!/usr/bin/env bash
# boot.sh: boot benchmark. Boots the demo guest (out/guest/vmlinuz + initramfs.img, the command
# line of examples/standalone.toml, 512 MiB, 2 vCPUs) with out/propolis-standalone and with
# qemu-system-x86_64 -accel kvm, alternating, N times each, first by direct kernel boot, then
# through Debian's OVMF (/usr/share/ovmf/OVMF.fd: `bootrom` for ours, `-bios` for QEMU, the kernel
# handed to the firmware through fw_cfg in both), and prints a table of:
#   - the time from process start to the guest's first userspace line (the banner
#     "propolis demo guest" printed by the demo guest's init), median and min..max;
#   - the VMM process's VmRSS when the banner arrives and its VmHWM (peak RSS) just before the
#     guest is powered off, beside the guest's RAM.
# Both VMMs hold the guest until a console client connects (propolis-standalone by design, QEMU
# with -chardev socket,server=on,wait=on); the client is started with the process and retries
# until the socket exists, so the figure counts from process start either way.
#
#   test/Bench/boot.sh [--runs N]      (N defaults to 3)
#   ./build.sh bench boot [--runs N]   (publishes out/propolis-standalone first)
#
# Everything runs in one test/e2e/kvm-sandbox.sh invocation: directly where /dev/kvm is usable,
# else under nested KVM in a QEMU TCG sandbox, where the absolute figures are dominated by the
# emulation and the ratio ours/qemu is the figure to read. Needs socat and qemu-system-x86.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF="$ROOT/test/Bench/boot.sh"
GUEST_MIB=512 GUEST_CPUS=2
CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"     # as in examples/standalone.toml
BANNER="propolis demo guest"
BOOT_TIMEOUT=${BOOT_BENCH_TIMEOUT:-120}             # seconds allowed for one boot to the banner
OVMF=/usr/share/ovmf/OVMF.fd
OVMF_TIMEOUT=${BOOT_BENCH_OVMF_TIMEOUT:-$((BOOT_TIMEOUT * 4))}   # the same through the firmware

die() { printf 'boot.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

runs=3 inner=0 where=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive count"; runs=$2; shift 2 ;;
        --inner) inner=1; where=${2:?}; shift 2 ;;   # internal: the measuring half, where KVM works
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

PROPOLIS="$ROOT/out/propolis-standalone"
KERNEL="$ROOT/out/guest/vmlinuz"
INITRD="$ROOT/out/guest/initramfs.img"

# ---------------------------------------------------------------------------------------------
# The outer half: prepare, then run the inner half where /dev/kvm works.
if [ $inner -eq 0 ]; then
    [ -x "$PROPOLIS" ] || die "no $PROPOLIS (run ./build.sh build, or ./build.sh bench boot)"
    command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
    command -v socat >/dev/null || die "no socat (apt-get install socat)"
    [ -r "$OVMF" ] || die "no $OVMF (apt-get install ovmf)"
    "$ROOT/test/e2e/demo-guest.sh" >&2
    if [ "${KVM_SANDBOX:-auto}" != force ] && [ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null; then
        where=host
    else
        where=sandbox
    fi
    exec "$ROOT/test/e2e/kvm-sandbox.sh" --timeout $(( runs * 2 * (BOOT_TIMEOUT + OVMF_TIMEOUT + 180) + 60 )) \
        -- "$SELF" --runs "$runs" --inner "$where"
fi

# ---------------------------------------------------------------------------------------------
# The inner half: measure.
[ -w /dev/kvm ] || die "no usable /dev/kvm here"
work=$(mktemp -d "${TMPDIR:-/tmp}/boot-bench.XXXXXX")
vmm_pid="" client_pid=""
cleanup() {
    [ -n "$vmm_pid" ] && kill -KILL "$vmm_pid" 2>/dev/null || true
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

cat > vm.toml <<EOF
[main]
name = "boot-bench"
cpus = $GUEST_CPUS
memory = $GUEST_MIB
kernel = "$KERNEL"
initrd = "$INITRD"
cmdline = "$CMDLINE"
EOF

sed -e '/^kernel = /i bootrom = "'"$OVMF"'"' vm.toml > vm-ovmf.toml

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# Reads console lines; at the banner, records the time and the VMM's VmRSS (at once, in the
# reader, so that the sample is as close to the banner as the console allows).
console_reader() {
    local pid=$1 line
    while IFS= read -r line; do
        line=${line%$'\r'}
        printf '%s\n' "$line" >> console.log
        if [[ $line == *"$BANNER"* ]] && [ ! -e banner ]; then
            local t=$EPOCHREALTIME
            echo "$t $(status_kib "$pid" VmRSS)" > banner.tmp && mv banner.tmp banner
        fi
    done
}

# One boot: VMM (ours|qemu), run number. Appends "vmm seconds rss_kib hwm_kib" to results.
boot_once() {
    local vmm=$1 n=$2 t0 deadline timeout=$BOOT_TIMEOUT
    [[ $vmm == *-ovmf ]] && timeout=$OVMF_TIMEOUT
    rm -f ttya banner console.log in
    mkfifo in
    exec {keep}<>in                 # holds the fifo open: the client's stdin stays open
    : > console.log
    t0=$EPOCHREALTIME
    case "$vmm" in
        ours|ours-ovmf)
            local config=vm.toml; [ "$vmm" = ours-ovmf ] && config=vm-ovmf.toml
            env --default-signal=INT,TERM "$PROPOLIS" "$config" --console ttya > vmm.log 2>&1 &
            ;;
        qemu|qemu-ovmf)
            local bios=(); [ "$vmm" = qemu-ovmf ] && bios=(-bios "$OVMF")
            qemu-system-x86_64 -accel kvm -cpu host -m $GUEST_MIB -smp $GUEST_CPUS \
                -nodefaults -no-user-config -nographic -no-reboot "${bios[@]}" \
                -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE" \
                -chardev socket,id=con,path=ttya,server=on,wait=on -serial chardev:con \
                > vmm.log 2>&1 < /dev/null &
            ;;
    esac
    vmm_pid=$!
    # The client: started now, retrying every 10 ms until the socket exists and accepts.
    { socat -b 65536 - "UNIX-CONNECT:ttya,retry=$((timeout * 100)),interval=0.01" < in 2>/dev/null \
        | console_reader "$vmm_pid"; } &
    client_pid=$!

    local failure=""
    deadline=$((SECONDS + timeout))
    until [ -e banner ]; do
        if ! kill -0 "$vmm_pid" 2>/dev/null; then failure="the VMM exited before the banner"; break; fi
        if [ $SECONDS -ge $deadline ]; then failure="no banner after ${timeout}s"; break; fi
        sleep 0.05
    done
    if [ -n "$failure" ]; then
        # A failed boot is reported and left out of the figures; the next run goes on.
        printf '  %-5s run %d: FAILED: %s; the last lines of its log and console:\n' "$vmm" "$n" "$failure" >&2
        tail -n 8 vmm.log console.log 2>/dev/null | sed 's/^/    /' | cut -c1-300 >&2
        kill -KILL "$vmm_pid" 2>/dev/null || true
        wait "$vmm_pid" 2>/dev/null || true
        vmm_pid=""
        exec {keep}>&-
        kill "$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
        client_pid=""
        echo "$vmm failed" >> results
        return 0
    fi
    local t1 rss hwm
    read -r t1 rss < banner
    hwm=$(status_kib "$vmm_pid" VmHWM)

    # Power off: `poweroff -f` (repeated, in case the shell was not reading yet), then signals.
    deadline=$((SECONDS + 60))
    while kill -0 "$vmm_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
        local h; h=$(status_kib "$vmm_pid" VmHWM); [ -n "$h" ] && hwm=$h
        printf 'poweroff -f\r' >&"$keep" 2>/dev/null || true
        local i; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$vmm_pid" 2>/dev/null || break; sleep 0.2; done
    done
    if kill -0 "$vmm_pid" 2>/dev/null; then
        echo "boot.sh: $vmm run $n: still running 60s after poweroff -f; killing it" >&2
        kill -TERM "$vmm_pid" 2>/dev/null || true; sleep 2; kill -KILL "$vmm_pid" 2>/dev/null || true
    fi
    wait "$vmm_pid" 2>/dev/null || true
    vmm_pid=""
    exec {keep}>&-
    kill "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
    client_pid=""
    local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    printf '%s %s %s %s\n' "$vmm" "$secs" "$rss" "$hwm" >> results
    printf '  %-5s run %d: banner after %6ss, VmRSS %s KiB, VmHWM %s KiB\n' "$vmm" "$n" "$secs" "$rss" "$hwm" >&2
}

case "$where" in
    host) where_text="host KVM" ;;
    *) where_text="nested KVM in the TCG sandbox: absolute figures are dominated by the emulation; read the ratio" ;;
esac
: > results
echo "boot.sh: $runs runs each, alternating ($where_text)" >&2
for n in $(seq 1 "$runs"); do
    boot_once ours "$n"
    boot_once qemu "$n"
done
# Under the TCG sandbox, OVMF as a nested guest aborts the system's QEMU 7.2 (an assertion in
# tcg_handle_interrupt), whichever VMM runs it; the sandbox's own patched QEMU (sandbox-qemu.sh)
# does not, and says so on the sandbox kernel's command line. Without it the firmware rows are
# left out (BOOT_BENCH_OVMF_NESTED=1 tries anyway).
ovmf_rows=1
if [ "$where" != host ] && ! grep -qw 'sandbox.qemu=patched' /proc/cmdline \
    && [ "${BOOT_BENCH_OVMF_NESTED:-0}" != 1 ]; then ovmf_rows=0; fi
if [ $ovmf_rows -eq 1 ]; then
    for n in $(seq 1 "$runs"); do
        boot_once ours-ovmf "$n"
        boot_once qemu-ovmf "$n"
    done
fi

# Median (mean of the middle two for an even count), min and max of column C over a VMM's
# successful runs; "- - -" when it has none.
stats() { # vmm column -> "median min max"
    awk -v v="$1" -v c="$2" '$1 == v && $2 != "failed" { print $c }' results | sort -g \
        | awk '{ a[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
                                    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'
}
failed() { awk -v v="$1" '$1 == v && $2 == "failed"' results | wc -l; }
printf 'boot benchmark: demo guest, %d vCPUs, %d MiB, %d runs each (%s)\n' "$GUEST_CPUS" "$GUEST_MIB" "$runs" "$where_text"
printf '%-30s %-42s %-21s %-11s %s\n' vmm 'first-userspace-line s (median, min..max)' 'VmRSS MiB at banner' 'VmHWM MiB' 'guest RAM MiB'
rows() { # ours-kind qemu-kind label
    local o_t o_tmin o_tmax q_t q_tmin q_tmax o_r q_r o_h q_h
    read -r o_t o_tmin o_tmax < <(stats "$1" 2)
    read -r q_t q_tmin q_tmax < <(stats "$2" 2)
    read -r o_r _ _ < <(stats "$1" 3); read -r q_r _ _ < <(stats "$2" 3)
    read -r o_h _ _ < <(stats "$1" 4); read -r q_h _ _ < <(stats "$2" 4)
    awk -v g="$GUEST_MIB" -v runs="$runs" -v of="$(failed "$1")" -v qf="$(failed "$2")" -v label="$3" \
        -v ot="$o_t" -v otn="$o_tmin" -v otx="$o_tmax" -v or="$o_r" -v oh="$o_h" \
        -v qt="$q_t" -v qtn="$q_tmin" -v qtx="$q_tmax" -v qr="$q_r" -v qh="$q_h" '
    function secs(m, lo, hi, f) {
        if (m == "-") return sprintf("no successful run (%d failed)", f)
        return sprintf("%.2f (%.2f..%.2f)", m, lo, hi) (f ? sprintf(", %d of %d failed", f, runs) : "")
    }
    function mib(k) { return k == "-" ? "-" : sprintf("%.1f", k / 1024) }
    function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }
    BEGIN {
        fmt = "%-30s %-42s %-21s %-11s %s\n"
        printf fmt, "propolis-standalone" label, secs(ot, otn, otx, of), mib(or), mib(oh), g
        printf fmt, "qemu-system-x86_64" label, secs(qt, qtn, qtx, qf), mib(qr), mib(qh), g
        printf fmt, "ratio (ours/qemu)" label, ratio(ot, qt), ratio(or, qr), ratio(oh, qh), "1.00"
    }'
}
rows ours qemu ""
if [ $ovmf_rows -eq 1 ]; then
    rows ours-ovmf qemu-ovmf " + OVMF"
else
    echo "(+ OVMF rows: not measured: this sandbox runs the system's QEMU 7.2, which aborts on a nested OVMF; test/e2e/sandbox-qemu.sh builds the patched one)"
fi
echo "(RSS and HWM are medians over the successful runs; HWM is the peak up to the poweroff that ends each run)"
n_failed=$(( $(failed ours) + $(failed qemu) + $(failed ours-ovmf) + $(failed qemu-ovmf) ))
[ "$n_failed" -eq 0 ] || { echo "boot.sh: $n_failed boot(s) failed; see above" >&2; exit 1; }

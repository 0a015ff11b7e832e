#!/usr/bin/env bash
# net.sh: network benchmark. Boots the demo guest with iperf3 in its initramfs (demo-guest.sh
# --with iperf3; 2 vCPUs, 1024 MiB) on a TAP interface in a network namespace, once with
# out/propolis-standalone (pci-virtio-viona) and once with qemu-system-x86_64 -accel kvm
# (-netdev tap,vhost=on|off -device virtio-net-pci), and measures TCP throughput with iperf3
# (the server runs in the guest, the client on the host side of the TAP):
#   guest->host  iperf3 -c GUEST -R (the guest sends)
#   host->guest  iperf3 -c GUEST    (the host sends)
# Prints Gbit/s (iperf3's receiver figure) for both VMMs and the ratio ours/qemu.
#
#   test/Bench/net.sh [--seconds N]      (N: length of each iperf3 run, default 10)
#   ./build.sh bench net [--seconds N]   (publishes out/propolis-standalone first)
#
# Everything runs in one test/e2e/kvm-sandbox.sh invocation: directly where /dev/kvm is usable
# (as root: it creates a network namespace and a TAP), else under nested KVM in a QEMU TCG
# sandbox, where absolute figures are dominated by the emulation and the ratio is the figure to
# read. Ours uses vhost-net when /dev/vhost-net opens (its log says which data path it took);
# QEMU then runs with vhost=on, else with vhost=off, so both rows use the same data path.
# NET_BENCH_VHOST=false (or true) sets ours' `vhost` key: false compares the userspace paths.
# Needs socat, iperf3, iproute2 and qemu-system-x86.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF="$ROOT/test/Bench/net.sh"
GUEST_MIB=1024 GUEST_CPUS=2
CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
NS=benchnet TAP=btap0 HOST_IP=10.0.3.1 GUEST_IP=10.0.3.15

die() { printf 'net.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

seconds=10 inner=0 where="" initrd=""
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--seconds needs a positive count"; seconds=$2; shift 2 ;;
        --inner) inner=1; where=${2:?}; initrd=${3:?}; shift 3 ;;   # internal: the measuring half
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

PROPOLIS="$ROOT/out/propolis-standalone"
KERNEL="$ROOT/out/guest/vmlinuz"

# ---------------------------------------------------------------------------------------------
# The outer half: prepare, then run the inner half where /dev/kvm works.
if [ $inner -eq 0 ]; then
    [ -x "$PROPOLIS" ] || die "no $PROPOLIS (run ./build.sh build, or ./build.sh bench net)"
    command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
    command -v socat >/dev/null || die "no socat (apt-get install socat)"
    command -v ip >/dev/null || die "no ip (apt-get install iproute2)"
    img=$("$ROOT/test/e2e/demo-guest.sh" --with iperf3 --print)
    command -v iperf3 >/dev/null || die "no iperf3 (apt-get install iperf3)"
    if [ "${KVM_SANDBOX:-auto}" != force ] && [ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null; then
        where=host
        [ "$(id -u)" = 0 ] || die "on host KVM this benchmark must run as root (it creates a network namespace and a TAP)"
    else
        where=sandbox
    fi
    exec "$ROOT/test/e2e/kvm-sandbox.sh" --mem 3072 --timeout $(( 2 * (4 * seconds + 400) + 60 )) \
        -- env NET_BENCH_VHOST="${NET_BENCH_VHOST:-}" "$SELF" --seconds "$seconds" --inner "$where" "$img"
fi

# ---------------------------------------------------------------------------------------------
# The inner half: measure.
[ -w /dev/kvm ] || die "no usable /dev/kvm here"
# shellcheck source=../e2e/lib/console.sh
. "$ROOT/test/e2e/lib/console.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/net-bench.XXXXXX")
vmm_pid=""
cleanup() {
    disconnect 2>/dev/null || true
    [ -n "$vmm_pid" ] && kill -KILL "$vmm_pid" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
CONSOLE_LOG=$work/console.log

in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
in_ns ip link set lo up
in_ns ip tuntap add dev "$TAP" mode tap multi_queue
in_ns ip addr add "$HOST_IP/24" dev "$TAP"
in_ns ip link set "$TAP" up

cat > vm.toml <<EOF
[main]
name = "net-bench"
cpus = $GUEST_CPUS
memory = $GUEST_MIB
kernel = "$KERNEL"
initrd = "$initrd"
cmdline = "$CMDLINE"

[dev.net0]
driver = "pci-virtio-viona"
vnic = "$TAP"
pci-path = "0.5.0"
mac = "02:00:00:00:03:15"
EOF
case "${NET_BENCH_VHOST:-}" in
    "") ;;  # no key: vhost-net where /dev/vhost-net opens, else the packet threads
    true|false) echo "vhost = $NET_BENCH_VHOST" >> vm.toml ;;
    *) die "NET_BENCH_VHOST is true, false or unset, not '$NET_BENCH_VHOST'" ;;
esac
# QEMU's vhost setting follows the data path ours took (read from its log once its guest booted).
qemu_vhost=off

# iperf3 client on the host side; prints the receiver's Gbit/s.
measure() { # extra iperf3 args
    local out
    out=$(in_ns timeout $((seconds + 60)) iperf3 -c "$GUEST_IP" -t "$seconds" -f m "$@" 2>&1) || { printf '%s\n' "$out" >&2; echo failed; return 0; }
    printf '%s\n' "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") { printf "%.3f\n", $(i - 1) / 1000; exit } }'
}

# One VMM: boots, configures the guest, runs both directions. Appends "vmm g2h h2g" to results.
run_vmm() {
    local vmm=$1
    rm -f ttya
    case "$vmm" in
        ours)
            in_ns env --default-signal=INT,TERM "$PROPOLIS" vm.toml --console ttya > "vmm-$vmm.log" 2>&1 &
            ;;
        qemu)
            in_ns qemu-system-x86_64 -accel kvm -cpu host -m $GUEST_MIB -smp $GUEST_CPUS \
                -nodefaults -no-user-config -nographic -no-reboot \
                -kernel "$KERNEL" -initrd "$initrd" -append "$CMDLINE" \
                -chardev socket,id=con,path=ttya,server=on,wait=on -serial chardev:con \
                -netdev tap,id=n0,ifname="$TAP",script=no,downscript=no,vhost=$qemu_vhost,queues=$GUEST_CPUS \
                -device virtio-net-pci,netdev=n0,mac=02:00:00:00:03:15,mq=on,vectors=$((2 * GUEST_CPUS + 2)) \
                > "vmm-$vmm.log" 2>&1 < /dev/null &
            ;;
    esac
    vmm_pid=$!
    if ! { connect ttya 60 && expect_line 'propolis demo guest' 300 && expect_text '~ # ' 60; }; then
        echo "net.sh: $vmm: the guest did not boot to its shell; its log:" >&2
        tail -n 20 "vmm-$vmm.log" >&2
        echo "$vmm failed failed" >> results
        kill -KILL "$vmm_pid" 2>/dev/null || true; wait "$vmm_pid" 2>/dev/null || true; vmm_pid=""
        disconnect
        return 0
    fi
    if [ "$vmm" = ours ]; then
        # The guest's virtio-net driver has started the device by now: the log names the data path.
        if grep -q 'vhost-net: [0-9]* queue pair' "vmm-$vmm.log"; then qemu_vhost=on; else qemu_vhost=off; fi
        echo "net.sh: ours moves packets with $([ $qemu_vhost = on ] && echo vhost-net || echo its own threads): qemu gets vhost=$qemu_vhost" >&2
    fi
    send "ip addr add $GUEST_IP/24 dev eth0 && ip link set eth0 up && iperf3 -s -D && echo net-ready"
    expect_line '^net-ready$' 60 || true
    expect_text '~ # ' 10 || true
    # The link and the server need a moment; wait until the guest answers.
    local i; for i in $(seq 1 60); do in_ns busybox ping -c 1 -W 1 "$GUEST_IP" > /dev/null 2>&1 && break; sleep 1; done
    local g2h h2g
    g2h=$(measure -R)
    h2g=$(measure)
    printf '  %-5s guest->host %s Gbit/s, host->guest %s Gbit/s\n' "$vmm" "$g2h" "$h2g" >&2
    echo "$vmm ${g2h:-failed} ${h2g:-failed}" >> results
    send 'poweroff -f'
    local deadline=$((SECONDS + 60))
    while kill -0 "$vmm_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -TERM "$vmm_pid" 2>/dev/null || true; sleep 1; kill -KILL "$vmm_pid" 2>/dev/null || true
    wait "$vmm_pid" 2>/dev/null || true
    vmm_pid=""
    disconnect
}

case "$where" in
    host) where_text="host KVM" ;;
    *) where_text="nested KVM in the TCG sandbox: absolute figures are dominated by the emulation; read the ratio" ;;
esac
: > results
echo "net.sh: iperf3 ${seconds}s each way, ours then qemu ($where_text)" >&2
run_vmm ours
run_vmm qemu

read -r _ o_g2h o_h2g < <(awk '$1 == "ours"' results)
read -r _ q_g2h q_h2g < <(awk '$1 == "qemu"' results)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
printf 'network benchmark: demo guest, %d vCPUs, virtio-net on a TAP, iperf3 TCP %ds (%s)\n' "$GUEST_CPUS" "$seconds" "$where_text"
printf '%-40s %14s %14s\n' vmm 'guest->host' 'host->guest'
ours_path=$([ $qemu_vhost = on ] && echo vhost-net || echo userspace)
printf '%-40s %9s Gbit/s %7s Gbit/s\n' "propolis-standalone ($ours_path)" "$o_g2h" "$o_h2g"
printf '%-40s %9s Gbit/s %7s Gbit/s\n' "qemu -accel kvm virtio-net-pci vhost=$qemu_vhost" "$q_g2h" "$q_h2g"
printf '%-40s %14s %14s\n' 'ratio ours/qemu' "$(ratio "$o_g2h" "$q_g2h")" "$(ratio "$o_h2g" "$q_h2g")"

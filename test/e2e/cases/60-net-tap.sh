# shellcheck shell=bash
# pci-virtio-viona over a TAP, in a network namespace of the sandbox: the guest's eth0 has the
# configured MAC, link up and 2 queue pairs (2 vCPUs), bound through the modern virtio interface
# (VIRTIO_F_VERSION_1) with its doorbells as ioeventfds; the host side (10.0.2.1 on the TAP) and
# the demo guest (10.0.2.15, static) ping each other, and a 100 MiB TCP stream goes
# each way with matching SHA-256 sums (busybox nc in the guest, socat on the host side). The TAP
# exists before the VM starts (created multi_queue, as the error message tells a user to), so it
# is left in place after Ctrl+C. The guest driver is unbound and bound again (a device reset)
# and pings once more. The first VM has no `vhost` key, so vhost-net carries its queues where
# /dev/vhost-net exists (the default; the sandbox loads vhost_net). The host sends first and the
# guest sends the same bytes back, so a bad copy is compared with the original (lib/blobdiff.py).
# A second VM whose vnic does not exist gets one created, up, for its lifetime only, and pings
# over it with no `vhost` key: the log must say vhost-net carries the queues where
# /dev/vhost-net exists (the sandbox loads vhost_net), else that the packet threads do and why.
# e2e-timeout: 900
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/stream.sh"

NS=e2enet
MIB=${E2E_NET_MIB:-100}
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS" || fail "cannot create network namespace $NS"
trap '_e2e_end; ip netns del "$NS" 2>/dev/null || true' EXIT
in_ns ip link set lo up
in_ns ip tuntap add dev ptap0 mode tap multi_queue || fail "cannot create ptap0"
in_ns ip addr add 10.0.2.1/24 dev ptap0
in_ns ip link set ptap0 up

write_config net.toml 2 768
cat >> net.toml <<'EOF'

[dev.net0]
driver = "pci-virtio-viona"
vnic = "ptap0"
pci-path = "0.5.0"
mac = "02:00:00:00:00:15"
EOF
if [ -c /dev/vhost-net ]; then
    path_re='vhost-net: 2 queue pair'
else
    path_re='userspace packet threads: 2 queue pair'
fi
cp net.toml "$E2E_ARTIFACTS/"

spawn vmm env --default-signal=INT,TERM ip netns exec "$NS" "$E2E_PROPOLIS" net.toml
boot_to_shell 240

vmm_log_has() { # REGEX COUNT: the vmm log has COUNT lines matching REGEX (after up to 10 s)
    local deadline=$((SECONDS + 10))
    until [ "$(grep -c "$1" "$E2E_ARTIFACTS/vmm.log")" -ge "$2" ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}
vmm_log_has "$path_re" 1 || fail "the log does not say '$path_re' (see vmm.log)"
note "data path: $(grep -o "$path_re[^\"]*" "$E2E_ARTIFACTS/vmm.log" | head -n 1)"

shell 'cat /sys/class/net/eth0/address' '^[0-9a-f:]+$'
[ "$CONSOLE_MATCH" = 02:00:00:00:00:15 ] || fail "eth0 has MAC $CONSOLE_MATCH, configured 02:00:00:00:00:15"
shell 'basename $(readlink /sys/class/net/eth0/device/driver)' '^[a-z_]+$'
note "eth0 bound to $CONSOLE_MATCH"
# The modern interface (virtio 1.2 §4.1.4): the driver accepted VIRTIO_F_VERSION_1, bit 32 of the
# virtio device's features (sysfs prints bit 0 first), and found the capabilities into BAR 4.
shell 'echo "v1=$(cut -c33 /sys/class/net/eth0/device/features)"' '^v1=[01]$'
[ "$CONSOLE_MATCH" = v1=1 ] || fail "the guest's virtio-net driver did not negotiate VIRTIO_F_VERSION_1 (legacy interface in use)"
# Queue notifications reach the packet threads by ioeventfd, on the modern notify addresses.
grep -q 'virtio-net: [0-9]* of [0-9]* queue doorbells at modern MMIO .* are ioeventfds; data queues wake their packet threads directly' "$E2E_ARTIFACTS/vmm.log" \
    || fail "no log line saying virtio-net's modern doorbells are ioeventfds (see vmm.log)"
if grep -q 'irqfd MSI routing refused\|doorbells there exit to userspace' "$E2E_ARTIFACTS/vmm.log"; then
    fail "KVM refused an irqfd route or an ioeventfd (see vmm.log)"
fi
note "$(grep -o 'virtio-net: [0-9]* of [0-9]* queue doorbells at modern MMIO[^;]*; [^;]*; interrupts: [^(]*' "$E2E_ARTIFACTS/vmm.log" | head -1)"
# One queue pair per vCPU: the driver asked for 2 with VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET.
shell 'echo queues: $(ls /sys/class/net/eth0/queues)' '^queues: '
[ "$CONSOLE_MATCH" = "queues: rx-0 rx-1 tx-0 tx-1" ] || fail "eth0 has $CONSOLE_MATCH, expected 2 queue pairs"
shell 'ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && echo up-ok' '^up-ok$'
# carrier is readable once the interface is up; 1 = VIRTIO_NET_S_LINK_UP.
shell 'cat /sys/class/net/eth0/carrier' '^[01]$'
[ "$CONSOLE_MATCH" = 1 ] || fail "the guest sees the link down"
shell 'ping -c 3 -W 5 10.0.2.1 | grep -o "[0-9]* packets received"' '^[0-9]+ packets received$' 60
[ "$CONSOLE_MATCH" = "3 packets received" ] || fail "guest -> host ping: $CONSOLE_MATCH"
in_ns busybox ping -c 3 -W 5 10.0.2.15 > "$E2E_ARTIFACTS/ping-host.log" || fail "host -> guest ping failed (see ping-host.log)"

# host -> guest: the host sends $MIB MiB of random data; the guest checksums what arrives.
# busybox nc also copies its stdin to the peer: from the console, a background nc would stop
# (SIGTTIN) as soon as the next command is typed, so its stdin is a pipe that stays silent, and
# the guest waits until the whole stream is in the file (or 60 s) before it stops nc.
blob=$E2E_WORK/blob
bytes=$((MIB << 20))
head -c $bytes /dev/urandom > "$blob"
host_sum=$(sha256sum "$blob" | cut -d' ' -f1)
shell 'sleep 900 | nc -l -p 5002 > /tmp/in & echo listening' '^listening$'
t0=$SECONDS
in_ns timeout 600 socat -u "FILE:$blob" TCP:10.0.2.15:5002,retry=20,interval=1 || fail "host -> guest: socat failed"
note "host -> guest: $MIB MiB in $((SECONDS - t0))s"
shell "$(guest_wait_sum /tmp/in $bytes 300)" "$STREAM_SUM_RE" 120
read -r _ got_size got_sum _ <<< "$CONSOLE_MATCH"
[ "$got_size" = $bytes ] || fail "host -> guest: the guest received $got_size of $bytes bytes"
[ "$got_sum" = "$host_sum" ] || fail "host -> guest: the guest received all $bytes bytes, with sha256 $got_sum; the host sent $host_sum"

# guest -> host: the guest sends back what it received, so a bad copy can be compared with the
# original byte for byte (lib/blobdiff.py says where the wrong bytes are and what they are).
# busybox nc keeps the connection open after its input ends: the host side stops once it has
# all the bytes, or after 30 s without one.
shell 'nc -l -p 5001 < /tmp/in & echo listening' '^listening$'
t0=$SECONDS
( in_ns timeout 600 socat -u TCP:10.0.2.15:5001,retry=20,interval=1 "CREATE:$E2E_WORK/g2h" ) &
rpid=$!
wait_size "$E2E_WORK/g2h" $bytes 30 || true
kill $rpid 2>/dev/null || true; wait $rpid 2>/dev/null || true
note "guest -> host: $MIB MiB in about $((SECONDS - t0))s"
[ "$SIZE" -ge $bytes ] || fail "guest -> host: $SIZE of $bytes bytes arrived, then nothing for 30 s"
got_sum=$(head -c $bytes "$E2E_WORK/g2h" | sha256sum | cut -d' ' -f1)
if [ "$got_sum" != "$host_sum" ]; then
    blobdiff "$blob" "$E2E_WORK/g2h" "$E2E_ARTIFACTS/blobdiff-g2h.txt" && cat "$E2E_ARTIFACTS/blobdiff-g2h.txt" >&2
    fail "guest -> host: all $bytes bytes arrived, with sha256 $got_sum; the guest sent $host_sum (blobdiff-g2h.txt)"
fi
rm -f "$blob" "$E2E_WORK/g2h"
shell 'killall nc 2>/dev/null; rm -f /tmp/in; echo removed' '^removed$'

# Device reset and restart: unbinding virtio_net writes status 0 (the packet threads let go and
# the queues are reset), binding it again negotiates anew and reaches DRIVER_OK.
shell 'd=$(basename $(readlink /sys/class/net/eth0/device)); echo $d > /sys/bus/virtio/drivers/virtio_net/unbind; echo $d > /sys/bus/virtio/drivers/virtio_net/bind; echo rebound $d' '^rebound virtio[0-9]+$'
vmm_log_has "$path_re" 2 || fail "after the driver was bound again the log does not say '$path_re' a second time (see vmm.log)"
shell 'ip addr add 10.0.2.15/24 dev eth0; ip link set eth0 up; ping -c 3 -W 5 10.0.2.1 | grep -o "[0-9]* packets received"' '^[0-9]+ packets received$' 60
[ "$CONSOLE_MATCH" != "0 packets received" ] || fail "guest -> host ping after the device reset: $CONSOLE_MATCH"

kill -INT "$(vmm_pid vmm)"
wait_exit vmm 10 0
disconnect
in_ns ip link show ptap0 > /dev/null 2>&1 || fail "ptap0 existed before the VM and is gone after it"

# A vnic that does not exist: created (we are root), up while the VM runs, removed after; no
# vhost key, so vhost-net where /dev/vhost-net exists, else the packet threads (logged, with why).
if [ -c /dev/vhost-net ]; then
    path2_re='vhost-net: 1 queue pair' not2_re='userspace packet threads: [0-9]* queue pair'
else
    note "no /dev/vhost-net here: the second VM's default is the packet threads"
    path2_re='vhost-net not used: /dev/vhost-net' not2_re='vhost-net: [0-9]* queue pair'
fi
write_config net2.toml 1 256
cat >> net2.toml <<EOF

[dev.net0]
driver = "pci-virtio-viona"
vnic = "ptap9"
pci-path = "0.5.0"
EOF
cp net2.toml "$E2E_ARTIFACTS/"
spawn vmm2 env --default-signal=INT,TERM ip netns exec "$NS" "$E2E_PROPOLIS" net2.toml
deadline=$((SECONDS + 60))
until in_ns ip link show ptap9 2>/dev/null | grep -q 'state\|UP'; do
    [ $SECONDS -lt $deadline ] || fail "ptap9 was not created"
    sleep 0.5
done
in_ns ip link show ptap9 | grep -q '[<,]UP[,>]' || fail "ptap9 was created but is not up: $(in_ns ip link show ptap9)"
grep -q 'created tap ptap9' "$E2E_ARTIFACTS/vmm2.log" || fail "no log line about creating ptap9"
in_ns ip addr add 10.0.9.1/24 dev ptap9
boot_to_shell 240
grep -q "$path2_re" "$E2E_ARTIFACTS/vmm2.log" || fail "no vhost key: the log does not say '$path2_re' (see vmm2.log)"
if grep -q "$not2_re" "$E2E_ARTIFACTS/vmm2.log"; then fail "no vhost key, but the log says '$not2_re'"; fi
note "second VM, no vhost key: $(grep -o "$path2_re[^\"]*" "$E2E_ARTIFACTS/vmm2.log" | head -n 1)"
shell 'ip addr add 10.0.9.15/24 dev eth0 && ip link set eth0 up && ping -c 3 -W 5 10.0.9.1 | grep -o "[0-9]* packets received"' '^[0-9]+ packets received$' 60
[ "$CONSOLE_MATCH" = "3 packets received" ] || fail "second VM (no vhost key): guest -> host ping: $CONSOLE_MATCH"
kill -INT "$(vmm_pid vmm2)"
wait_exit vmm2 10 0
disconnect
if in_ns ip link show ptap9 > /dev/null 2>&1; then fail "ptap9, created for the VM, is still there after it ended"; fi
note "ok"

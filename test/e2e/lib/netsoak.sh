# shellcheck shell=bash
# The network soak (test/e2e/soak/, `run.sh --cases test/e2e/soak`): one VM on a TAP in a
# network namespace moves SOAK_MIB MiB (default 64) SOAK_ROUNDS times (default 6) each way, with
# a SHA-256 check of every transfer. The VMM and its data path come from the case:
#   SOAK_VMM=ours|qemu   out/propolis-standalone (pci-virtio-viona), or qemu-system-x86_64
#                        -accel kvm with virtio-net-pci on the same TAP, guest and memory
#   SOAK_VHOST=on|off    ours: `vhost = true|false`; QEMU: -netdev tap,vhost=on|off
# Each transfer is reported as ok, BAD (checksum; the data arrived), STALLED (no byte for
# SOAK_SILENCE seconds, default 10) or, once the guest stops answering, not run. The case fails
# if any transfer was not ok. The guest sends back a blob the host sent it first, so a BAD copy
# is compared with the original (lib/blobdiff.py, noted and kept in blobdiff-g2h-N.txt; the first
# two bad copies are kept too). SOAK_* variables reach the sandbox (run.sh passes them on).
# The guest's kernel log goes to the console (no `quiet`), so an
# oops or panic is in console.log. This is a diagnostic, not part of the suite: it measures how
# often a data path fails here, side by side with QEMU's.
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/stream.sh"

NS=e2esoak
MIB=${SOAK_MIB:-64}
ROUNDS=${SOAK_ROUNDS:-6}
SILENCE=${SOAK_SILENCE:-10}
E2E_CMDLINE="console=ttyS0 reboot=k panic=-1 loglevel=5"
in_ns() { ip netns exec "$NS" "$@"; }
# try CMD REGEX TIMEOUT: as shell (lib/standalone.sh), but returns 1 instead of failing the case
# when the guest does not answer.
try() {
    send "$1"
    expect_line "$2" "$3" || return 1
    local match=$CONSOLE_MATCH
    expect_text '~ # ' "$3" || return 1
    CONSOLE_MATCH=$match
}

ip netns add "$NS" || fail "cannot create network namespace $NS"
trap '_e2e_end; ip netns del "$NS" 2>/dev/null || true' EXIT
in_ns ip link set lo up
in_ns ip tuntap add dev stap0 mode tap multi_queue || fail "cannot create stap0"
in_ns ip addr add 10.0.4.1/24 dev stap0
in_ns ip link set stap0 up

if [ "$SOAK_VMM" = qemu ]; then
    spawn vmm ip netns exec "$NS" qemu-system-x86_64 -accel kvm -cpu host -m 768 -smp 2 \
        -nodefaults -display none -no-reboot \
        -kernel "$E2E_GUEST_KERNEL" -initrd "$E2E_GUEST_INITRD" -append "$E2E_CMDLINE" \
        -netdev "tap,id=n0,ifname=stap0,script=no,downscript=no,vhost=$SOAK_VHOST,queues=2" \
        -device virtio-net-pci,netdev=n0,mq=on,vectors=6,mac=02:00:00:00:00:15 \
        -chardev socket,id=con,path=ttya,server=on,wait=on -serial chardev:con
else
    write_config soak.toml 2 768
    cat >> soak.toml <<EOT

[dev.net0]
driver = "pci-virtio-viona"
vnic = "stap0"
pci-path = "0.5.0"
mac = "02:00:00:00:00:15"
vhost = $([ "$SOAK_VHOST" = on ] && echo true || echo false)
EOT
    cp soak.toml "$E2E_ARTIFACTS/"
    spawn vmm env --default-signal=INT,TERM ip netns exec "$NS" "$E2E_PROPOLIS" soak.toml
fi
boot_to_shell 240
shell 'ip addr add 10.0.4.15/24 dev eth0 && ip link set eth0 up && echo up-ok' '^up-ok$'
shell 'ping -c 3 -W 5 10.0.4.1 | grep -o "[0-9]* packets received"' '^[0-9]+ packets received$' 60
blob=$(mktemp)
head -c $((MIB << 20)) /dev/urandom > "$blob"
blob_sum=$(sha256sum "$blob" | cut -d' ' -f1)

# h2g PORT FILE: sends the blob to the guest's FILE; the guest waits for all of it (or silence)
# and prints its size and sum into SIZE and SUM. Returns 1 when the guest does not answer.
h2g() {
    try "sleep 900 | nc -l -p $1 > $2 & echo listening" '^listening$' 60 || return 1
    in_ns timeout 600 socat -u "FILE:$blob" "TCP:10.0.4.15:$1,retry=20,interval=1" || true
    try "$(guest_wait_sum "$2" $((MIB << 20)) $((5 * SILENCE)))" "$STREAM_SUM_RE" 120 || return 1
    read -r _ SIZE SUM _ <<< "$CONSOLE_MATCH"
}

# What the guest sends back is the blob itself (sent to it first, checked by its sum), so a bad
# guest -> host copy can be compared with the original byte for byte (lib/blobdiff.py): where
# the wrong bytes are and what they are says more about the cause than a checksum.
h2g 5100 /tmp/out || fail "the guest did not answer while receiving its copy of the blob"
[ "$SUM" = "$blob_sum" ] || fail "the guest's copy of the blob is bad (size $SIZE, sha256 $SUM)"
bad_kept=0

# threads NAME: where every thread of the VMM is (name, state, kernel wait channel, syscall and
# kernel stack from /proc), into NAME in the artifacts: a vCPU thread in KVM_RUN is in the
# kernel's hands, one in a futex waits for this process.
threads() {
    local pid t
    pid=$(vmm_pid vmm)
    {
        for t in /proc/"$pid"/task/*; do
            printf '== %s %s state=%s wchan=%s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" \
                "$(awk '{print $3}' "$t/stat" 2>/dev/null)" "$(cat "$t/wchan" 2>/dev/null)"
            printf 'syscall: %s\n' "$(cat "$t/syscall" 2>/dev/null)"
            cat "$t/stack" 2>/dev/null
        done
    } > "$E2E_ARTIFACTS/$1" 2>&1 || true
    note "threads of the VMM: $1"
}

# Page movements in the sandbox's kernel (THP collapse, compaction, migration) while a transfer
# ran: a guest page moved under a nested guest is one way a copy could differ from the original.
vm_moves() { grep -E '^(thp_collapse_alloc|thp_split_page|pgmigrate_success|compact_migrate_scanned|compact_success|ksm_) ' /proc/vmstat 2>/dev/null | tr '\n' ' '; }
vm_delta() {
    awk -v before="$1" -v after="$2" 'BEGIN {
        n = split(before, b, " "); for (i = 1; i < n; i += 2) old[b[i]] = b[i + 1]
        n = split(after, a, " "); for (i = 1; i < n; i += 2) if (a[i + 1] != old[a[i]]) printf "%s +%d ", a[i], a[i + 1] - old[a[i]]
    }'
}
vm_start=$(vm_moves)

ok=0 bad=0 stalled=0 dead=0 total=$((2 * ROUNDS))
report() {
    note "$1 $2: $3"
    case $3 in ok*) ok=$((ok + 1)) ;; BAD*) bad=$((bad + 1)) ;; *) stalled=$((stalled + 1)); threads "threads-$1-$2.txt" ;; esac
}
for i in $(seq 1 "$ROUNDS"); do
    # guest -> host: busybox nc serves the file; the host side stops at MIB MiB or silence.
    port=$((5100 + i)) t0=$SECONDS vm_before=$(vm_moves)
    try "nc -l -p $port < /tmp/out & echo listening" '^listening$' 60 || { dead=1; break; }
    ( in_ns timeout 600 socat -u "TCP:10.0.4.15:$port,retry=20,interval=1" "CREATE:/tmp/soak-g2h" ) &
    rpid=$!
    if wait_size /tmp/soak-g2h $((MIB << 20)) "$SILENCE"; then
        sum=$(head -c $((MIB << 20)) /tmp/soak-g2h | sha256sum | cut -d' ' -f1)
        if [ "$sum" = "$blob_sum" ]; then report g2h "$i" "ok ($((SECONDS - t0)) s)"; else
            report g2h "$i" "BAD (sha256 $sum)"
            note "g2h $i: page movements in the sandbox during it: $(vm_delta "$vm_before" "$(vm_moves)")"
            if blobdiff "$blob" /tmp/soak-g2h "$E2E_ARTIFACTS/blobdiff-g2h-$i.txt"; then
                while read -r line; do note "g2h $i: $line"; done < "$E2E_ARTIFACTS/blobdiff-g2h-$i.txt"
            fi
            # The first two bad copies are kept for a closer look (64 MiB each).
            if [ $bad_kept -lt 2 ]; then cp /tmp/soak-g2h "$E2E_ARTIFACTS/bad-g2h-$i.bin"; bad_kept=$((bad_kept + 1)); fi
        fi
    else
        report g2h "$i" "STALLED at $SIZE bytes"
    fi
    kill $rpid 2>/dev/null || true; wait $rpid 2>/dev/null || true; rm -f /tmp/soak-g2h
    try 'killall nc 2>/dev/null; echo done' '^done$' 60 || { dead=1; break; }
    # host -> guest: the guest's nc writes /tmp/in; the guest checks its size, then its sum.
    t0=$SECONDS
    h2g $((5200 + i)) /tmp/in || { dead=1; break; }
    if [ "$SUM" = "$blob_sum" ]; then report h2g "$i" "ok ($((SECONDS - t0)) s)"
    elif [ "$SIZE" -lt $((MIB << 20)) ]; then report h2g "$i" "STALLED at $SIZE bytes"
    else report h2g "$i" "BAD (sha256 $SUM)"; fi
done
rm -f "$blob"
notrun=$((total - ok - bad - stalled))
note "page movements in the sandbox during the soak: $(vm_delta "$vm_start" "$(vm_moves)")"
if [ $dead -ne 0 ]; then
    note "the guest stopped answering on its console (see console.log)"
    threads threads-dead.txt
fi
note "vmm=$SOAK_VMM vhost=$SOAK_VHOST: $ok of $total transfers ok, $bad bad, $stalled stalled, $notrun not run"
echo "SOAK vmm=$SOAK_VMM vhost=$SOAK_VHOST ok=$ok bad=$bad stalled=$stalled notrun=$notrun total=$total" >> "$E2E_ARTIFACTS/../soak-summary"
[ $ok -eq $total ] || fail "$((total - ok)) of $total transfers were not ok (vmm=$SOAK_VMM vhost=$SOAK_VHOST)"

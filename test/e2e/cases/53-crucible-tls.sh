# shellcheck shell=bash
# Case 50's flow over TLS: three `crucible-downstairs run --cert-pem --key-pem --root-cert-pem`
# (dsc has no TLS options, as the real one) serve encrypted regions; the VM's crucible block_dev
# names its certificate, key and root, and a control_addr. The guest writes a pattern and reads
# it back after dropping its page cache; the upstairs control server reports the volume active with its
# three downstairs; every downstairs logged a TLS session with the upstairs' certificate.
# Certificates are made here with openssl (the sandbox sees the host's; .NET's ca-certificates
# dependency brings it): a root, one downstairs certificate naming downstairs0..2, one upstairs.
# e2e-timeout: 900
. "$E2E_ROOT/test/e2e/lib/standalone.sh"
. "$E2E_ROOT/test/e2e/lib/disks.sh"

command -v openssl >/dev/null || skip "openssl is not installed (it makes this case's certificates)"
ip link set lo up 2>/dev/null || busybox ip link set lo up || fail "cannot bring up the loopback interface"

DS=$E2E_OUT/crucible-downstairs
KEY=tCw7zw0hAsPuxMOTWwnPEFYjBK9qJRtYyGdEXKEnrg0=
CONTROL=127.0.0.1:9997
OFFSETS="0 1000 4000"

# A root, then leaves it signs (RSA keys in PKCS#1, the form crucible reads).
cert() {   # NAME SUBJECT-ALT-NAMES
    openssl genrsa -traditional -out "$1.key" 2048 2>/dev/null
    openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n%s' "${2:+subjectAltName=$2}" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA root.pem -CAkey root.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
openssl genrsa -traditional -out root.key 2048 2>/dev/null
openssl req -x509 -new -key root.key -subj "/CN=e2e crucible root" -days 2 -out root.pem
cert downstairs "DNS:downstairs0,DNS:downstairs1,DNS:downstairs2"
cert upstairs ""
note "certificates made"

for i in 0 1 2; do
    "$DS" create -d "$PWD/r$i" --uuid "12345678-0000-0000-0000-00000000005$i" --extent-size 256 --extent-count 16 \
        --block-size 4096 --encrypted > "$E2E_ARTIFACTS/create-$i.log" 2>&1 || fail "crucible-downstairs create $i failed"
    spawn "ds$i" "$DS" run -d "$PWD/r$i" -a 127.0.0.1 -p "88${i}0" \
        --cert-pem "$PWD/downstairs.pem" --key-pem "$PWD/downstairs.key" --root-cert-pem "$PWD/root.pem"
done
for i in 0 1 2; do
    n=0
    until grep -q "downstairs listening on" "$E2E_ARTIFACTS/ds$i.log"; do
        n=$((n + 1)); [ $n -lt 300 ] || fail "downstairs $i is not listening after 60 s"
        running "ds$i" || fail "downstairs $i exited"
        sleep 0.2
    done
done
grep -q "Configured SSL acceptor" "$E2E_ARTIFACTS/ds0.log" || fail "the downstairs did not configure TLS"
note "three TLS downstairs listening"

write_config tls.toml 2 512
disk_toml tls.toml cru pci-nvme 0.4.0 'type = "crucible"' 'block_size = 4096' 'blocks_per_extent = 256' \
    'extent_count = 16' 'targets = ["127.0.0.1:8800", "127.0.0.1:8810", "127.0.0.1:8820"]' 'generation = 1' \
    "encryption_key = \"$KEY\"" "cert_pem = \"$PWD/upstairs.pem\"" "key_pem = \"$PWD/upstairs.key\"" \
    "root_cert_pem = \"$PWD/root.pem\"" "control_addr = \"$CONTROL\""
"$E2E_PROPOLIS" --check tls.toml > "$E2E_ARTIFACTS/check.log" 2>&1 || fail "--check refused the TLS configuration (see check.log)"

start_vmm vm tls.toml
boot_to_shell 300
wait_disks nvme0n1
for off in $OFFSETS; do
    shell "yes tls-$off | head -c 65536 | dd of=/dev/nvme0n1 iflag=fullblock bs=4096 seek=$off conv=fsync 2>/dev/null; echo w-$off=\$?" "^w-$off=0$" 120
done
shell 'sync; echo 3 > /proc/sys/vm/drop_caches; echo dropped' '^dropped$' 60
for off in $OFFSETS; do
    shell "[ \"\$(dd if=/dev/nvme0n1 bs=4096 skip=$off count=16 2>/dev/null | md5sum)\" = \"\$(yes tls-$off | head -c 65536 | md5sum)\" ]; echo r-$off=\$?" "^r-$off=[0-9]+$" 120
    [ "$CONSOLE_MATCH" = "r-$off=0" ] || fail "read back different data at block $off"
done

# The control server, from this side of the VMM (bash's /dev/tcp; no curl needed).
exec 3<>"/dev/tcp/${CONTROL%:*}/${CONTROL#*:}"
printf 'GET /info HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$CONTROL" >&3
cat <&3 > "$E2E_ARTIFACTS/control-info.txt"
exec 3<&-
grep -q '"state":"active","ds_state":\[{"type":"active"},{"type":"active"},{"type":"active"}\]' "$E2E_ARTIFACTS/control-info.txt" \
    || fail "GET /info did not report an active volume on three active downstairs (see control-info.txt)"
note "control server: $(tail -c 200 "$E2E_ARTIFACTS/control-info.txt")"

send 'poweroff -f'
wait_exit vm 120 0
disconnect
grep -q "over TLS" "$E2E_ARTIFACTS/vm.log" || fail "the upstairs did not log that it connects over TLS"
for i in 0 1 2; do
    grep -q "TLS session with 127.0.0.1:[0-9]*: Tls1[23], client CN=upstairs" "$E2E_ARTIFACTS/ds$i.log" \
        || fail "downstairs $i logged no TLS session with the upstairs' certificate"
done
for r in r0 r1 r2; do
    if grep -rqa "tls-1000" "$r"; then fail "plaintext of the pattern found in region $r"; fi
done

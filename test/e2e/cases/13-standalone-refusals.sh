# shellcheck shell=bash
# What this build cannot run is refused before anything starts, naming the device: exit 1, no
# console socket created.
# e2e-timeout: 60
. "$E2E_ROOT/test/e2e/lib/standalone.sh"

write_config vsock.toml 1 256
cat >> vsock.toml <<TOML
[dev.vsock0]
driver = "pci-virtio-socket"
guest_cid = 3
pci-path = "0.4.0"
TOML
start_vmm vsock vsock.toml
wait_exit vsock 10 1
grep -q 'dev.vsock0.*does not support' "$E2E_ARTIFACTS/vsock.log" || fail "the refusal does not name [dev.vsock0]"
[ ! -e ttya ] || fail "a console socket was created for a refused machine"

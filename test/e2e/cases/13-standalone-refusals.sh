# shellcheck shell=bash
# What this build cannot run is refused before anything starts, naming the device: exit 1, no
# console socket created.
# e2e-timeout: 60
. "$E2E_ROOT/test/e2e/lib/standalone.sh"

write_config nvme.toml 1 256
truncate -s 1M disk.raw
cat >> nvme.toml <<TOML
[block_dev.root]
type = "file"
path = "$PWD/disk.raw"

[dev.nvme0]
driver = "pci-nvme"
block_dev = "root"
pci-path = "0.4.0"
TOML
start_vmm nvme nvme.toml
wait_exit nvme 10 1
grep -q 'dev.nvme0.*does not support' "$E2E_ARTIFACTS/nvme.log" || fail "the refusal does not name [dev.nvme0]"
[ ! -e ttya ] || fail "a console socket was created for a refused machine"

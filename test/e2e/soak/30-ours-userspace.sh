# shellcheck shell=bash
# Network soak (lib/netsoak.sh): propolis-standalone, the userspace data path.
# e2e-timeout: 1500
SOAK_VMM=ours SOAK_VHOST=off
. "$E2E_ROOT/test/e2e/lib/netsoak.sh"

# shellcheck shell=bash
# Network soak (lib/netsoak.sh): propolis-standalone, vhost-net.
# e2e-timeout: 1500
SOAK_VMM=ours SOAK_VHOST=on
. "$E2E_ROOT/test/e2e/lib/netsoak.sh"

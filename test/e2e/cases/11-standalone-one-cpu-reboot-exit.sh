# shellcheck shell=bash
# One vCPU and 256 MiB, written to a temporary file, with exit_on_reboot = 3: the guest sees one
# CPU and its memory; `reboot -f` ends the process with 3 and removes the socket.
# e2e-timeout: 300
. "$E2E_ROOT/test/e2e/lib/standalone.sh"

write_config one.toml 1 256 'exit_on_reboot = 3'
start_vmm vmm one.toml
t0=$SECONDS
boot_to_shell 240
note "booted to the shell in $((SECONDS - t0))s"
shell 'grep -c ^processor /proc/cpuinfo' '^[0-9]+$'
[ "$CONSOLE_MATCH" = 1 ] || fail "the guest sees $CONSOLE_MATCH CPUs, configured 1"
shell "free -m | awk '/^Mem:/ { print \"memtotal=\" \$2 }'" '^memtotal=[0-9]+$'
mem=${CONSOLE_MATCH#memtotal=}
note "guest MemTotal: $mem MiB of 256"
[ "$mem" -le 256 ] && [ "$mem" -ge 180 ] || fail "free -m shows $mem MiB total, configured 256"
send 'reboot -f'
wait_exit vmm 30 3
[ ! -e ttya ] || fail "the console socket ttya is still there"

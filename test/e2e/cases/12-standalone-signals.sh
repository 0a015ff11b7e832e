# shellcheck shell=bash
# Ctrl+C (SIGINT) and SIGTERM: before any client connects, and with the guest running; each
# exits 0 within 5 s and removes the socket; a second Ctrl+C is logged and ignored.
# e2e-timeout: 300
. "$E2E_ROOT/test/e2e/lib/standalone.sh"

wait_socket() {
    local deadline=$((SECONDS + 30))
    until [ -S ttya ]; do
        [ $SECONDS -lt $deadline ] || fail "no console socket after 30s"
        sleep 0.1
    done
}

# 1. Nobody ever connects.
start_vmm idle "$E2E_EXAMPLES/standalone.toml"
wait_socket
kill -INT "$(vmm_pid idle)"
wait_exit idle 5 0
[ ! -e ttya ] || fail "ttya left behind after SIGINT before any client"
grep -q 'SIGINT' "$E2E_ARTIFACTS/idle.log" || fail "no log line about SIGINT"

# 2. The guest is running (at its shell); two Ctrl+C in a row.
write_config two.toml 2 256
start_vmm running two.toml
boot_to_shell 240
shell 'echo $((6*7))' '^42$'
kill -INT "$(vmm_pid running)"
kill -INT "$(vmm_pid running)"
wait_exit running 5 0
[ ! -e ttya ] || fail "ttya left behind after SIGINT"
grep -q 'ignoring' "$E2E_ARTIFACTS/running.log" || fail "the second SIGINT was not logged as ignored"
disconnect

# 3. SIGTERM while the guest boots.
start_vmm term two.toml
connect ttya 30
expect_line 'propolis demo guest|Linux version|.' 120
kill -TERM "$(vmm_pid term)"
wait_exit term 5 0
[ ! -e ttya ] || fail "ttya left behind after SIGTERM"

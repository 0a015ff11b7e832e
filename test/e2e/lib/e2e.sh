# shellcheck shell=bash
# What an end-to-end case (test/e2e/cases/NN-name.sh) can use. run.sh sources this file and
# then the case, in a fresh bash running with `set -eEuo pipefail` in a scratch working directory
# (on tmpfs: Unix sockets such as ./ttya work there). A command that fails fails the case,
# with the line it was on; so does running past the case's time budget (a line
# "# e2e-timeout: SECONDS" in the case file, default 300).
#
# Paths:
#   E2E_ROOT           the repository            E2E_OUT       its out/ directory
#   E2E_PROPOLIS       out/propolis-standalone   E2E_EXAMPLES  the repository's examples/
#   E2E_GUEST_KERNEL   out/guest/vmlinuz         E2E_GUEST_VMLINUX  out/guest/vmlinux (PVH ELF)
#   E2E_GUEST_INITRD   out/guest/initramfs.img   (see demo-guest.sh: banner "propolis demo
#                                                 guest", then a root shell, prompt "~ # ")
#   E2E_ARTIFACTS      out/e2e/<case>/: kept after the run (logs, transcripts); the console
#                      transcript goes to $E2E_ARTIFACTS/console.log
#   E2E_WORK           the scratch working directory (removed after the case)
# Functions:
#   connect, send, send_raw, expect_line, expect_text, disconnect   (lib/console.sh)
#   spawn NAME CMD...           start CMD in the background, its output in $E2E_ARTIFACTS/NAME.log;
#                               still running at the end of the case, it is killed
#   wait_exit NAME [TIMEOUT] [STATUS]
#                               wait up to TIMEOUT s (60) for NAME to exit; fail unless its exit
#                               status is STATUS (0); the status is left in E2E_STATUS
#   running NAME                true while NAME runs
#   note TEXT                   a line in the case's log, stamped with the seconds since its start
#   fail TEXT                   fail the case with TEXT
#   skip TEXT                   end the case as SKIP (it cannot run here; TEXT says why)
#   E2E_NESTED                  1 under nested KVM in the TCG sandbox, 0 on a host's own KVM
#   require_firmware_kvm        skip the case where the sandbox runs the system's unpatched QEMU,
#                               which aborts when a nested guest runs OVMF (README.md, "Nested
#                               OVMF"); E2E_FIRMWARE_NESTED=1 runs it there anyway

# shellcheck source=console.sh
. "$(dirname "${BASH_SOURCE[0]}")/console.sh"

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
E2E_OUT=${E2E_OUT:-$E2E_ROOT/out}
E2E_PROPOLIS=$E2E_OUT/propolis-standalone
E2E_EXAMPLES=$E2E_ROOT/examples
E2E_GUEST_KERNEL=$E2E_OUT/guest/vmlinuz
E2E_GUEST_VMLINUX=$E2E_OUT/guest/vmlinux
E2E_GUEST_INITRD=$E2E_OUT/guest/initramfs.img
E2E_STATUS=""
CONSOLE_LOG=$E2E_ARTIFACTS/console.log
declare -A _e2e_pids=()

note() { printf '[%4ss] %s\n' "$SECONDS" "$*"; }

fail() {
    printf 'FAILED: %s\n' "$*" >&2
    # Whatever the guest printed since the last expect (an oops or a panic) goes into console.log.
    if declare -F console_drain > /dev/null; then console_drain 3 || true; fi
    exit 1
}
skip() {
    printf 'SKIPPED: %s\n' "$*" >&2
    exit 77
}

require_firmware_kvm() {
    # kvm-sandbox.sh puts sandbox.qemu=patched on the sandbox kernel's command line when its QEMU
    # is the one sandbox-qemu.sh builds (the system's aborts on a nested CR8 write: README.md).
    if [ "${E2E_NESTED:-0}" = 1 ] && ! grep -qw 'sandbox.qemu=patched' /proc/cmdline \
        && [ "${E2E_FIRMWARE_NESTED:-0}" != 1 ]; then
        skip "the sandbox runs the system's QEMU, which aborts when a nested guest runs OVMF (TCG: CR8 write under SVM V_IRQ without the BQL); test/e2e/sandbox-qemu.sh builds the patched one (E2E_FIRMWARE_NESTED=1 tries anyway)"
    fi
}

spawn() {
    local name=$1; shift
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || fail "spawn: bad name '$name'"
    [ -z "${_e2e_pids[$name]:-}" ] || fail "spawn: '$name' was started already"
    note "spawn $name: $*"
    "$@" </dev/null >"$E2E_ARTIFACTS/$name.log" 2>&1 &
    _e2e_pids[$name]=$!
}

running() {
    local pid=${_e2e_pids[$1]:-}
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

wait_exit() {
    local name=$1 timeout=${2:-60} want=${3:-0} pid deadline
    pid=${_e2e_pids[$name]:-}
    [ -n "$pid" ] || fail "wait_exit: nothing was spawned as '$name'"
    deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || fail "$name still runs after ${timeout}s"
        sleep 0.2
    done
    E2E_STATUS=0
    wait "$pid" || E2E_STATUS=$?
    unset "_e2e_pids[$name]"
    note "$name exited with status $E2E_STATUS"
    [ "$E2E_STATUS" = "$want" ] || {
        echo "--- $name's output (last 30 lines):" >&2
        tail -n 30 "$E2E_ARTIFACTS/$name.log" >&2
        fail "$name exited with status $E2E_STATUS, expected $want"
    }
}

_e2e_end() {
    local name pid
    disconnect
    for name in "${!_e2e_pids[@]}"; do
        pid=${_e2e_pids[$name]}
        if kill -0 "$pid" 2>/dev/null; then
            note "stopping $name (still running at the end of the case)"
            kill "$pid" 2>/dev/null || true
            sleep 0.5
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
}
_e2e_on_error() {
    printf 'FAILED at %s:%s: %s\n' "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$BASH_COMMAND" >&2
}
trap _e2e_end EXIT
trap 'exit 143' TERM
trap _e2e_on_error ERR
set -eEuo pipefail

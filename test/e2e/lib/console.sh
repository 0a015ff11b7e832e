# shellcheck shell=bash
# Drive a serial console over a Unix socket (propolis-standalone's ./ttya, or QEMU's
# -chardev socket,server=on) from bash, expect-style, with nothing but bash and socat.
#
#   connect [SOCKET] [TIMEOUT]   wait up to TIMEOUT s (30) for SOCKET (ttya) to accept, attach
#   send LINE                    type LINE and Enter (a carriage return, as a terminal does)
#   send_raw TEXT                write TEXT as it is (printf %b escapes: '\x03' is ^C)
#   expect_line REGEX [TIMEOUT]  wait up to TIMEOUT s (30) for a whole output line matching the
#                                extended REGEX; everything up to and including that line is
#                                consumed; the line is left in CONSOLE_MATCH
#   expect_text REGEX [TIMEOUT]  the same for text that need not end a line (a shell prompt);
#                                consumes through the end of the match
#   disconnect                   detach (the VM goes on running)
#
# Output is read with carriage returns and escape sequences removed. Every byte read is also
# appended to $CONSOLE_LOG (default /dev/null): keep it as the test's transcript. On a timeout the
# expect functions print what was seen since the last match and return 1. One console at a time.

CONSOLE_LOG=${CONSOLE_LOG:-/dev/null}
CONSOLE_MATCH=""
_console_buf=""
_console_pid=""
_console_in=""
_console_out=""

connect() {
    local sock=${1:-ttya} timeout=${2:-30} deadline
    [ -z "$_console_pid" ] || disconnect
    deadline=$((SECONDS + timeout))
    until [ -S "$sock" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "console: no console socket $sock after ${timeout}s" >&2
            return 1
        fi
        sleep 0.1
    done
    # socat keeps trying while the socket exists but does not accept yet. No probe connection
    # first: a server that starts the guest on its first client (QEMU's wait=on) would then
    # run it with nobody listening.
    local tries=$(( (deadline - SECONDS) * 10 + 1 ))
    coproc _CONSOLE { exec socat -b 65536 - "UNIX-CONNECT:$sock,retry=$tries,interval=0.1" 2>/dev/null; }
    _console_pid=$_CONSOLE_PID
    exec {_console_out}<&"${_CONSOLE[0]}" {_console_in}>&"${_CONSOLE[1]}"
    _console_buf=""
}

disconnect() {
    [ -n "$_console_pid" ] || return 0
    exec {_console_in}>&- {_console_out}<&-
    kill "$_console_pid" 2>/dev/null || true
    wait "$_console_pid" 2>/dev/null || true
    _console_pid="" _console_in="" _console_out=""
}

send_raw() {
    [ -n "$_console_in" ] || { echo "console: send without connect" >&2; return 1; }
    printf '%b' "$1" >&"$_console_in"
}

send() { send_raw "${1//\\/\\\\}\r"; }

# Read what is available (waiting up to 0.2 s for it) into the buffer; fail once the
# console is gone and nothing is left.
_console_fill() {
    local chunk="" rc=0
    IFS= read -r -t 0.2 -N 65536 chunk <&"$_console_out" || rc=$?
    if [ -n "$chunk" ]; then
        printf '%s' "$chunk" >> "$CONSOLE_LOG"
        chunk=${chunk//$'\r'/}
        # CSI sequences (colours, cursor moves) would split the words we look for.
        chunk=$(printf '%s' "$chunk" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g'; printf x)
        _console_buf+=${chunk%x}
        return 0
    fi
    # 0 or >128 (timeout) means the console is still there.
    [ $rc -eq 0 ] || [ $rc -gt 128 ]
}

# console_drain [SECONDS]: append what the console prints in the next SECONDS (2) to
# $CONSOLE_LOG without matching anything: a failing case keeps the guest's last words (an oops,
# a panic) in its transcript.
console_drain() {
    [ -n "$_console_out" ] || return 0
    local until=$((SECONDS + ${1:-2}))
    while [ $SECONDS -lt $until ]; do
        _console_fill || break
    done
}

_console_expect() {
    local mode=$1 re=$2 timeout=${3:-30} deadline line rest consumed
    [ -n "$_console_out" ] || { echo "console: expect without connect" >&2; return 1; }
    deadline=$((SECONDS + timeout))
    while :; do
        if [ "$mode" = line ]; then
            consumed=""
            rest=$_console_buf
            while [[ $rest == *$'\n'* ]]; do
                line=${rest%%$'\n'*}
                rest=${rest#*$'\n'}
                consumed+=$line$'\n'
                if [[ $line =~ $re ]]; then
                    CONSOLE_MATCH=$line
                    _console_buf=$rest
                    return 0
                fi
            done
        elif [[ $_console_buf =~ $re ]]; then
            CONSOLE_MATCH=${BASH_REMATCH[0]}
            rest=${_console_buf#*"$CONSOLE_MATCH"}
            _console_buf=$rest
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            printf 'console: timed out after %ss waiting for %s /%s/; it showed:\n%s\n' \
                "$timeout" "$mode" "$re" "$(printf '%s' "$_console_buf" | tail -n 15)" >&2
            return 1
        fi
        if ! _console_fill; then
            printf 'console: closed while waiting for %s /%s/; it showed:\n%s\n' \
                "$mode" "$re" "$(printf '%s' "$_console_buf" | tail -n 15)" >&2
            return 1
        fi
    done
}

expect_line() { _console_expect line "$@"; }
expect_text() { _console_expect text "$@"; }

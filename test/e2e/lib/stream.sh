# shellcheck shell=bash
# Moving one stream through a guest's network and checking it (case 60, the network soak). The
# guest side runs busybox nc from the console; these are the pieces both use.

# The regex of the line guest_wait_sum prints: "size BYTES SHA256 FILE".
STREAM_SUM_RE='^size [0-9]+ [0-9a-f]{64} '

# guest_wait_sum FILE BYTES TICKS: prints the guest command that waits until FILE holds BYTES
# (at most TICKS × 0.2 s), stops the receiving nc (and the `sleep 900 |` feeding it: a background
# nc reading the console would be stopped by SIGTTIN), and prints the line STREAM_SUM_RE matches.
guest_wait_sum() {
    printf '%s' "i=0; while [ \$(wc -c < $1) -lt $2 ] && [ \$i -lt $3 ]; do sleep 0.2; i=\$((i+1)); done; killall nc sleep 2>/dev/null; echo size \$(wc -c < $1) \$(sha256sum $1)"
}

# wait_size FILE BYTES SILENCE: on the host, until FILE holds BYTES, or has not grown for SILENCE
# seconds (then returns 1); its size is left in SIZE.
wait_size() {
    local prev=-1 still=0
    while :; do
        sleep 1
        SIZE=$(stat -c %s "$1" 2>/dev/null || echo 0)
        [ "$SIZE" -ge "$2" ] && return 0
        if [ "$SIZE" = "$prev" ]; then still=$((still + 1)); else still=0; fi
        [ $still -ge "$3" ] && return 1
        prev=$SIZE
    done
}

# blobdiff ORIGINAL COPY OUT: where a full-length wrong COPY differs from ORIGINAL
# (lib/blobdiff.py), into OUT; returns 1 (and writes nothing) without /usr/bin/python3.
blobdiff() {
    [ -x /usr/bin/python3 ] || return 1
    /usr/bin/python3 "$E2E_ROOT/test/e2e/lib/blobdiff.py" "$1" "$2" > "$3" 2>&1
}

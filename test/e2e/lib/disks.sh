# shellcheck shell=bash
# Helpers for the disk cases (30-39), sourced after lib/standalone.sh.
#
#   pattern NAME BYTES           the bytes "NAME\n" repeated, cut to BYTES (the guest makes the
#                                same with busybox yes/head)
#   disk_toml NAME DRIVER SLOT BLOCKDEV-LINES...
#                                appends a [block_dev.NAME] with the given lines and a
#                                [dev.NAME-dev] of DRIVER at pci-path SLOT using it

pattern() { { yes "$1" || true; } | head -c "$2"; }

disk_toml() {
    local file=$1 name=$2 driver=$3 slot=$4; shift 4
    {
        echo
        echo "[block_dev.$name]"
        local line
        for line in "$@"; do echo "$line"; done
        echo
        echo "[dev.$name-dev]"
        echo "driver = \"$driver\""
        echo "block_dev = \"$name\""
        echo "pci-path = \"$slot\""
    } >> "$file"
    cp "$file" "$E2E_ARTIFACTS/"
}

# wait_disks DEV...             in the guest, wait (up to 30 s) for /dev/DEV... to exist (the
#                               nvme driver probes asynchronously, after the shell prompt)
wait_disks() {
    local devs="" d
    for d in "$@"; do devs+=" /dev/$d"; done
    shell "n=0; while [ \$n -lt 150 ]; do ok=1; for d in$devs; do [ -b \$d ] || ok=0; done; [ \$ok = 1 ] && break; sleep 0.2; n=\$((n+1)); done; echo disks-ready=\$ok" '^disks-ready=1$' 60
}

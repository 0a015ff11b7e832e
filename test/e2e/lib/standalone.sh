# shellcheck shell=bash
# Helpers for cases that run out/propolis-standalone (sourced by those cases after lib/e2e.sh).
#
#   start_vmm NAME CONFIG [ARGS...]  spawn propolis-standalone on CONFIG as NAME (SIGINT and
#                                    SIGTERM at their default dispositions, as for a program a
#                                    person starts at a terminal; a background job of a script
#                                    would inherit SIGINT ignored)
#   vmm_pid NAME                     its process id
#   write_config FILE CPUS MIB [MAIN-LINES...]
#                                    a TOML file booting the demo guest with these vCPUs and MiB,
#                                    extra [main] lines appended (e.g. 'exit_on_reboot = 3')
#   boot_to_shell [TIMEOUT]          connect to ./ttya, wait for the demo guest's banner and prompt
#   shell CMD REGEX [TIMEOUT]        run CMD in the guest shell, wait for an output line matching
#                                    REGEX (left in CONSOLE_MATCH) and the next prompt
#   vm_rss_kib NAME                  the VmRSS of NAME's process, in KiB

E2E_CMDLINE=${E2E_CMDLINE:-console=ttyS0 reboot=k panic=-1 quiet}

start_vmm() {
    local name=$1; shift
    spawn "$name" env --default-signal=INT,TERM "$E2E_PROPOLIS" "$@"
}

vmm_pid() { echo "${_e2e_pids[$1]}"; }

write_config() {
    local file=$1 cpus=$2 mib=$3; shift 3
    {
        echo '[main]'
        echo "name = \"e2e-${cpus}cpu\""
        echo "cpus = $cpus"
        echo "memory = $mib"
        echo "kernel = \"$E2E_GUEST_KERNEL\""
        echo "initrd = \"$E2E_GUEST_INITRD\""
        echo "cmdline = \"$E2E_CMDLINE\""
        local line
        for line in "$@"; do echo "$line"; done
    } > "$file"
    cp "$file" "$E2E_ARTIFACTS/"
}

boot_to_shell() {
    local timeout=${1:-120}
    connect ttya 30
    expect_line 'propolis demo guest' "$timeout"
    note "banner: $CONSOLE_MATCH"
    expect_text '~ # ' 60
}

shell() {
    local cmd=$1 re=$2 timeout=${3:-30}
    send "$cmd"
    expect_line "$re" "$timeout"
    local match=$CONSOLE_MATCH
    expect_text '~ # ' "$timeout"
    CONSOLE_MATCH=$match
}

vm_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$(vmm_pid "$1")/status"; }

#!/usr/bin/env bash
# kvm-sandbox.sh: run a command where /dev/kvm works.
#
#   test/e2e/kvm-sandbox.sh [OPTIONS] [--] CMD [ARGS...]
#
#   --out DIR         DIR (created if missing) is shared read-write at the same path; everything
#                     else the command writes is discarded with the sandbox. Repeatable.
#   --mem MiB         memory of the sandbox VM (default 3072)
#   --cpus N          its vCPUs (default 2)
#   --timeout SEC     stop the command (and the sandbox) after SEC seconds; the exit status is 124
#   --interactive     connect this terminal: by default to the console socket the command creates
#                     (see --console), as `socat - UNIX-CONNECT:./ttya` would; with --console none,
#                     to the command itself (a shell, say). Inside the sandbox, Ctrl-A x aborts it.
#   --console PATH    the socket --interactive attaches to, relative to the working directory
#                     (default ttya, what propolis-standalone creates); "none" for the command's tty
#   --env NAME[=VAL]  pass this environment variable too (PATH, HOME, TERM, USER, LANG, LC_ALL, TZ,
#                     CI and DOTNET_*/PROPOLIS_* ones are always passed). Repeatable.
#   --verbose         show the sandbox's kernel console and its boot time on stderr
#
# Environment: KVM_SANDBOX=force uses the sandbox even where /dev/kvm works; KVM_SANDBOX_APPEND
# adds kernel parameters to the sandbox VM (e.g. "initcall_debug loglevel=8" with --verbose).
# KVM_SANDBOX_QEMU=PATH runs the sandbox VM with that qemu-system-x86_64 (qemu-system-x86_64 for
# the system's; any other gets -L /usr/share/qemu -L /usr/share/seabios) instead of the patched
# one that test/e2e/sandbox-qemu.sh builds once into out/sandbox-qemu/ (the system's QEMU 7.2
# aborts when a nested guest writes CR8, as OVMF does; when that build is impossible, the
# system's is used with a warning saying why). KVM_SANDBOX_TCG_THREAD=single|multi (default
# single): QEMU runs the sandbox's vCPUs in turn on one thread, or each on its own; multi is
# about a quarter faster, but under it the sandbox's own kernel now and then hangs (both CPUs
# looping on a breakpoint the kernel planted while patching its code; test/e2e/README.md).
#
# Where /dev/kvm is usable, CMD runs directly (KVM_SANDBOX=force uses the sandbox anyway; in
# direct mode --interactive runs CMD on this terminal, and you connect to its console from
# another one, as with upstream propolis-standalone). Elsewhere CMD runs in a small Linux VM under
# QEMU's TCG emulation of an AMD EPYC, whose emulated SVM gives the VM a working /dev/kvm:
#   - the VM's root is this machine's / (read-only over 9p) under a tmpfs overlay, so every tool
#     installed here is there, at the same paths, and writes anywhere succeed but are thrown away
#     unless they land under an --out directory;
#   - CMD runs in the same working directory with the environment essentials listed above;
#   - CMD's stdout and stderr come back live and separately (two virtio-serial ports); its stdin
#     is /dev/null unless --interactive; with --interactive and a console socket, CMD's own
#     stdout and stderr are shown once the sandbox ends, so that they do not garble the terminal;
#   - the exit status is CMD's; 124 on --timeout; 125 when the sandbox itself failed (its kernel
#     console is then shown);
#   - stopped with SIGTERM, it first records where the sandbox's CPUs are (see cpu_dump below).
# The kernel, its modules and the sandbox's initramfs are cached under out/sandbox/ and rebuilt
# when this script, its init or the Debian kernel package changes. Needs (installed with apt-get
# when missing): qemu-system-x86, busybox-static, kmod, cpio, socat.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
bad_usage() { printf 'kvm-sandbox.sh: %s (see --help)\n' "$*" >&2; exit 2; }

outs=() envs=() mem=3072 cpus=2 timeout="" interactive=0 console=ttya verbose=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || bad_usage "--out needs a directory"; outs+=("$2"); shift 2 ;;
        --mem) [[ ${2:-} =~ ^[0-9]+$ ]] && [ "$2" -ge 256 ] || bad_usage "--mem needs MiB (at least 256)"; mem=$2; shift 2 ;;
        --cpus) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || bad_usage "--cpus needs a count"; cpus=$2; shift 2 ;;
        --timeout) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || bad_usage "--timeout needs seconds"; timeout=$2; shift 2 ;;
        --interactive) interactive=1; shift ;;
        --console) [ $# -ge 2 ] || bad_usage "--console needs a path or none"; console=$2; shift 2 ;;
        --env) [[ ${2:-} =~ ^[A-Za-z_][A-Za-z0-9_]*(=.*)?$ ]] || bad_usage "--env needs NAME or NAME=VALUE"; envs+=("$2"); shift 2 ;;
        --verbose) verbose=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) bad_usage "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || bad_usage "no command given"
tcg_thread=${KVM_SANDBOX_TCG_THREAD:-single}
[[ $tcg_thread == single || $tcg_thread == multi ]] || bad_usage "KVM_SANDBOX_TCG_THREAD must be single or multi, not '$tcg_thread'"

for i in "${!outs[@]}"; do
    mkdir -p -- "${outs[$i]}" || bad_usage "cannot create --out ${outs[$i]}"
    outs[$i]=$(cd -- "${outs[$i]}" && pwd -P)
    [ "${outs[$i]}" != / ] || bad_usage "--out / would share everything read-write"
done

kvm_usable() { [ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null; }

if [ "${KVM_SANDBOX:-auto}" != force ] && kvm_usable; then
    if [ -n "$timeout" ]; then
        if [ $interactive -eq 1 ]; then exec timeout --foreground -k 10 "$timeout" "$@"; fi
        exec timeout -k 10 "$timeout" "$@"
    fi
    exec "$@"
fi

# ---------------------------------------------------------------------------------------------
# The sandbox image: the Debian kernel and an initramfs of busybox, the modules and our init.

# From here on, a failure to prepare the sandbox is the sandbox's failure, not the command's.
E2E_DIE_STATUS=125
e2e_apt_need qemu-system-x86 busybox-static kmod cpio socat

# Loaded first, in order: what the init needs to reach the host's files and its ports.
SANDBOX_MODULES=(virtio_pci virtio_console virtio_rng 9pnet_virtio 9p overlay)
# Loaded meanwhile on the other vCPU: what the command needs (kvm-amd takes seconds under TCG).
SANDBOX_MODULES_BG=(kvm_amd tun)
# Added to those when the kernel has them (a VMM that finds no /dev/vhost-net moves packets itself).
SANDBOX_MODULES_OPTIONAL=(vhost_net)

build_image() {
    local dir=$E2E_OUT/sandbox stage key
    e2e_kernel_ensure
    key="$(e2e_hash "$HERE/kvm-sandbox.sh" "$HERE/sandbox-init.sh" "$HERE/lib/common.sh" /bin/busybox) $KERNEL_RELEASE"
    IMAGE_KERNEL=$(e2e_kernel_vmlinux)
    IMAGE_INITRD=$dir/initramfs.img
    if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$key" ] && [ -f "$IMAGE_INITRD" ]; then
        return 0
    fi
    # Another kvm-sandbox.sh may be building it too: one builds, the other then finds it done.
    local lock
    mkdir -p "$E2E_OUT"
    exec {lock}>"$E2E_OUT/.sandbox.lock"
    flock "$lock"
    if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$key" ] && [ -f "$IMAGE_INITRD" ]; then
        exec {lock}>&-
        return 0
    fi
    e2e_log "building the sandbox image ($KERNEL_RELEASE)"
    rm -rf "$dir" && mkdir -p "$dir"
    stage=$dir/stage
    mkdir -p "$stage"/{bin,dev,proc,sys,mnt,etc}
    cp /bin/busybox "$stage/bin/busybox"
    install -m 0755 "$HERE/sandbox-init.sh" "$stage/init"
    e2e_modules_install "$stage" modules.load "${SANDBOX_MODULES[@]}"
    local bg=("${SANDBOX_MODULES_BG[@]}") m
    for m in "${SANDBOX_MODULES_OPTIONAL[@]}"; do
        modprobe -d "$KERNEL_TREE" -S "$KERNEL_RELEASE" --show-depends "$m" >/dev/null 2>&1 && bg+=("$m")
    done
    e2e_modules_install "$stage" modules-bg.load "${bg[@]}"
    (cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) \
        | gzip -1 > "$IMAGE_INITRD.tmp"
    mv "$IMAGE_INITRD.tmp" "$IMAGE_INITRD"
    rm -rf "$stage"
    echo "$key" > "$dir/stamp"
    exec {lock}>&-
}
build_image

# ---------------------------------------------------------------------------------------------
# The job: parameters for the init (busybox sh) and the script it runs in the chroot (bash).

sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

jobroot=${TMPDIR:-/tmp}
[[ $jobroot =~ [[:space:]] ]] && jobroot=/tmp
job=$(mktemp -d "$jobroot/kvm-sandbox.XXXXXX")
qpid=""
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null || true
    rm -rf "$job"
}
# cpu_dump: when the sandbox is stopped from outside (run.sh's watchdog sends SIGTERM to a sandbox
# that has gone silent), first ask QEMU's monitor where its CPUs are: `info registers -a`, twice
# a second apart, into out/sandbox-stopped-TIME.txt, and one line on stderr with each CPU's RIP.
# A CPU at the same place twice is where the sandbox's kernel is stuck. The RIPs are named as
# symbols when out/sandbox/kallsyms exists (Debian's System.map is a placeholder; the kernel runs
# with nokaslr, so its addresses do not change between boots). To make it, once:
#   test/e2e/kvm-sandbox.sh --out out/sandbox -- sh -c 'grep " [Tt] " /proc/kallsyms > out/sandbox/kallsyms'
cpu_dump() {
    [ -n "$qpid" ] && [ -S "$job/monitor" ] || return 0
    local file map="" rips r sym where=""
    file=$E2E_OUT/sandbox-stopped-$(date +%Y%m%dT%H%M%S).txt
    hmp() { timeout 3 socat -t 2 - "UNIX-CONNECT:$job/monitor" 2>&1 | tr -d '\r'; }
    {
        for round in 1 2; do
            [ $round = 2 ] && sleep 1
            echo "=== info registers -a ($round of 2, $(date +%T))"
            printf 'info registers -a\n' | hmp | grep -v '^(qemu)\|^QEMU .* monitor'
        done
        # The top of each CPU's stack: in an exception or interrupt handler, the first word is
        # the RIP it interrupted.
        echo "=== the top of each CPU's stack (x /8gx RSP, from the first round)"
        grep -o 'RSP=[0-9a-fA-F]*' "$file" | head -n "$(($(grep -c '^CPU#' "$file") / 2))" | cut -d= -f2 \
            | { i=0; while read -r sp; do printf 'cpu %d\nx /8gx 0x%s\n' $i "$sp"; i=$((i + 1)); done; } \
            | hmp | grep -a '^[0-9a-f]\{16\}:'
        echo "=== the sandbox kernel's console (last 60 lines)"
        tail -n 60 "$job/console"
    } > "$file" 2>&1 || true
    rips=$(grep -o 'RIP=[0-9a-fA-F]*' "$file" | cut -d= -f2 | tr 'A-F' 'a-f')
    [ -s "$E2E_OUT/sandbox/kallsyms" ] && map=$(sort "$E2E_OUT/sandbox/kallsyms")
    for r in $rips; do
        sym=$r
        if [ -n "$map" ]; then
            sym=$(printf '%s\n' "$map" | awk -v a="$r" '$1 > a { exit } $2 ~ /^[Tt]$/ { s = $1 " " $3 } END { print s }')
            [ -n "$sym" ] && sym="${sym#* }+0x$(printf '%x' $((16#$r - 16#${sym%% *})))"
        fi
        where="$where ${sym:-$r}"
    done
    [ -n "$map" ] || [ -z "$where" ] || where="$where (no out/sandbox/kallsyms to name them: see cpu_dump in kvm-sandbox.sh)"
    echo "kvm-sandbox.sh: stopped from outside; the sandbox's CPUs were at (twice, 1 s apart):${where:- (the monitor did not answer)}; registers in $file" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'cpu_dump; exit 143' TERM
trap 'exit 143' HUP
: > "$job/stdout"; : > "$job/stderr"; : > "$job/ctl"; : > "$job/console"

cwd=$(pwd -P)
tmpfs_tmp=1
case "$cwd/" in /tmp/*) tmpfs_tmp=0 ;; esac
{
    echo "SB_BASH=$(sq "$BASH")"
    echo "SB_INTERACTIVE=$interactive"
    echo "SB_TMPFS_TMP=$tmpfs_tmp"
    echo "SB_OUT_COUNT=${#outs[@]}"
    for i in "${!outs[@]}"; do echo "SB_OUT_$i=$(sq "${outs[$i]}")"; done
} > "$job/params"

{
    echo "# kvm-sandbox.sh job"
    for name in PATH HOME TERM USER LOGNAME LANG LC_ALL TZ CI \
                $(compgen -e | grep -E '^(DOTNET_|PROPOLIS_|E2E_)' || true); do
        [ -n "${!name+x}" ] && printf 'export %s=%q\n' "$name" "${!name}"
    done
    for e in "${envs[@]}"; do
        if [[ $e == *=* ]]; then printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
        elif [ -n "${!e+x}" ]; then printf 'export %s=%q\n' "$e" "${!e}"; fi
    done
    printf 'cd %q || exit 125\n' "$cwd"
    printf 'cmd=('; printf ' %q' "$@"; printf ' )\n'
    if [ $interactive -eq 0 ]; then
        echo 'exec "${cmd[@]}" </dev/null >/dev/virtio-ports/stdout 2>/dev/virtio-ports/stderr'
    elif [ "$console" = none ]; then
        echo 'exec "${cmd[@]}"'
    else
        printf 'console=%q\n' "$console"
        cat <<'EOF'
"${cmd[@]}" </dev/null >/dev/virtio-ports/stdout 2>/dev/virtio-ports/stderr &
pid=$!
while [ ! -S "$console" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
if [ -S "$console" ]; then
    printf '[kvm-sandbox: connected to %s; Ctrl-A x aborts the sandbox]\n' "$console"
    socat -,raw,echo=0 "UNIX-CONNECT:$console"
    printf '\n[kvm-sandbox: %s closed]\n' "$console"
fi
wait "$pid"
EOF
    fi
} > "$job/job.sh"

# ---------------------------------------------------------------------------------------------
# The VM.

# The QEMU: KVM_SANDBOX_QEMU if set; else our patched build (sandbox-qemu.sh, built once), without
# which a nested guest that writes CR8 (OVMF does) aborts the whole sandbox; else, if that build
# is impossible here, the system's, with a warning.
qemu_bin=${KVM_SANDBOX_QEMU:-}
qemu_kind=given
if [ -z "$qemu_bin" ] && qemu_bin=$("$HERE/sandbox-qemu.sh"); then
    qemu_kind=patched
elif [ -z "$qemu_bin" ]; then
    qemu_kind=system
    qemu_bin="qemu-system-x86_64"
    echo "kvm-sandbox.sh: WARNING: no patched QEMU (sandbox-qemu.sh said why, above); using" \
         "$(command -v qemu-system-x86_64 || echo qemu-system-x86_64), which aborts as soon as a" \
         "nested guest writes CR8 with an interrupt pending (OVMF does; Linux booted directly does not)" >&2
fi
# A QEMU other than the system's (ours has no firmware of its own) gets the installed firmware:
# qemu-system-data's, and SeaBIOS, which /usr/share/qemu links to.
qemu_data=()
qemu_path=$(command -v "$qemu_bin") || e2e_die "no QEMU at $qemu_bin (KVM_SANDBOX_QEMU?)"
if [ "$(readlink -f "$qemu_path")" != "$(readlink -f /usr/bin/qemu-system-x86_64)" ]; then
    qemu_data=(-L /usr/share/qemu -L /usr/share/seabios)
fi

# loglevel=4: the sandbox kernel's errors (RCU stalls, lockups) reach its console, which is shown
# when the sandbox dies and kept with the record of a stopped one (cpu_dump).
loglevel="quiet loglevel=4"
[ $verbose -eq 1 ] && loglevel="loglevel=6"
qemu=("$qemu_bin" "${qemu_data[@]}" -M q35 -accel "tcg,thread=$tcg_thread,tb-size=256" -cpu EPYC -smp "$cpus" -m "$mem"
      -nodefaults -no-user-config -display none -no-reboot -net none
      -kernel "$IMAGE_KERNEL" -initrd "$IMAGE_INITRD"
      -append "console=ttyS0 $loglevel panic=-1 oops=panic mitigations=off nokaslr rdinit=/init sandbox.job=$job sandbox.qemu=$qemu_kind ${KVM_SANDBOX_APPEND:-}"
      -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
      -device virtio-rng-pci
      -device virtio-serial-pci
      -chardev "file,id=ctl,path=$job/ctl" -device virtserialport,chardev=ctl,name=ctl
      -chardev "file,id=out,path=$job/stdout" -device virtserialport,chardev=out,name=stdout
      -chardev "file,id=err,path=$job/stderr" -device virtserialport,chardev=err,name=stderr)
for i in "${!outs[@]}"; do
    qemu+=(-virtfs "local,path=${outs[$i]},mount_tag=out$i,security_model=none,multidevs=remap")
done
tmo=()
[ -n "$timeout" ] && tmo=(timeout -k 10 "$timeout")

started=$EPOCHREALTIME
elapsed() { awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
if [ $interactive -eq 1 ]; then
    qemu+=(-chardev stdio,id=tty,mux=on,signal=off -serial chardev:tty -mon chardev=tty,mode=readline)
    [ -n "$timeout" ] && tmo=(timeout --foreground -k 10 "$timeout")
    set +e
    "${tmo[@]}" "${qemu[@]}" 2>"$job/qemu.log"
    qrc=$?
    set -e
    printf '\n' >&2
    cat "$job/stdout"
    cat "$job/stderr" >&2
else
    qemu+=(-serial "file:$job/console" -monitor "unix:$job/monitor,server=on,wait=off")
    "${tmo[@]}" "${qemu[@]}" </dev/null >"$job/qemu.log" 2>&1 &
    qpid=$!
    tail -q -c +1 --pid="$qpid" -f "$job/stdout" &
    tail_out=$!
    tail -q -c +1 --pid="$qpid" -f "$job/stderr" >&2 &
    tail_err=$!
    tail_con="" tail_ctl=""
    if [ $verbose -eq 1 ]; then
        tail -q -c +1 --pid="$qpid" -f "$job/console" | sed 's/^/[sandbox] /' >&2 &
        tail_con=$!
        tail -q -c +1 --pid="$qpid" -f "$job/ctl" | while read -r tag _; do
            [ "$tag" = @@SANDBOX-READY ] && echo "[sandbox] the command starts $(elapsed)s after QEMU did" >&2
        done &
        tail_ctl=$!
    fi
    set +e
    wait "$qpid"
    qrc=$?
    set -e
    qpid=""
    wait $tail_out $tail_err $tail_con $tail_ctl 2>/dev/null || true
fi

if [ $verbose -eq 1 ]; then
    echo "[sandbox] QEMU ran for $(elapsed)s" >&2
fi

if [ -n "$timeout" ] && [ $qrc -eq 124 ]; then
    echo "kvm-sandbox.sh: timed out after ${timeout}s: $*" >&2
    exit 124
fi
status=$(sed -n 's/^@@SANDBOX-EXIT \([0-9]*\).*/\1/p' "$job/ctl" | tail -n1)
if [ -n "$status" ]; then
    exit "$status"
fi
{
    echo "kvm-sandbox.sh: the sandbox VM ended (QEMU status $qrc) without reporting the command's status"
    grep '^@@SANDBOX-ERROR' "$job/ctl" | sed 's/^@@SANDBOX-ERROR /kvm-sandbox.sh: /' || true
    if [ -s "$job/console" ]; then echo "--- its console (last 40 lines):"; tail -n 40 "$job/console"; fi
    if grep -qv 'TCG doesn.t support requested feature' "$job/qemu.log"; then
        echo "--- QEMU:"; grep -v 'TCG doesn.t support requested feature' "$job/qemu.log" | tail -n 20
    fi
} >&2
exit 125

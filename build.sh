#!/usr/bin/env bash
# propolis-standalone build driver.
#
#   ./build.sh            install what the build needs, publish out/propolis-standalone, dsc and
#                         crucible-downstairs (NativeAOT), prepare the demo guest in out/guest
#   ./build.sh run [ARGS] build, prepare the demo guest, boot it (examples/standalone.toml by default)
#   ./build.sh test       build and run every test: unit, toml-test, end-to-end
#   ./build.sh bench      build and run the benchmark programs (bench boot [--runs N]: only the
#                         boot benchmark, this VMM against QEMU -accel kvm; see test/Bench/README.md)
#
# Everything the project needs is installed from here (Debian packages through apt-get,
# NuGet packages through dotnet restore); nothing else is assumed on the machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
OUT="$ROOT/out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# apt_need PKG...: install the Debian packages that are not installed yet.
apt_updated=0
apt_need() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ $apt_updated -eq 0 ]; then
        log "apt-get update"
        $sudo apt-get update -qq >/dev/null
        apt_updated=1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_deps() {
    command -v dotnet >/dev/null || die "the .NET SDK is not installed (global.json pins $(grep -o '"version": *"[^"]*"' global.json | cut -d'"' -f4)); install it from Microsoft's packages and retry"
    # NativeAOT links with the system toolchain.
    apt_need gcc libc6-dev zlib1g-dev
}

publish() {
    build_deps
    log "publishing propolis-standalone (NativeAOT) into out/"
    dotnet publish Propolis.Standalone/Propolis.Standalone.csproj -c Release -r linux-x64 \
        -o "$OUT" -nologo -v quiet -p:DebugType=none
    for extra in "${EXTRA_PUBLISH[@]}"; do
        [ -f "$extra" ] || continue
        dotnet publish "$extra" -c Release -r linux-x64 -o "$OUT" -nologo -v quiet -p:DebugType=none
    done
    log "built $OUT/propolis-standalone"
}

# Further executables published beside the main one (the Crucible downstairs and dsc).
EXTRA_PUBLISH=(
    Propolis.Crucible.Downstairs/Propolis.Crucible.Downstairs.csproj
    Propolis.Crucible.Dsc/Propolis.Crucible.Dsc.csproj
)

# Totals over every suite, printed as the last line of `./build.sh test`.
TOTAL_PASSED=0
TOTAL_FAILED=0
add_totals() { TOTAL_PASSED=$((TOTAL_PASSED + $1)); TOTAL_FAILED=$((TOTAL_FAILED + $2)); }

# The demo guest (a Debian kernel and a busybox initramfs) that examples/standalone.toml boots.
demo_guest() {
    test/e2e/demo-guest.sh
}

unit_tests() {
    log "unit tests"
    local logf rc=0 p f
    logf=$(mktemp)
    dotnet test propolis.sln -c Release -nologo -v quiet --logger "console;verbosity=minimal" 2>&1 | tee "$logf" || rc=$?
    # "Passed!  - Failed:     0, Passed:    12, Skipped: ..." once per test assembly.
    p=$(sed -n 's/.*Failed: *[0-9]*, Passed: *\([0-9]*\),.*/\1/p' "$logf" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/.*Failed: *\([0-9]*\), Passed:.*/\1/p' "$logf" | awk '{s+=$1} END {print s+0}')
    rm -f "$logf"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a build or runner failure counts as one
    echo "unit: $p passed, $f failed"
    add_totals "$p" "$f"
}

e2e_tests() {
    [ -x test/e2e/run.sh ] || return 0
    log "end-to-end tests"
    local logf rc=0 p f
    logf=$(mktemp)
    test/e2e/run.sh 2>&1 | tee "$logf" || rc=$?
    p=$(sed -n 's/^e2e: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$logf" | tail -n 1)
    f=$(sed -n 's/^e2e: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$logf" | tail -n 1)
    rm -f "$logf"
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    add_totals "$p" "$f"
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
    build)
        publish
        demo_guest
        ;;
    run)
        publish
        demo_guest
        if [ $# -eq 0 ]; then set -- examples/standalone.toml; fi
        if [ -x test/e2e/kvm-sandbox.sh ] && [ ! -w /dev/kvm ]; then
            exec test/e2e/kvm-sandbox.sh --interactive -- "$OUT/propolis-standalone" "$@"
        fi
        exec "$OUT/propolis-standalone" "$@"
        ;;
    test)
        publish
        unit_tests
        e2e_tests
        echo "total: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
        [ "$TOTAL_FAILED" -eq 0 ]
        ;;
    bench)
        publish
        apt_need ovmf   # the boot benchmark's firmware rows boot /usr/share/ovmf/OVMF.fd
        [ -x test/Bench/run.sh ] || die "no benchmark programs yet"
        exec test/Bench/run.sh "$@"
        ;;
    -h|--help|help)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        die "unknown command '$cmd' (try ./build.sh help)"
        ;;
esac

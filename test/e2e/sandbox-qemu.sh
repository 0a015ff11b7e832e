#!/usr/bin/env bash
# sandbox-qemu.sh: print the path of the QEMU that kvm-sandbox.sh runs its VM with.
#
#   test/e2e/sandbox-qemu.sh [--rebuild]
#
# That is a small TCG-only qemu-system-x86_64 built from the Debian source of the installed QEMU
# (qemu-system-x86, bookworm's 7.2) with our patches test/e2e/patches/qemu-7.2-*.patch, applied
# in name order:
#   svm-cr8-bql: stock QEMU aborts (tcg_handle_interrupt: assertion failed:
#     qemu_mutex_iothread_locked) as soon as a nested guest under the sandbox's KVM writes CR8 with
#     a virtual interrupt pending, which OVMF's interrupt handlers do; Linux booted directly never
#     does.
#   svm-vmrun-events: an interrupt the sandbox's KVM injects at VMRUN is delivered a second time,
#     ignoring the guest's IF, when the vCPU is kicked before its next exit (guests die of a double
#     fault at entry_SYSCALL_64+0, or lose interrupts and stall); and two smaller VMRUN fixes.
#
# It is built once (some minutes on two cores) and cached under out/sandbox-qemu/; it is rebuilt
# when this script, a patch or the installed QEMU version changes (--rebuild forces it). Only
# what the sandbox uses is built: q35, TCG, virtio-9p, virtio-serial, no GUI, tools or docs.
# The sources come from deb.debian.org's pool (the .dsc and its tarballs, checked against the
# .dsc's SHA-256 sums); build dependencies are installed with apt-get when missing.
#
# The binary has no firmware of its own: run it with -L /usr/share/qemu -L /usr/share/seabios
# (the installed qemu-system-data and seabios), as kvm-sandbox.sh does.
#
# Exit status 0: the path is on stdout. Otherwise the reason is on stderr (a failed build is not
# retried for the same key: see out/sandbox-qemu/failed and build.log; --rebuild retries).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

rebuild=0
case "${1:-}" in
    --rebuild) rebuild=1 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    "") ;;
    *) printf 'sandbox-qemu.sh: unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
esac

PATCHES=("$HERE"/patches/qemu-7.2-*.patch)
DIR=$E2E_OUT/sandbox-qemu
BIN=$DIR/qemu-system-x86_64
POOLS=(http://deb.debian.org/debian/pool/main/q/qemu
       http://deb.debian.org/debian-security/pool/updates/main/q/qemu)
BUILD_DEPS=(gcc libc6-dev make meson ninja-build pkg-config python3 dpkg-dev xz-utils curl
            libglib2.0-dev libpixman-1-dev zlib1g-dev libattr1-dev libcap-ng-dev libfdt-dev)

e2e_apt_need qemu-system-x86
srcver=$(dpkg-query -W -f='${source:Version}' qemu-system-x86 2>/dev/null) \
    || e2e_die "cannot tell the installed qemu-system-x86's source version"
case "$srcver" in
    *:7.2+dfsg-*|7.2+dfsg-*) ;;
    *) e2e_die "the patches are for Debian's QEMU 7.2 (bookworm); the installed QEMU is $srcver" ;;
esac
key="$(e2e_hash "$HERE/sandbox-qemu.sh" "${PATCHES[@]}") qemu $srcver"

fresh() { [ -x "$BIN" ] && [ -f "$DIR/stamp" ] && [ "$(cat "$DIR/stamp")" = "$key" ]; }
failed_before() { [ -f "$DIR/failed" ] && [ "$(head -n1 "$DIR/failed")" = "$key" ]; }

if [ $rebuild -eq 0 ] && fresh; then echo "$BIN"; exit 0; fi

mkdir -p "$E2E_OUT"
exec {lock}>"$E2E_OUT/.sandbox-qemu.lock"
flock "$lock"
if [ $rebuild -eq 0 ] && fresh; then echo "$BIN"; exit 0; fi
if [ $rebuild -eq 0 ] && failed_before; then
    e2e_die "$(tail -n +2 "$DIR/failed") (failed before for this version; see $DIR/build.log; --rebuild retries)"
fi

fail() {
    { echo "$key"; echo "$*"; } > "$DIR/failed"
    e2e_die "$*"
}

rm -rf "$DIR" && mkdir -p "$DIR"
started=$SECONDS
e2e_apt_need "${BUILD_DEPS[@]}"

# The Debian source package: the .dsc, then the files it lists, each checked against it.
ver=${srcver#*:}
dsc=qemu_$ver.dsc
mkdir -p "$DIR/dl"
pool=""
for p in "${POOLS[@]}"; do
    if curl -fsS --retry 3 -o "$DIR/dl/$dsc" "$p/$dsc" 2>/dev/null; then pool=$p; break; fi
done
[ -n "$pool" ] || e2e_die "cannot download $dsc from ${POOLS[*]}"
sums=$(sed -n '/^Checksums-Sha256:/,/^[^ ]/{/^ /p}' "$DIR/dl/$dsc")
[ -n "$sums" ] || fail "$dsc lists no SHA-256 sums"
while read -r sum _ name; do
    curl -fsS --retry 3 -o "$DIR/dl/$name" "$pool/$name" || e2e_die "cannot download $pool/$name"
    echo "$sum  $DIR/dl/$name" | sha256sum -c --quiet - >/dev/null 2>&1 \
        || fail "$name does not match the SHA-256 sum in $dsc"
done <<< "$sums"

e2e_log "building a patched QEMU $ver for the sandbox (once; takes minutes, log: $DIR/build.log)"
log=$DIR/build.log
: > "$log"
run() { "$@" >>"$log" 2>&1; }
# The sums were checked above; the .dsc's signature is not (no keyring needed).
run dpkg-source --no-check -x "$DIR/dl/$dsc" "$DIR/src" || fail "dpkg-source -x $dsc failed"
rm -rf "$DIR/dl" "$DIR"/qemu_*.tar.*   # dpkg-source leaves a copy of the tarball beside src/
for patch in "${PATCHES[@]}"; do
    run patch -d "$DIR/src" -p1 --forward -i "$patch" || fail "$(basename "$patch") does not apply to $ver"
done

# Everything off (--without-default-features), then what kvm-sandbox.sh's command line needs:
# TCG, virtfs (needs libattr and libcap-ng), libfdt (x86_64-softmmu requires it, for microvm).
# q35, virtio-serial, -kernel/-initrd, file/stdio chardevs are always there. No KVM: this QEMU
# only ever runs where /dev/kvm is missing.
mkdir -p "$DIR/src/build"
(cd "$DIR/src/build" && run nice -n 10 ../configure \
    --target-list=x86_64-softmmu --without-default-features \
    --enable-tcg --disable-kvm --disable-xen \
    --enable-virtfs --enable-attr --enable-cap-ng --enable-fdt=system \
    --disable-docs --disable-tools --disable-guest-agent --disable-debug-info --disable-werror) \
    || fail "configure failed (last lines of $log: $(tail -n 3 "$log" | tr '\n' ' '))"
run nice -n 10 ninja -C "$DIR/src/build" -j2 qemu-system-x86_64 \
    || fail "the build failed (last lines of $log: $(tail -n 3 "$log" | tr '\n' ' '))"
install -m 0755 "$DIR/src/build/qemu-system-x86_64" "$BIN.tmp"
# The one thing this binary is for: check that it runs and has what the sandbox asks of it.
"$BIN.tmp" -L /usr/share/qemu -L /usr/share/seabios -M q35 -accel tcg -device help 2>/dev/null \
    | grep -q '"virtio-9p-pci"' || fail "the built QEMU has no virtio-9p-pci"
mv "$BIN.tmp" "$BIN"
rm -rf "$DIR/src"
echo "$key" > "$DIR/stamp"
e2e_log "built $BIN in $((SECONDS - started))s"
exec {lock}>&-
echo "$BIN"

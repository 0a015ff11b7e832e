# shellcheck shell=bash
# Helpers shared by the end-to-end scripts (kvm-sandbox.sh, demo-guest.sh, run.sh).
# Source it; it defines functions and the variables E2E_ROOT (the repository) and
# E2E_OUT (its out/ directory) and changes nothing else.
#
#   e2e_apt_need PKG...         install the Debian packages that are missing
#   e2e_kernel_ensure           set KERNEL_RELEASE, KERNEL_TREE, KERNEL_VMLINUZ to an unpacked,
#                               depmod'ed Debian kernel under out/kernel/ (downloaded once)
#   e2e_modules_install DEST LIST M...
#                               copy modules M (and what they depend on) from the kernel tree
#                               into DEST/lib/modules/, and write DEST/etc/LIST: the .ko paths
#                               in load order, one a line, for an init's insmod loop (a module
#                               already in another DEST/etc/*.load list is left out)
#   e2e_kernel_vmlinux          print the path of the kernel as a PVH-bootable ELF
#   e2e_hash FILE...            a short content hash of files (cache keys)

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
E2E_OUT=${E2E_OUT:-$E2E_ROOT/out}

e2e_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
e2e_die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit "${E2E_DIE_STATUS:-1}"; }

_e2e_apt_updated=0
_e2e_apt_update() {
    [ $_e2e_apt_updated -eq 1 ] && return 0
    e2e_log "apt-get update"
    $(_e2e_sudo) apt-get update -qq >/dev/null || e2e_die "apt-get update failed"
    _e2e_apt_updated=1
}
_e2e_sudo() { [ "$(id -u)" -eq 0 ] || echo sudo; }

e2e_apt_need() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || e2e_die "missing packages (${missing[*]}) and no apt-get to install them"
    _e2e_apt_update
    e2e_log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $(_e2e_sudo) apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || e2e_die "apt-get install ${missing[*]} failed"
}

e2e_hash() { cat "$@" | sha256sum | cut -c1-16; }

# The Debian kernel package to use: $E2E_KERNEL_PACKAGE if set (e.g. linux-image-6.1.0-56-amd64),
# else whatever the linux-image-amd64 meta-package points at in the apt lists.
_e2e_kernel_package() {
    if [ -n "${E2E_KERNEL_PACKAGE:-}" ]; then echo "$E2E_KERNEL_PACKAGE"; return; fi
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    if [ -z "$pkg" ]; then
        _e2e_apt_update
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    fi
    [ -n "$pkg" ] || e2e_die "cannot tell which linux-image-*-amd64 package linux-image-amd64 depends on"
    echo "$pkg"
}

e2e_kernel_ensure() {
    e2e_apt_need kmod cpio gzip
    local pkg dir release
    if [ -z "${E2E_KERNEL_PACKAGE:-}" ] && [ -f "$E2E_OUT/kernel/current" ] \
        && { [ ! -d /var/lib/apt/lists ] || [ "$E2E_OUT/kernel/current" -nt /var/lib/apt/lists ]; }; then
        # Resolved since the apt lists last changed (or there are none: a fresh machine with a
        # warm out/): keep what was unpacked before without asking apt again.
        pkg=$(cat "$E2E_OUT/kernel/current")
    else
        pkg=$(_e2e_kernel_package)
    fi
    release=${pkg#linux-image-}
    dir=$E2E_OUT/kernel/$release
    mkdir -p "$E2E_OUT/kernel"
    local lock
    exec {lock}>"$E2E_OUT/kernel/.lock"
    flock "$lock"
    if [ ! -f "$dir/.complete" ]; then
        e2e_log "fetching the Debian kernel $pkg"
        rm -rf "$dir" && mkdir -p "$dir/deb"
        (cd "$dir/deb" && apt-get download "$pkg" >/dev/null 2>&1) \
            || { _e2e_apt_update; (cd "$dir/deb" && apt-get download "$pkg" >/dev/null 2>&1); } \
            || { rm -rf "$dir"; e2e_die "apt-get download $pkg failed (is it still in the archive? set E2E_KERNEL_PACKAGE)"; }
        local deb
        deb=$(ls "$dir"/deb/*.deb 2>/dev/null | head -n1)
        [ -n "$deb" ] || e2e_die "apt-get download $pkg left no .deb"
        dpkg-deb -x "$deb" "$dir/tree" || e2e_die "cannot unpack $deb"
        rm -rf "$dir/deb"
        [ -d "$dir/tree/lib/modules/$release" ] || e2e_die "$pkg has no lib/modules/$release"
        depmod -b "$dir/tree" "$release" || e2e_die "depmod failed on $pkg"
        touch "$dir/.complete"
    fi
    echo "$pkg" > "$E2E_OUT/kernel/current"
    exec {lock}>&-
    KERNEL_RELEASE=$release
    KERNEL_TREE=$dir/tree
    KERNEL_VMLINUZ=$dir/tree/boot/vmlinuz-$release
    [ -f "$KERNEL_VMLINUZ" ] || e2e_die "no $KERNEL_VMLINUZ in $pkg"
}

e2e_modules_install() {
    local dest=$1 list=$2; shift 2
    local m line ko rel deps
    mkdir -p "$dest/etc"
    : > "$dest/etc/$list"
    for m in "$@"; do
        deps=$(modprobe -d "$KERNEL_TREE" -S "$KERNEL_RELEASE" --show-depends "$m" 2>/dev/null) \
            || e2e_die "module $m is not in $KERNEL_RELEASE"
        while read -r line; do
            case "$line" in
                insmod\ *) ko=${line#insmod }; ko=${ko%% *} ;;
                *) continue ;;   # "builtin NAME": nothing to load
            esac
            rel=${ko#"$KERNEL_TREE"/}
            grep -qxF "/$rel" "$dest"/etc/*.load && continue
            mkdir -p "$dest/$(dirname "$rel")"
            cp "$ko" "$dest/$rel"
            echo "/$rel" >> "$dest/etc/$list"
        done <<< "$deps"
    done
}

# e2e_kernel_vmlinux: print the path of the uncompressed kernel (an ELF with a PVH entry note)
# taken out of the bzImage, extracted once. QEMU boots it directly, skipping SeaBIOS's real-mode
# loader and the in-guest xz decompression, which take seconds under TCG.
e2e_kernel_vmlinux() {
    local out=${KERNEL_TREE%/tree}/vmlinux off lock
    exec {lock}>"$E2E_OUT/kernel/.lock"
    flock "$lock"
    if [ ! -s "$out" ]; then
        e2e_apt_need xz-utils binutils
        # The payload is an xz stream (CONFIG_KERNEL_XZ) followed by the bzImage's trailer;
        # xz reports the trailer as corruption after writing the whole kernel.
        for off in $(LC_ALL=C grep -abo $'\xfd7zXZ' "$KERNEL_VMLINUZ" | cut -d: -f1); do
            tail -c +$((off + 1)) "$KERNEL_VMLINUZ" | xz -dc > "$out.tmp" 2>/dev/null
            if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] \
                && readelf -n "$out.tmp" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)'; then
                mv "$out.tmp" "$out"
                break
            fi
        done
        rm -f "$out.tmp"
        [ -s "$out" ] || e2e_die "cannot extract a PVH-bootable vmlinux from $KERNEL_VMLINUZ"
    fi
    exec {lock}>&-
    echo "$out"
}

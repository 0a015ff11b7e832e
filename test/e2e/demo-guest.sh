#!/usr/bin/env bash
# demo-guest.sh: prepare the demo guest that `./build.sh run` and the end-to-end tests boot.
#
#   test/e2e/demo-guest.sh [--with TOOL[,TOOL...]] [--print]
#
# Writes into out/guest/:
#   vmlinuz         Debian's generic 6.1 amd64 kernel (bzImage; 8250 UART built in)
#   vmlinux         the same kernel as an uncompressed ELF with a PVH entry point (boots without
#                   the in-guest xz decompression, which is slow when the guest is emulated)
#   initramfs.img   gzip'd cpio (newc) of busybox-static and the kernel modules for the devices a
#                   propolis machine offers (virtio-pci, virtio-blk, virtio-net, virtio-rng, nvme,
#                   ext4, vfat/iso9660 + code pages for cloud-init disks). Its /init mounts
#                   /proc /sys /dev /dev/pts /tmp /run, loads the drivers of the PCI and virtio
#                   devices present (file systems load on demand), prints the banner line
#                   "propolis demo guest" on the console and runs a root shell with job control
#                   on it (prompt "~ # "), respawned when it exits. `poweroff` stops the guest.
# --with TOOL,...   also put these programs (fio, iperf3, ...: installed with apt-get when missing)
#                   and the shared libraries they load into the image, which is then written as
#                   initramfs+TOOL+....img beside the plain one.
# --print           print the initramfs path on stdout.
# Everything is cached: an image is rebuilt only when this script, busybox, the kernel package or
# a --with program changes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
tools=() print=0
while [ $# -gt 0 ]; do
    case "$1" in
        --with) [ -n "${2:-}" ] || e2e_die "--with needs program names"; IFS=, read -r -a more <<< "$2"; tools+=("${more[@]}"); shift 2 ;;
        --print) print=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) e2e_die "unknown argument '$1' (see --help)" ;;
    esac
done

GUEST_MODULES=(virtio_pci virtio_blk virtio_net virtio_rng nvme ext4 vfat nls_ascii nls_cp437 nls_iso8859_1 nls_utf8 isofs pvpanic-mmio)
# Debian packages of the programs --with knows by name; any other name must already be on PATH.
declare -A TOOL_PACKAGE=([fio]=fio [iperf3]=iperf3 [stress-ng]=stress-ng)

dir=$E2E_OUT/guest
mkdir -p "$dir"
# One builder at a time (./build.sh run and a test run may start together).
exec {lock}>"$dir/.lock"
flock "$lock"
e2e_apt_need busybox-static cpio gzip
e2e_kernel_ensure

name=initramfs
tool_paths=() tool_libs=()
# tool_libraries PROGRAM: the shared libraries the dynamic linker loads for it (paths, one a line).
tool_libraries() {
    ldd "$1" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
}
if [ ${#tools[@]} -gt 0 ]; then
    mapfile -t tools < <(printf '%s\n' "${tools[@]}" | sort -u)
    for t in "${tools[@]}"; do
        [[ $t =~ ^[A-Za-z0-9._+-]+$ ]] || e2e_die "--with: '$t' is not a program name"
        if ! command -v "$t" >/dev/null && [ -n "${TOOL_PACKAGE[$t]:-}" ]; then
            e2e_apt_need "${TOOL_PACKAGE[$t]}"
        fi
        p=$(command -v "$t") || e2e_die "--with: no program '$t' on PATH (and no known Debian package for it)"
        tool_paths+=("$(readlink -f "$p")")
        # Every shared library must resolve here: the image gets what the dynamic linker finds.
        if ldd "$p" 2>/dev/null | grep -q 'not found'; then
            e2e_die "--with: $p needs libraries that are not installed: $(ldd "$p" | awk '/not found/ { print $1 }' | tr '\n' ' ')"
        fi
        mapfile -t -O "${#tool_libs[@]}" tool_libs < <(tool_libraries "$p")
        name+="+$t"
    done
fi
image=$dir/$name.img

# (The libraries are in the key too: an upgraded library rebuilds the image.)
key="$(e2e_hash "$HERE/demo-guest.sh" "$HERE/lib/common.sh" /bin/busybox ${tool_paths[@]+"${tool_paths[@]}"} ${tool_libs[@]+"${tool_libs[@]}"}) $KERNEL_RELEASE"
stamp=$dir/.$name.stamp

# The kernel files are shared by every image; refresh them when the kernel package changed.
if [ ! -f "$dir/.kernel" ] || [ "$(cat "$dir/.kernel")" != "$KERNEL_RELEASE" ] || [ ! -f "$dir/vmlinux" ]; then
    cp "$KERNEL_VMLINUZ" "$dir/vmlinuz"
    vmlinux=$(e2e_kernel_vmlinux)
    ln -f "$vmlinux" "$dir/vmlinux" 2>/dev/null || cp "$vmlinux" "$dir/vmlinux"
    echo "$KERNEL_RELEASE" > "$dir/.kernel"
fi

if [ -f "$image" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    [ $print -eq 1 ] && echo "$image"
    exit 0
fi

e2e_log "building the demo guest's $name.img ($KERNEL_RELEASE${tools[*]:+, with ${tools[*]}})"
stage=$(mktemp -d "$dir/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,run,root,mnt,etc,usr/bin,usr/sbin,etc/udhcpc}
cp /bin/busybox "$stage/bin/busybox"
e2e_modules_install "$stage" modules.load "${GUEST_MODULES[@]}"
# modules.dep and modules.alias for the guest's modprobe (busybox's reads the text forms).
cp "$KERNEL_TREE/lib/modules/$KERNEL_RELEASE"/modules.{builtin,builtin.modinfo,order} \
    "$stage/lib/modules/$KERNEL_RELEASE/"
depmod -b "$stage" "$KERNEL_RELEASE" || e2e_die "depmod failed on the guest's modules"

# Programs added with --with, with every shared library the dynamic linker resolves for them
# (copied to the same paths, so the program's own RUNPATH and the system's search paths work).
for i in ${tools[@]+"${!tools[@]}"}; do
    p=${tool_paths[$i]}
    mkdir -p "$stage$(dirname "$p")"
    cp "$p" "$stage$p"
    [ -e "$stage/usr/bin/${tools[$i]}" ] || ln -s "$p" "$stage/usr/bin/${tools[$i]}"
    while read -r lib; do
        [ -n "$lib" ] || continue
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done < <(tool_libraries "$p")
done

cat > "$stage/init" <<'EOF'
#!/bin/busybox sh
# The demo guest's first process: set up the basics and hand over to busybox init.
/bin/busybox --install -s /bin
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
# Drivers for the devices that are there (PCI first, then what sits on the virtio bus), as
# udev's coldplug would; file systems and the rest are loaded on demand by the kernel.
echo /bin/modprobe > /proc/sys/kernel/modprobe
for bus in pci virtio; do
    for alias in /sys/bus/$bus/devices/*/modalias; do
        [ -f "$alias" ] && modprobe -q "$(cat "$alias")"
    done
done
hostname propolis-demo
ip link set lo up
exec /bin/init
EOF
chmod 0755 "$stage/init"

cat > "$stage/etc/inittab" <<'EOF'
::sysinit:/etc/rc
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/bin/reboot -f
::shutdown:/bin/sync
EOF
cat > "$stage/etc/rc" <<'EOF'
#!/bin/sh
echo "propolis demo guest ($(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB)"
EOF
chmod 0755 "$stage/etc/rc"
cat > "$stage/etc/profile" <<'EOF'
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root TERM=${TERM:-vt100}
export PS1='\w \$ '
cd /root
EOF
echo 'root:x:0:0:root:/root:/bin/sh' > "$stage/etc/passwd"
echo 'root:x:0:' > "$stage/etc/group"
# For `udhcpc -i eth0`: apply the lease it gets.
cat > "$stage/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
        : > /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
EOF
chmod 0755 "$stage/etc/udhcpc/default.script"

(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -9n > "$image.tmp"
mv "$image.tmp" "$image"
echo "$key" > "$stamp"
[ $print -eq 1 ] && echo "$image"
exit 0

#!/bin/busybox sh
# /init of the kvm-sandbox.sh outer VM (busybox sh, runs as PID 1).
#
# It mounts the host's root (9p tag "hostroot", read-only) under a tmpfs overlay, mounts the
# --out directories (9p tags out0, out1, ... read-write) at their host paths, gives the new root
# fresh /proc /sys /dev /dev/pts /dev/shm /tmp /run, chroots into it and runs the job script the
# host wrote. It reports on the "ctl" virtio-serial port:
#   @@SANDBOX-READY <uptime seconds>   just before the command starts
#   @@SANDBOX-EXIT <status>            after it ended (the host returns that status)
#   @@SANDBOX-ERROR <text>             when the sandbox itself could not be set up
# and powers the VM off. The job directory is given as sandbox.job=PATH on the kernel command line.

/bin/busybox mkdir -p /bin /proc /sys /dev /mnt
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname kvm-sandbox

# Progress marks go to the kernel log (shown by kvm-sandbox.sh --verbose).
mark() { echo "kvm-sandbox: $*" > /dev/kmsg; }
ctl=/dev/null
report() { echo "$*" > "$ctl"; }
fail() {
    echo "kvm-sandbox init: $*" > /dev/console
    report "@@SANDBOX-ERROR $*"
    poweroff -f
}

load_modules() {
    while read -r ko; do
        insmod "$ko" || { echo "$ko" > /tmp-modules-failed; return 1; }
    done < "$1"
}
# kvm-amd loads slowly under TCG: let the other vCPU do it while this one mounts the root.
load_modules /etc/modules-bg.load &
bg_modules=$!
mark "loading modules"
load_modules /etc/modules.load || fail "cannot load module $(cat /tmp-modules-failed)"

mark "modules loaded"
# virtio-serial ports by name, as udev would: /dev/virtio-ports/NAME.
# A port's name arrives in a control message after the port itself: wait a little for them.
mkdir -p /dev/virtio-ports
tries=0
while :; do
    for p in /sys/class/virtio-ports/vport*; do
        name=$(cat "$p/name" 2>/dev/null)
        [ -n "$name" ] && ln -sfn "../${p##*/}" "/dev/virtio-ports/$name"
    done
    [ -e /dev/virtio-ports/ctl ] && [ -e /dev/virtio-ports/stdout ] && [ -e /dev/virtio-ports/stderr ] && break
    tries=$((tries + 1))
    [ $tries -lt 50 ] || fail "the virtio-serial ports ctl, stdout and stderr did not show up"
    sleep 0.1
done
ctl=/dev/virtio-ports/ctl

job=
for arg in $(cat /proc/cmdline); do
    case "$arg" in sandbox.job=*) job=${arg#sandbox.job=} ;; esac
done
[ -n "$job" ] || fail "no sandbox.job= on the kernel command line"

lower=/mnt/lower rw=/mnt/rw root=/mnt/root
mkdir -p $lower $rw $root
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot $lower \
    || fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755 sandbox-rw $rw
mkdir -p $rw/upper $rw/work
mount -t overlay -o lowerdir=$lower,upperdir=$rw/upper,workdir=$rw/work sandbox-root $root \
    || fail "cannot mount the overlay root"

[ -f "$lower$job/params" ] || fail "no job parameters at $job/params"
. "$lower$job/params"

mount -t proc proc $root/proc
mount -t sysfs sysfs $root/sys
mount -t devtmpfs devtmpfs $root/dev
mkdir -p $root/dev/pts $root/dev/shm
# What udev or systemd would add: bash's process substitution needs /dev/fd.
ln -sfn /proc/self/fd $root/dev/fd
ln -sfn /proc/self/fd/0 $root/dev/stdin
ln -sfn /proc/self/fd/1 $root/dev/stdout
ln -sfn /proc/self/fd/2 $root/dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $root/dev/pts
mount -t tmpfs -o mode=1777 shm $root/dev/shm
[ "$SB_TMPFS_TMP" = 1 ] && mount -t tmpfs -o mode=1777 tmp $root/tmp
mount -t tmpfs -o mode=0755 run $root/run
mkdir -p $root/run/kvm-sandbox
cp "$lower$job/job.sh" $root/run/kvm-sandbox/job.sh || fail "cannot read $job/job.sh"

i=0
while [ $i -lt "$SB_OUT_COUNT" ]; do
    eval "dir=\$SB_OUT_$i"
    mkdir -p "$root$dir"
    mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=262144 "out$i" "$root$dir" \
        || fail "cannot mount the output directory $dir"
    i=$((i + 1))
done

mark "root mounted"
wait $bg_modules || fail "cannot load module $(cat /tmp-modules-failed)"

mark "starting the command"
report "@@SANDBOX-READY $(cut -d' ' -f1 /proc/uptime)"
if [ "$SB_INTERACTIVE" = 1 ]; then
    # The terminal is ttyS0: make it the command's controlling terminal so that job control
    # and ^C work for a shell run with --console none.
    setsid -c chroot $root /usr/bin/env -i "$SB_BASH" /run/kvm-sandbox/job.sh \
        </dev/ttyS0 >/dev/ttyS0 2>&1
else
    chroot $root /usr/bin/env -i "$SB_BASH" /run/kvm-sandbox/job.sh </dev/null >/dev/console 2>&1
fi
report "@@SANDBOX-EXIT $?"
echo 0 > /proc/sys/kernel/printk   # no "reboot: Power down" on the user's terminal
poweroff -f

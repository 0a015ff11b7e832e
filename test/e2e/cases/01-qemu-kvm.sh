# shellcheck shell=bash
# The machine works: QEMU with -accel kvm boots the demo guest to its shell, the shell computes,
# and the guest powers off. A failure here means the sandbox, the kernel or the demo guest is
# broken, not propolis-standalone.
# e2e-timeout: 300

[ -w /dev/kvm ] || fail "no usable /dev/kvm here"
spawn qemu qemu-system-x86_64 -accel kvm -cpu host -M q35 -m 512 -smp 2 \
    -nodefaults -display none -no-reboot -net none \
    -kernel "$E2E_GUEST_KERNEL" -initrd "$E2E_GUEST_INITRD" -append "console=ttyS0 quiet" \
    -chardev socket,id=con,path=ttya,server=on,wait=on -serial chardev:con

connect ttya 30
expect_line 'propolis demo guest' 180
note "banner: $CONSOLE_MATCH"
expect_text '~ # ' 60
note "shell prompt"
send 'echo $((6*7))'
expect_line '^42$' 30
expect_text '~ # ' 30
send 'poweroff -f'
wait_exit qemu 60

# shellcheck shell=bash
# The PC platform under direct kernel boot: the kernel finds the chipset on PCI (ECAM and
# mechanism #1), the ACPI tables the VMM put in the BIOS area (no ACPI errors or warnings), the
# RTC's time; pvpanic ([dev] qemu-pvpanic with enable_isa) is found through ACPI QEMU0001 and
# a kernel panic is logged by the VMM with what the guest reported; the panic's reboot
# (panic=-1, through the keyboard controller) ends the process with exit_on_reboot.
# e2e-timeout: 400
. "$E2E_ROOT/test/e2e/lib/standalone.sh"

write_config pv.toml 1 256 'exit_on_reboot = 5'
cat >> pv.toml <<'TOML'

[dev.panic]
driver = "qemu-pvpanic"
enable_isa = true
TOML
cp pv.toml "$E2E_ARTIFACTS/"
start_vmm vmm pv.toml
t0=$SECONDS
boot_to_shell 240
note "booted to the shell in $((SECONDS - t0))s"

shell 'echo pci: $(for d in /sys/bus/pci/devices/*; do echo ${d##*/}=$(cat $d/vendor):$(cat $d/device); done)' '^pci: '
note "$CONSOLE_MATCH"
for want in 0000:00:00.0=0x8086:0x1237 0000:00:01.0=0x8086:0x7000 0000:00:01.3=0x8086:0x7113; do
    [[ " ${CONSOLE_MATCH#pci: } " == *" $want "* ]] || fail "no $want among the PCI functions: $CONSOLE_MATCH"
done
shell 'dmesg | grep -c "PCI: Using configuration type 1\|MMCONFIG.*reserved"' '^[0-9]+$'
[ "$CONSOLE_MATCH" -ge 1 ] || fail "the kernel found no PCI configuration access"
shell "dmesg | grep -ciE 'acpi.*(error|warning)|acpi bios'" '^[0-9]+$'
if [ "$CONSOLE_MATCH" != 0 ]; then
    shell "dmesg | grep -iE 'acpi.*(error|warning)|acpi bios' | head -20; echo end-of-list" '^end-of-list$'
    fail "dmesg has $CONSOLE_MATCH ACPI error/warning lines (see console.log)"
fi
shell "echo tables: \$(ls /sys/firmware/acpi/tables | sort | tr '\n' ' ')" '^tables: '
note "$CONSOLE_MATCH"
for t in APIC DSDT FACP FACS MCFG; do
    [[ " ${CONSOLE_MATCH#tables: } " == *" $t "* ]] || fail "/sys/firmware/acpi/tables lacks $t: $CONSOLE_MATCH"
done
shell 'date +%s' '^[0-9]+$'
skew=$(( CONSOLE_MATCH - $(date +%s) ))
note "guest clock - host clock: ${skew}s"
[ "${skew#-}" -le 60 ] || fail "the guest's clock is ${skew}s off the host's"

# pvpanic: ACPI describes it, the driver binds, a panic reaches the VMM.
shell 'ls /sys/bus/acpi/devices | grep -c QEMU0001' '^[0-9]+$'
[ "$CONSOLE_MATCH" = 1 ] || fail "no ACPI QEMU0001 (pvpanic) device in the guest"
shell 'modprobe pvpanic-mmio && echo pvpanic-loaded' '^pvpanic-loaded$'
send 'echo c > /proc/sysrq-trigger'
wait_exit vmm 120 5
grep -q 'guest panic (pvpanic events: Panicked' "$E2E_ARTIFACTS/vmm.log" || fail "the VMM did not log the guest's panic"

# shellcheck shell=bash
# Firmware boot: Debian's OVMF (bootrom) with kernel/initrd/cmdline handed over through fw_cfg,
# as `qemu -bios OVMF.fd -kernel ...`. The guest reaches its shell on ./ttya and finds the
# platform propolis presents: ACPI tables from our table loader with no ACPI errors or
# warnings, SMBIOS, the RTC's time, the i440FX/PIIX3/PIIX4 functions on PCI. `reboot` (no -f)
# comes back through the firmware; `poweroff` (no -f: ACPI S5) ends the process with
# exit_on_halt.
# e2e-timeout: 900
. "$E2E_ROOT/test/e2e/lib/standalone.sh"

OVMF=/usr/share/ovmf/OVMF.fd
[ -r "$OVMF" ] || fail "$OVMF is missing (package ovmf)"
require_firmware_kvm   # the system QEMU 7.2 as the sandbox aborts on OVMF's CR8 writes (e2e README)
E2E_CMDLINE="console=ttyS0 panic=-1 quiet"
write_config fw.toml 2 512 "bootrom = \"$OVMF\"" 'bootrom_version = "e2e-ovmf"' 'exit_on_halt = 7'
start_vmm vmm fw.toml
t0=$SECONDS
boot_to_shell 600
note "OVMF booted the guest to its shell in $((SECONDS - t0))s"

# ACPI: no error or warning lines; the tables our loader script handed over are installed.
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
shell 'dmesg | grep -c "ACPI: Power Button"' '^[0-9]+$'

# SMBIOS (type 1 manufacturer; type 0 version from bootrom_version).
shell 'cat /sys/class/dmi/id/sys_vendor' '^propolis-standalone$'
shell 'cat /sys/class/dmi/id/bios_version' '^e2e-ovmf$'

# The RTC reports the host's time.
shell 'date +%s' '^[0-9]+$'
skew=$(( CONSOLE_MATCH - $(date +%s) ))
note "guest clock - host clock: ${skew}s"
[ "${skew#-}" -le 60 ] || fail "the guest's clock is ${skew}s off the host's"

# The chipset at the propolis IDs.
shell 'echo pci: $(for d in /sys/bus/pci/devices/*; do echo ${d##*/}=$(cat $d/vendor):$(cat $d/device); done)' '^pci: '
note "$CONSOLE_MATCH"
for want in 0000:00:00.0=0x8086:0x1237 0000:00:01.0=0x8086:0x7000 0000:00:01.3=0x8086:0x7113; do
    [[ " ${CONSOLE_MATCH#pci: } " == *" $want "* ]] || fail "no $want among the PCI functions: $CONSOLE_MATCH"
done
# Every BAR the firmware assigned lies outside the ECAM window (0xe0000000-0xefffffff).
shell 'n=0; for r in $(cut -d" " -f1 /sys/bus/pci/devices/*/resource); do [ $((r)) -ge $((0xe0000000)) ] && [ $((r)) -lt $((0xf0000000)) ] && n=$((n+1)); done; echo ecam-overlaps=$n' '^ecam-overlaps='
[ "$CONSOLE_MATCH" = ecam-overlaps=0 ] || fail "a BAR lies in the ECAM window: $CONSOLE_MATCH"

# reboot without -f: firmware and guest come back in the same process.
send 'reboot'
t1=$SECONDS
expect_line 'propolis demo guest' 600
expect_text '~ # ' 60
note "rebooted through the firmware in $((SECONDS - t1))s"
shell 'echo $((6*7))' '^42$'

# poweroff without -f: ACPI S5 ends the process with exit_on_halt.
send 'poweroff'
wait_exit vmm 120 7
grep -q 'ACPI S5' "$E2E_ARTIFACTS/vmm.log" || fail "the VMM log does not say the guest entered S5"
[ ! -e ttya ] || fail "the console socket ttya is still there"

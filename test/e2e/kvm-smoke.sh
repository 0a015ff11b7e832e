#!/usr/bin/env bash
# kvm-smoke.sh: check the KVM backend (Propolis.Core/Vmm/Kvm) against a real /dev/kvm.
#
#   test/e2e/kvm-smoke.sh
#
# Publishes test/KvmSmoke (NativeAOT) into out/kvm-smoke and runs, inside kvm-sandbox.sh (or
# directly where /dev/kvm works): the smoke checks (port I/O, MMIO, kick, pause/resume, reset,
# INIT/SIPI, ioeventfd, irqfd, MSI, allocation on the exit path), then two boots of the Debian
# kernel the sandbox uses, through LinuxLoader, with a triple-fault reboot and a reset between.
# Exit status 0 if both pass. See test/KvmSmoke/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
cd "$E2E_ROOT"

e2e_log "publishing test/KvmSmoke"
dotnet publish test/KvmSmoke/KvmSmoke.csproj -c Release -r linux-x64 -o "$E2E_OUT/kvm-smoke" -nologo -v quiet -p:DebugType=none

e2e_log "KVM smoke checks"
"$HERE/kvm-sandbox.sh" --timeout 600 -- "$E2E_OUT/kvm-smoke/KvmSmoke"

e2e_kernel_ensure
e2e_log "booting $KERNEL_VMLINUZ twice through LinuxLoader"
"$HERE/kvm-sandbox.sh" --timeout 600 -- "$E2E_OUT/kvm-smoke/KvmSmoke" boot "$KERNEL_VMLINUZ" > "$E2E_OUT/kvm-smoke/boot.log"
grep -c 'Linux version' "$E2E_OUT/kvm-smoke/boot.log" | grep -qx 2 || e2e_die "the kernel did not boot twice (see $E2E_OUT/kvm-smoke/boot.log)"
e2e_log "kernel booted twice; console in $E2E_OUT/kvm-smoke/boot.log"

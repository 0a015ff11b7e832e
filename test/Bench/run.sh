#!/usr/bin/env bash
# Builds and runs every benchmark program under test/Bench/ (one project per folder), in Release,
# then the boot benchmark (boot.sh: this VMM against QEMU -accel kvm booting the demo guest) and
# the storage benchmark (storage.sh: fio in the guest on NVMe and virtio-block, this VMM against
# QEMU). Arguments are passed to each C# program (CryptoBench takes seconds per figure), not to
# the shell benchmarks.
#   test/Bench/run.sh [ARGS]
#   test/Bench/run.sh boot [--runs N]                   only the boot benchmark
#   test/Bench/run.sh storage [--runtime S] [--size M]  only the storage benchmark
#   test/Bench/run.sh net [--seconds N]               only the network benchmark (net.sh: iperf3, ours vs QEMU)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ "${1:-}" = boot ]; then
    shift
    exec ./boot.sh "$@"
fi
if [ "${1:-}" = storage ]; then
    shift
    exec ./storage.sh "$@"
fi
if [ "${1:-}" = net ]; then
    shift
    exec ./net.sh "$@"
fi
status=0
for proj in */*.csproj; do
    [ -e "$proj" ] || { echo "run.sh: no benchmark projects under test/Bench" >&2; exit 1; }
    printf '\033[1m==> %s\033[0m\n' "$(dirname "$proj")" >&2
    dotnet build "$proj" -c Release -v quiet -nologo >/dev/null || { status=1; continue; }
    dotnet run --project "$proj" -c Release --no-build -- "$@" || status=1
    echo
done
printf '\033[1m==> boot\033[0m\n' >&2
./boot.sh || status=1
printf '\033[1m==> storage\033[0m\n' >&2
./storage.sh || status=1
printf '\033[1m==> net\033[0m\n' >&2
./net.sh || status=1
exit $status

#!/usr/bin/env bash
# Builds and runs every benchmark program under test/Bench/ (one project per folder), in Release.
# Arguments are passed to each program (CryptoBench takes seconds per figure).
#   test/Bench/run.sh [ARGS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
status=0
for proj in */*.csproj; do
    [ -e "$proj" ] || { echo "run.sh: no benchmark projects under test/Bench" >&2; exit 1; }
    printf '\033[1m==> %s\033[0m\n' "$(dirname "$proj")" >&2
    dotnet build "$proj" -c Release -v quiet -nologo >/dev/null || { status=1; continue; }
    dotnet run --project "$proj" -c Release --no-build -- "$@" || status=1
    echo
done
exit $status

#!/usr/bin/env bash
# The test command (npm test). Files run one at a time: the integration and scenario tests
# load eBPF programs and freeze cgroups, and on two cores they interfere when run together.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(tests/unit/*.test.ts tests/integration/*.test.ts tests/scenarios/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
# The tests run the built CLI (dist/, what `npx redline` runs): rebuilt when a source is newer
if [ ! -f dist/daemon/cli.js ] || [ -n "$(find daemon -name '*.ts' -newer dist/daemon/cli.js -print -quit)" ]; then
  npx tsc -p tsconfig.build.json
fi
if [ ! -f dist/loader/redline-enter ] || [ -n "$(find daemon/sensors/ebpf/loader daemon/guard -type f \( -name '*.c' -o -name '*.h' -o -name '*.sh' \) -newer dist/loader/redline-enter -print -quit)" ]; then
  bash daemon/sensors/ebpf/loader/build.sh dist/loader
fi
# A file that hangs fails after 25 minutes (the longest, the scenario suite, takes ~12) rather
# than holding CI to its limit; in this Node the timeout is per file, not per test.
exec node --import tsx --test --test-concurrency=1 --test-timeout=1500000 "${files[@]}"

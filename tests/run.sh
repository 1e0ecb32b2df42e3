#!/usr/bin/env bash
# The test command (npm test). Files run one at a time: the integration and scenario tests
# load eBPF programs and freeze cgroups, and on two cores they interfere when run together.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(tests/unit/*.test.ts tests/integration/*.test.ts tests/scenarios/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
# A file that hangs fails after 25 minutes (the longest, the scenario suite, takes ~12) rather
# than holding CI to its limit; in this Node the timeout is per file, not per test.
exec node --import tsx --test --test-concurrency=1 --test-timeout=1500000 "${files[@]}"

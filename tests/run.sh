#!/usr/bin/env bash
# The test command (npm test). Files run one at a time: the integration and scenario tests
# load eBPF programs and freeze cgroups, and on two cores they interfere when run together.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(tests/unit/*.test.ts tests/integration/*.test.ts tests/scenarios/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
exec node --import tsx --test --test-concurrency=1 "${files[@]}"

#!/usr/bin/env bash
# Prints one JSON line per benchmark. Needs root, bpftrace and cgroup v2 (bench/poll.ts: root and cgroup v2); `npm run build` first for idle.
set -euo pipefail
cd "$(dirname "$0")/.."
node --import tsx bench/kill-latency.ts
PACE_MS=25 node --import tsx bench/kill-latency.ts
node --import tsx bench/kill-floor.ts
node --import tsx bench/burst.ts
node --import tsx bench/rate.ts
PACE_MS=25 node --import tsx bench/kill-floor.ts
node --import tsx bench/pipeline.ts
node --import tsx bench/freeze.ts
node --import tsx bench/trip.ts
node --import tsx bench/deadman.ts
node --import tsx bench/startup.ts
node --import tsx bench/idle.ts
IDLE_LOAD=copy node --import tsx bench/idle.ts
IDLE_LOAD=dd node --import tsx bench/idle.ts
node --import tsx bench/workload.ts
node --import tsx bench/loader-floor.ts
node --import tsx bench/fingerprint.ts
node --import tsx bench/copy-alert.ts
node --import tsx bench/listen-latency.ts
node --import tsx bench/probe.ts
node --import tsx bench/serving.ts
node --import tsx bench/ws.ts
node --import tsx bench/audit.ts
node --import tsx bench/audit-study.ts
node --import tsx bench/seal.ts
node --import tsx bench/nats.ts
node --import tsx bench/dashboard.ts
node --import tsx bench/reboot.ts
node --import tsx bench/trials.ts
TRIALS_PORT_INTERVAL=5000 node --import tsx bench/trials.ts
node --import tsx bench/poll.ts
node --import tsx bench/scan-cost.ts
node --import tsx bench/guard.ts
node --import tsx bench/supervisor.ts
node --import tsx bench/refusal.ts

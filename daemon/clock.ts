// Epoch milliseconds with sub-millisecond resolution, on the monotonic clock that
// bpftrace's nsecs and process.hrtime share, so event → alert latencies are comparable.
const ORIGIN = performance.timeOrigin;

export function nowMs(): number {
  return ORIGIN + performance.now();
}

/** converts CLOCK_MONOTONIC nanoseconds (bpftrace nsecs) to epoch milliseconds */
export function monotonicToEpoch(): (ns: bigint) => number {
  const offsetMs = nowMs() - Number(process.hrtime.bigint()) / 1e6;
  return (ns) => offsetMs + Number(ns) / 1e6;
}

// The monitored workload's slowdown: a shell workload of many short processes and file reads
// (1,500 `/bin/true`; a tar of /usr/share/doc and its sha256; 300 × `cat` + `ls`), timed from
// inside the workload, plain and under `redline exec --mode observe`, alternating, ROUNDS
// (default 5) of each. Prints one JSON line with the medians and the slowdown. Needs root,
// bpftrace and cgroup v2, and `npm run build` first (the daemon runs from dist/ as a user
// would run it).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'redline-workload-'));
const out = join(dir, 'ms');
const script = join(dir, 'work.sh');
writeFileSync(
  script,
  [
    '#!/bin/sh',
    't0=$(date +%s%N)',
    'i=0; while [ $i -lt 1500 ]; do /bin/true; i=$((i+1)); done',
    `tar cf ${dir}/doc.tar /usr/share/doc 2>/dev/null; sha256sum ${dir}/doc.tar >/dev/null`,
    'i=0; while [ $i -lt 300 ]; do cat /etc/hostname >/dev/null; ls / >/dev/null; i=$((i+1)); done',
    't1=$(date +%s%N)',
    `echo $(( (t1 - t0) / 1000000 )) > ${out}`,
    '',
  ].join('\n'),
);
chmodSync(script, 0o755);

function timed(monitored: boolean): number {
  rmSync(out, { force: true });
  // (exit 3 would only say an alert was raised: the workload's own time is what is read)
  if (monitored) spawnSync(process.execPath, ['dist/daemon/cli.js', 'exec', '--mode', 'observe', '--socket', 'off', '--log', join(dir, 'log.ndjson'), '--', script], { stdio: 'ignore' });
  else spawnSync(script, { stdio: 'ignore' });
  return Number(readFileSync(out, 'utf8'));
}

/** alerts the monitored runs raised (all runs share one log): a benign workload should raise none at high */
function alertCount(): Record<string, number> {
  const by: Record<string, number> = {};
  try {
    for (const l of readFileSync(join(dir, 'log.ndjson'), 'utf8').split('\n')) {
      if (!l.includes('"kind":"alert"')) continue;
      const r = JSON.parse(l) as { rule: string };
      by[r.rule] = (by[r.rule] ?? 0) + 1;
    }
  } catch {
    // no log: no monitored run
  }
  return by;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
try {
  timed(false); // page cache warm for both
  const plain: number[] = [];
  const watched: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    plain.push(timed(false));
    watched.push(timed(true));
  }
  const p = median(plain);
  const w = median(watched);
  console.log(
    JSON.stringify({
      bench: 'workload-slowdown', unit: 'ms', rounds: ROUNDS,
      workload: '1500 /bin/true; tar of /usr/share/doc + sha256; 300 × (cat + ls)',
      plain_ms: plain, monitored_ms: watched, plain_median: p, monitored_median: w,
      alerts_in_monitored_runs: alertCount(),
      slowdown_pct: Math.round(((w - p) / p) * 1000) / 10,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

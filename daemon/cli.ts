#!/usr/bin/env node
// The entry. `redline exec` starts as its small supervisor (supervisor.ts), whose child is the
// monitor: the harness gets an exit code whatever becomes of the monitor. Everything else,
// that monitor included, goes to the commander wiring in program.ts, loaded only then.
import { supervisorPid } from './supervisor.js';

const work: Promise<number> =
  process.argv[2] === 'exec' && supervisorPid() === null ? import('./supervisor.js').then((s) => s.superviseExec()) : import('./program.js').then((p) => p.main(process.argv));
work.then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`redline: ${String(err)}\n`);
    process.exit(1);
  },
);

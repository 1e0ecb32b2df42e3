// The monitor's files and the persistence locations are known by what they are, not by how
// a name spells them: the log written through `/./`, `//` or a symlink is tamper; a cron
// folder reached through a symlink and a shell start-up file are persistence; a write the
// kernel refused is still the attempt it was.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('files matched by identity, not by spelling', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const cronFile = `/etc/cron.d/redline-identity-${process.pid}`;
  let run: Run;
  let recs: LogRecord[];
  let log = '';

  before(async () => {
    chmodSync(tmp.dir, 0o755);
    const logs = join(tmp.dir, 'logs');
    mkdirSync(logs);
    log = join(logs, 'audit.ndjson');
    const home = join(tmp.dir, 'home');
    mkdirSync(home);
    const script = join(tmp.dir, 'agent.sh');
    // each write from a process of its own: de-duplication (per process and path) keeps them apart
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        `sh -c ': >> ${logs}/./${basename(log)}'`,
        `sh -c ': >> ${logs}//${basename(log)}'`,
        `ln -s ${log} ${tmp.dir}/notes.txt`,
        `sh -c ': >> ${tmp.dir}/notes.txt'`,
        `ln -s ${dirname(cronFile)} ${tmp.dir}/jobs`,
        `sh -c ': > ${tmp.dir}/jobs/${basename(cronFile)}'`,
        `sh -c ': >> ${home}/.bashrc'`,
        // refused: nobody may not write /etc/profile.d
        `setpriv --reuid=65534 --regid=65534 --clear-groups sh -c ': > /etc/profile.d/redline-${process.pid}.sh' 2>/dev/null`,
        'exit 0',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    run = await redline(['exec', '--mode', 'observe', '--log', log, '--socket', 'off', '--', script]);
    recs = readLog(log);
  });
  after(() => {
    rmSync(cronFile, { force: true });
    rmSync(`/etc/profile.d/redline-${process.pid}.sh`, { force: true });
    tmp.cleanup();
  });

  const alerted = (rule: string) => alertsOf(recs).filter((a) => a.rule === rule);

  test('the log opened for writing through /./, // and a symlink: three tamper alerts', () => {
    assert.equal(run.code, 3, run.stderr);
    const tamper = alerted('write-monitor-files');
    assert.equal(tamper.length, 3, JSON.stringify(alertsOf(recs).map((a) => [a.rule, a.summary])));
    for (const a of tamper) assert.equal(a.category, 'monitor.tamper');
    const symlinked = tamper.find((a) => (a.event as { path: string }).path === `${tmp.dir}/notes.txt`);
    assert.ok(symlinked, 'the symlink is named as the agent wrote it');
    assert.equal((symlinked.event as { real_path: string }).real_path, log, 'with the file it reached');
  });

  test('a cron folder reached through a symlink, and ~/.bashrc: persistence', () => {
    const files = alerted('persistence-file').map((a) => a.event as { path: string; real_path?: string });
    assert.ok(files.some((e) => e.real_path === cronFile), JSON.stringify(files));
    assert.ok(files.some((e) => e.path.endsWith('/home/.bashrc')), JSON.stringify(files));
  });

  test('a refused write to /etc/profile.d: the attempt, medium', () => {
    const a = alerted('persistence-file-refused');
    assert.equal(a.length, 1, JSON.stringify(alertsOf(recs).map((x) => x.rule)));
    assert.equal(a[0]?.severity, 'medium');
    assert.equal((a[0]?.event as { path: string }).path, `/etc/profile.d/redline-${process.pid}.sh`);
  });
});

// --trials-under: which groups are trials, what their names say, and the BTF offsets the
// kernel filter "below the parent" is built from.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { structOffsets } from '../../daemon/sensors/ebpf/btf.js';
import { generateScript } from '../../daemon/sensors/ebpf/script.js';
import { listTrialGroups, parseTrialSpec, trialGroupOf, trialIdentity } from '../../daemon/trials/groups.js';
import { tempDir } from '../helpers/redline.js';

const MOUNT = '/sys/fs/cgroup';

describe('the trials spec', () => {
  test('a group: each child is a trial; relative specs are under the mount', () => {
    const s = parseTrialSpec('evals', MOUNT);
    assert.ok(typeof s !== 'string');
    assert.equal(s.parent, '/sys/fs/cgroup/evals');
    assert.equal(s.pattern, null);
    assert.equal(trialGroupOf('/sys/fs/cgroup/evals/s1', s), '/sys/fs/cgroup/evals/s1');
    // a container's own subgroups are its trial's
    assert.equal(trialGroupOf('/sys/fs/cgroup/evals/s1/init.scope/x', s), '/sys/fs/cgroup/evals/s1');
    assert.equal(trialGroupOf('/sys/fs/cgroup/evals', s), null, 'the parent itself is no trial');
    assert.equal(trialGroupOf('/sys/fs/cgroup/evalsX/s1', s), null);
    assert.equal(trialGroupOf('/sys/fs/cgroup/other', s), null);
  });

  test('a glob in the last part: only the matching siblings are trials', () => {
    const s = parseTrialSpec('/sys/fs/cgroup/system.slice/docker-*.scope', MOUNT);
    assert.ok(typeof s !== 'string');
    assert.equal(s.parent, '/sys/fs/cgroup/system.slice');
    const id = 'a'.repeat(64);
    assert.equal(trialGroupOf(`/sys/fs/cgroup/system.slice/docker-${id}.scope`, s), `/sys/fs/cgroup/system.slice/docker-${id}.scope`);
    assert.equal(trialGroupOf('/sys/fs/cgroup/system.slice/sshd.service', s), null, 'a service beside them is not');
    assert.equal(trialGroupOf('/sys/fs/cgroup/system.slice/docker-x.scopeZ', s), null);
    const q = parseTrialSpec('/x/sandbox-?[0-9]', '/x');
    assert.ok(typeof q !== 'string');
    assert.equal(q.pattern?.test('sandbox-a7'), true);
    assert.equal(q.pattern?.test('sandbox-ab'), false);
    assert.match(String(parseTrialSpec('/sys/fs/cgroup/*/x', MOUNT)), /only be in the last part/);
  });

  test('the groups that exist now, matching or not', () => {
    const tmp = tempDir();
    try {
      for (const d of ['docker-1.scope', 'docker-2.scope', 'cron.service']) mkdirSync(join(tmp.dir, d));
      const all = parseTrialSpec(tmp.dir, '/');
      const glob = parseTrialSpec(join(tmp.dir, 'docker-*.scope'), '/');
      assert.ok(typeof all !== 'string' && typeof glob !== 'string');
      assert.equal(listTrialGroups(all).length, 3);
      assert.deepEqual(listTrialGroups(glob).map((g) => g.slice(tmp.dir.length + 1)).sort(), ['docker-1.scope', 'docker-2.scope']);
    } finally {
      tmp.cleanup();
    }
  });

  test('container ids and pod uids are read from the group name', () => {
    const id = '3f4e'.repeat(16);
    assert.deepEqual(trialIdentity(`/sys/fs/cgroup/system.slice/docker-${id}.scope`), { id: `docker-${id}.scope`, container_id: id });
    assert.equal(trialIdentity(`/sys/fs/cgroup/machine.slice/libpod-${id}.scope`).container_id, id);
    assert.equal(trialIdentity(`/sys/fs/cgroup/redline/${id}`).container_id, id, 'docker --cgroup-parent names the group by the bare id');
    const pod = trialIdentity('/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0e5a1f2b_7c3d_4e5f_8a9b_0c1d2e3f4a5b.slice');
    assert.equal(pod.pod_uid, '0e5a1f2b-7c3d-4e5f-8a9b-0c1d2e3f4a5b', 'the systemd driver writes _ for -');
    assert.equal(trialIdentity('/sys/fs/cgroup/kubepods/burstable/pod0e5a1f2b-7c3d-4e5f-8a9b-0c1d2e3f4a5b').pod_uid, '0e5a1f2b-7c3d-4e5f-8a9b-0c1d2e3f4a5b');
    assert.deepEqual(trialIdentity('/sys/fs/cgroup/evals/sample-17'), { id: 'sample-17' });
  });
});

describe('BTF offsets for the kernel filter below a group', () => {
  // a BTF blob by hand: header, two structs, their strings
  const blob = (): Buffer => {
    const strs = ['', 'cgroup', 'kn', 'ancestors', 'kernfs_node', 'id', 'level'];
    const strBuf = Buffer.from(`${strs.join('\0')}\0`, 'latin1');
    const off = (s: string) => strs.slice(0, strs.indexOf(s)).reduce((n, x) => n + x.length + 1, 0);
    const types: number[] = [];
    const struct = (name: string, members: [string, number][]) => {
      types.push(off(name), (4 << 24) | members.length, 64);
      for (const [m, bits] of members) types.push(off(m), 1, bits);
    };
    types.push(0, (1 << 24) | 0, 8, 64); // an INT first: 4 extra bytes to skip
    struct('cgroup', [['level', 1728], ['kn', 2048], ['ancestors', 17792]]);
    struct('kernfs_node', [['id', 768]]);
    const typeBuf = Buffer.alloc(types.length * 4);
    types.forEach((v, i) => typeBuf.writeUInt32LE(v >>> 0, i * 4));
    const hdr = Buffer.alloc(24);
    hdr.writeUInt16LE(0xeb9f, 0);
    hdr.writeUInt8(1, 2);
    hdr.writeUInt32LE(24, 4);
    hdr.writeUInt32LE(0, 8);
    hdr.writeUInt32LE(typeBuf.length, 12);
    hdr.writeUInt32LE(typeBuf.length, 16);
    hdr.writeUInt32LE(strBuf.length, 20);
    return Buffer.concat([hdr, typeBuf, strBuf]);
  };

  test('member offsets in bytes, past types of other kinds', () => {
    const got = structOffsets(blob(), ['cgroup.ancestors', 'cgroup.kn', 'kernfs_node.id', 'cgroup.nothing']);
    assert.equal(got.get('cgroup.ancestors'), 2224);
    assert.equal(got.get('cgroup.kn'), 256);
    assert.equal(got.get('kernfs_node.id'), 96);
    assert.equal(got.has('cgroup.nothing'), false);
    assert.throws(() => structOffsets(Buffer.alloc(32), ['cgroup.kn']), /not BTF/);
  });

  test('this kernel: the offsets are found, and the program tests the ancestor at the group\'s level', { skip: existsSync('/sys/kernel/btf/vmlinux') ? false : 'no /sys/kernel/btf/vmlinux on this host' }, () => {
    const got = structOffsets(readFileSync('/sys/kernel/btf/vmlinux'), ['cgroup.ancestors', 'cgroup.kn', 'kernfs_node.id']);
    const a = got.get('cgroup.ancestors') as number;
    assert.ok(a > 0 && (got.get('cgroup.kn') as number) > 0 && (got.get('kernfs_node.id') as number) > 0);
    const script = generateScript({ kind: 'cgroup', path: '/sys/fs/cgroup/evals', level: 1 });
    assert.ok(script.includes(`curtask->cgroups->dfl_cgrp->level > 1`));
    assert.ok(script.includes(`(uint64)curtask->cgroups->dfl_cgrp + ${a + 8}`), 'ancestors[1]');
    // without a level: the exact group, as before
    assert.ok(!generateScript({ kind: 'cgroup', path: '/sys/fs/cgroup/evals' }).includes('dfl_cgrp->level'));
  });
});

// Field offsets from the kernel's own type information (/sys/kernel/btf/vmlinux), for what
// bpftrace 0.17 cannot name: an ancestor of the current cgroup (struct cgroup's `ancestors[]`
// is a flexible array, and its `kn` is a type bpftrace does not resolve). With them the
// bpftrace program tests "in this group or below it" in the kernel, so one program serves a
// parent group and every sandbox under it.
import { readFileSync } from 'node:fs';

const BTF_MAGIC = 0xeb9f;
const KIND_STRUCT = 4;
const KIND_UNION = 5;

/** bytes that follow a type's 12-byte header, by kind (BTF_KIND_*), given its vlen */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case 1: // INT
    case 14: // VAR
    case 17: // DECL_TAG
      return 4;
    case 3: // ARRAY
      return 12;
    case 4: // STRUCT
    case 5: // UNION
    case 15: // DATASEC
    case 19: // ENUM64
      return 12 * vlen;
    case 6: // ENUM
    case 13: // FUNC_PROTO
      return 8 * vlen;
    default: // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
      return 0;
  }
}

/** member byte offsets of the structs asked for (`struct.member` → bytes), from a BTF blob */
export function structOffsets(btf: Buffer, wanted: string[]): Map<string, number> {
  if (btf.length < 24 || btf.readUInt16LE(0) !== BTF_MAGIC) throw new Error('not BTF (bad magic)');
  const hdrLen = btf.readUInt32LE(4);
  const typeOff = hdrLen + btf.readUInt32LE(8);
  const typeEnd = typeOff + btf.readUInt32LE(12);
  const strOff = hdrLen + btf.readUInt32LE(16);
  const name = (off: number): string => {
    const end = btf.indexOf(0, strOff + off);
    return btf.toString('latin1', strOff + off, end < 0 ? btf.length : end);
  };
  const want = new Map<string, Set<string>>();
  for (const w of wanted) {
    const [s, m] = w.split('.');
    if (!s || !m) throw new Error(`bad field name ${w}`);
    if (!want.has(s)) want.set(s, new Set());
    want.get(s)?.add(m);
  }
  const out = new Map<string, number>();
  for (let p = typeOff; p + 12 <= typeEnd; ) {
    const info = btf.readUInt32LE(p + 4);
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const bitfields = info >>> 31 === 1;
    const members = want.get(name(btf.readUInt32LE(p)));
    if ((kind === KIND_STRUCT || kind === KIND_UNION) && members) {
      for (let i = 0; i < vlen; i++) {
        const m = p + 12 + 12 * i;
        const mname = name(btf.readUInt32LE(m));
        const raw = btf.readUInt32LE(m + 8);
        const bits = bitfields ? raw & 0xffffff : raw;
        const key = `${name(btf.readUInt32LE(p))}.${mname}`;
        // the first definition wins (vmlinux BTF holds one of each after deduplication)
        if (members.has(mname) && !out.has(key)) out.set(key, bits / 8);
      }
    }
    p += 12 + extraBytes(kind, vlen);
  }
  return out;
}

/** where an ancestor group's id is, from a task's default-hierarchy cgroup */
export interface AncestorOffsets {
  /** struct cgroup: the ancestors[] array of pointers */
  ancestors: number;
  /** struct cgroup: its kernfs node */
  kn: number;
  /** struct kernfs_node: the id (the cgroup id, the folder's inode on 64-bit hosts) */
  id: number;
}

let cached: AncestorOffsets | string | undefined;

/** the offsets from this kernel's BTF, or why they cannot be had */
export function ancestorOffsets(path = '/sys/kernel/btf/vmlinux'): AncestorOffsets | string {
  if (cached !== undefined && path === '/sys/kernel/btf/vmlinux') return cached;
  let res: AncestorOffsets | string;
  try {
    const got = structOffsets(readFileSync(path), ['cgroup.ancestors', 'cgroup.kn', 'kernfs_node.id']);
    const [a, k, i] = [got.get('cgroup.ancestors'), got.get('cgroup.kn'), got.get('kernfs_node.id')];
    res = a !== undefined && k !== undefined && i !== undefined ? { ancestors: a, kn: k, id: i } : `${path} lacks struct cgroup's ancestors/kn or kernfs_node's id`;
  } catch (err) {
    res = `${path}: ${(err as Error).message}`;
  }
  if (path === '/sys/kernel/btf/vmlinux') cached = res;
  return res;
}

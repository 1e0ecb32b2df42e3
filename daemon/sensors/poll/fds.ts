// What the poll reads of one process's files: the fds it holds open (a new one is an open; the
// position a counted fd reached, for a file read or written in order, is its bytes moved) and
// the large files it maps.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { SensorEvent } from '../../events.js';
import { type Mapping, parseFdinfo, parseMaps, writable } from './parse.js';

/** files below this size are not counted in bytes (as the eBPF sensor's MIN_FILE) */
const MIN_FILE = 1 << 20;

type Emit = (ev: SensorEvent) => void;

export interface OpenFile {
  /** what /proc/PID/fd/N pointed at when first seen: a different target is a new open */
  target: string;
  dev: number;
  ino: number;
  write: boolean;
  /** a file large enough to count bytes on */
  counted: boolean;
  pos: number;
}

export interface Tracked {
  start: number;
  /** its parent and session at the last pass: a change is a reparent, a new session a setsid */
  ppid: number;
  sid: number;
  subject: boolean;
  comm: string;
  exe: string;
  args: string;
  fds: Map<number, OpenFile>;
  /** bytes of each file (dev:ino) reported mapped */
  mapped: Map<string, number>;
}

/** the process's open files: an open for each new one, bytes for each counted fd that moved on; true: it has a new socket */
export function readFds(pid: number, t: Tracked, now: number, emit: Emit): boolean {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false; // gone, or not ours to read
  }
  const open = new Set<number>();
  let newSocket = false;
  for (const name of names) {
    const fd = Number(name);
    open.add(fd);
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const known = t.fds.get(fd);
    if (known && known.target === target) {
      if (known.counted) moved(pid, fd, t, known, now, emit);
      continue;
    }
    // a socket new to this process: the ports sensor looks now, not at its next tick
    if (target.startsWith('socket:')) {
      newSocket = true;
      t.fds.set(fd, { target, dev: 0, ino: 0, write: false, counted: false, pos: 0 });
      continue;
    }
    const f = opened(pid, fd, target, t, now, emit);
    if (f) t.fds.set(fd, f);
    else t.fds.delete(fd);
  }
  for (const fd of t.fds.keys()) if (!open.has(fd)) t.fds.delete(fd);
  return newSocket;
}

function opened(pid: number, fd: number, target: string, t: Tracked, now: number, emit: Emit): OpenFile | null {
  if (!target.startsWith('/') || /^\/(dev|proc|sys)\//.test(target)) return null;
  const info = readText(`/proc/${pid}/fdinfo/${fd}`);
  const fi = info === null ? null : parseFdinfo(info);
  let st: ReturnType<typeof statSync>;
  try {
    // through the fd: the file itself, wherever its name is (another mount namespace, deleted)
    st = statSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return null;
  }
  if (!fi || !st.isFile()) return null;
  const write = writable(fi.flags);
  emit({ type: 'open', time: now, pid, comm: t.comm, fd, flags: fi.flags, dfd: -100, filename: target, path: target, write });
  const f: OpenFile = { target, dev: st.dev, ino: st.ino, write, counted: write || st.size >= MIN_FILE, pos: 0 };
  if (f.counted) moved(pid, fd, t, f, now, emit, fi.pos, st.size);
  return f;
}

/** the fd's position moved on: as many bytes read or written (in order) */
function moved(pid: number, fd: number, t: Tracked, f: OpenFile, now: number, emit: Emit, pos?: number, size?: number): void {
  let p = pos;
  if (p === undefined) {
    const info = readText(`/proc/${pid}/fdinfo/${fd}`);
    p = info === null ? undefined : parseFdinfo(info)?.pos;
  }
  if (p === undefined || p <= f.pos) {
    if (p !== undefined) f.pos = p; // a seek back
    return;
  }
  const bytes = p - f.pos;
  f.pos = p;
  let sz = size;
  if (sz === undefined) {
    try {
      sz = statSync(`/proc/${pid}/fd/${fd}`).size;
    } catch {
      return;
    }
  }
  if (!f.write && sz < MIN_FILE) return;
  emit({
    type: 'file_bytes', time: now, pid, comm: t.comm, op: f.write ? 'write' : 'read', write: f.write, fd, bytes, ino: f.ino, dev: f.dev, size: sz, subject: t.subject, socket: false, pipe: false,
  });
}

/** files mapped: the bytes of each large file covered, reported as they grow */
export function readMaps(pid: number, t: Tracked, now: number, subject: boolean, firstPass: boolean, emit: Emit, only?: (m: Mapping) => boolean): void {
  const text = readText(`/proc/${pid}/maps`);
  if (text === null) return;
  const byFile = new Map<string, { m: Mapping; bytes: number; write: boolean }>();
  for (const m of parseMaps(text)) {
    if (only && !only(m)) continue;
    const key = `${m.dev}:${m.ino}`;
    const e = byFile.get(key);
    if (e) {
      e.bytes += m.bytes;
      e.write ||= m.sharedWrite;
    } else byFile.set(key, { m, bytes: m.bytes, write: m.sharedWrite });
  }
  for (const [key, e] of byFile) {
    if (e.bytes < MIN_FILE) continue;
    let size: number;
    try {
      size = statSync(e.m.path.replace(/ \(deleted\)$/, '')).size;
    } catch {
      size = e.bytes;
    }
    const bytes = Math.min(e.bytes, size);
    if (size < MIN_FILE || bytes <= (t.mapped.get(key) ?? 0)) continue;
    t.mapped.set(key, bytes);
    // what others had mapped before the first pass is not news (eBPF would not have seen it either)
    if (!subject && firstPass) continue;
    emit({
      type: 'file_bytes', time: now, pid, comm: t.comm, op: e.write ? 'mmap_write' : 'mmap', write: e.write, fd: -1, bytes, ino: e.m.ino, dev: e.m.dev, size, subject, socket: false, pipe: false,
    });
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

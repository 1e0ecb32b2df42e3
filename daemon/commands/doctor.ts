// `redline doctor`: which sensors and actions work on this host, and why not.
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { DEFAULTS, shippedRulesDir } from '../config/schema.js';
import { loadRules } from '../engine/load.js';
import { collectHostFacts, describeHost } from '../host-facts.js';
import { describeStarved, POLL_BLIND, starvedByPoll } from '../sensors/feeds.js';
import { notifyAvailable } from '../notify.js';
import { cgroupOfPid, findCgroupV2Mount, findFreezerV1Mount, groupPids, readEvents } from '../cgroup.js';
import { ebpfUnavailableReason, findExecutable, findLoader, loaderUnavailableReason, tracefsMounted } from '../sensors/ebpf/host.js';
import { gpuUnavailableReason } from '../sensors/gpu/index.js';
import { LsmGuard, seccompEntry } from '../guard/index.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** the libbpf loader: optional (bpftrace counts the bytes without it, at about twice the cost per syscall) */
function loaderCheck(): Check {
  const l = findLoader();
  if (l) return { name: 'libbpf loader', ok: true, detail: `${l.bin}: counts the weights' bytes and reports the guard's refusals (a raw tracepoint on sys_exit), and holds copies in enforce mode (one on sys_enter)` };
  const why = loaderUnavailableReason() ?? 'not found';
  return { name: 'libbpf loader', ok: true, detail: `${why}; bpftrace counts the weights' bytes, at about twice the cost per read or write` };
}

function cgroupChecks(): Check[] {
  const mount = findCgroupV2Mount();
  const out: Check[] = [{ name: 'cgroup v2', ok: mount !== null, detail: mount ? `mounted at ${mount}` : 'no cgroup2 mount: exec and --subject-cgroup/--subject-pid need it' }];
  if (mount && process.getuid?.() === 0) {
    const probe = join(mount, 'redline', `doctor-${process.pid}`);
    try {
      mkdirSync(probe, { recursive: true });
      const freeze = existsSync(join(probe, 'cgroup.freeze'));
      const kill = existsSync(join(probe, 'cgroup.kill'));
      if (freeze) {
        writeFileSync(join(probe, 'cgroup.freeze'), '1');
        const frozen = /frozen 1/.test(readFileSync(join(probe, 'cgroup.events'), 'utf8'));
        writeFileSync(join(probe, 'cgroup.freeze'), '0');
        out.push({ name: 'action freeze', ok: frozen, detail: frozen ? 'cgroup.freeze works' : 'cgroup.freeze did not report frozen' });
      } else out.push({ name: 'action freeze', ok: false, detail: 'no cgroup.freeze (kernel < 5.2): falls back to the v1 freezer or SIGSTOP' });
      out.push({ name: 'action kill', ok: true, detail: kill ? 'cgroup.kill' : 'SIGKILL of every pid (no cgroup.kill, kernel < 5.14)' });
    } catch (err) {
      out.push({ name: 'action freeze', ok: false, detail: `cannot create a test group: ${(err as Error).message}` });
    } finally {
      try {
        rmdirSync(probe);
      } catch {
        // nothing to remove
      }
    }
  } else if (mount) out.push(userFreezeCheck(mount));
  if (mount) out.push(leftoverGroups(mount));
  const v1 = findFreezerV1Mount();
  out.push({ name: 'v1 freezer', ok: v1 !== null, detail: v1 ? `mounted at ${v1} (fallback)` : 'not mounted (only needed without cgroup v2)' });
  return out;
}

/** the poll sensor: /proc where it is mounted, else ps-list (processes only) */
function pollCheck(): Check {
  const proc = existsSync('/proc/self/fdinfo');
  const blind = Object.keys(POLL_BLIND).join(', ');
  return {
    name: 'sensor poll',
    ok: true,
    detail: proc
      ? `/proc every 100 ms (--poll-interval): processes, their open files and positions, mappings; blind to ${blind} (the rules this starves are listed below)`
      : `ps-list (no /proc here): processes only, no files; blind to ${blind}`,
  };
}

/** as a user: a delegated cgroup of one's own, else SIGSTOP of the subject's tree */
function userFreezeCheck(mount: string): Check {
  const own = cgroupOfPid(process.pid, mount);
  try {
    if (!own) throw new Error('in no group');
    accessSync(join(own, 'cgroup.procs'), constants.W_OK);
    return { name: 'action freeze', ok: true, detail: `exec makes the subject a group in ${own} (delegated to you) and freezes it with cgroup.freeze` };
  } catch {
    return {
      name: 'action freeze',
      ok: true,
      detail: `SIGSTOP of the subject's process tree (${own ?? 'your group'} is not delegated to you; under \`systemd-run --user --scope -p Delegate=yes\` exec uses cgroup.freeze). Weaker: a process of yours outside the tree could send SIGCONT`,
    };
  }
}

/**
 * Groups under redline/ besides doctor's own probe: a running trial's, or one an earlier run
 * left (frozen on purpose when its monitor died, in enforce mode). Each with its state.
 */
function leftoverGroups(mount: string): Check {
  const root = join(mount, 'redline');
  let names: string[] = [];
  try {
    names = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('doctor-'))
      .map((e) => e.name);
  } catch {
    // no redline/ folder yet: nothing was ever left
  }
  if (names.length === 0) return { name: 'redline groups', ok: true, detail: `none under ${root}` };
  const said = names.map((n) => {
    const g = join(root, n);
    const pids = groupPids(g).length;
    const frozen = readEvents(g).frozen === 1;
    return `${n} (${pids === 0 ? 'empty' : `${pids} process${pids === 1 ? '' : 'es'}`}${frozen ? ', frozen' : ''})`;
  });
  return {
    name: 'redline groups',
    ok: false,
    detail: `${said.join(', ')} under ${root}: a running trial's own, or left by one whose monitor died (end one with echo 1 > GROUP/cgroup.kill, then rmdir it)`,
  };
}

export function doctorChecks(nvidiaSmi = 'nvidia-smi'): Check[] {
  const why = ebpfUnavailableReason();
  const gpu = gpuUnavailableReason(nvidiaSmi);
  const checks: Check[] = [
    { name: 'root', ok: process.getuid?.() === 0, detail: process.getuid?.() === 0 ? 'running as root' : 'not root: eBPF and cgroup actions need root' },
    { name: 'bpftrace', ok: findExecutable('bpftrace') !== null, detail: findExecutable('bpftrace') ?? 'not found (apt-get install -y bpftrace)' },
    loaderCheck(),
    { name: 'tracefs', ok: tracefsMounted(), detail: tracefsMounted() ? 'mounted' : 'not mounted: redline mounts it at start (mount -t tracefs nodev /sys/kernel/tracing)' },
    { name: 'sensor ebpf', ok: why === null, detail: why ?? 'available: exec, fork, exit, signal, setsid, open/creat and link tracepoints, filtered in the kernel' },
    pollCheck(),
    { name: 'sensor (auto)', ok: true, detail: why === null ? 'ebpf: exec and run pick it (--sensor auto)' : `poll: exec and run pick it (--sensor auto), because ${why}` },
    {
      name: 'sensor weights',
      ok: true,
      detail: why === null
        ? 'file opens, links and writes of the subject (eBPF), fingerprinted by content on a worker thread; chokidar on --watch and weight folders'
        : 'with the poll: files the subject holds open or mapped at each pass, and their positions; chokidar on --watch, the weight folders and where the subject works. A copy made within one pass elsewhere is found only when something loads it',
    },
    { name: 'sensor gpu', ok: gpu === null, detail: gpu ?? `${nvidiaSmi} answers; polled asynchronously with a timeout` },
    ...cgroupChecks(),
    { name: 'sensor ports', ok: procNetReadable(), detail: procNetReadable() ? 'listen() and UDP bind() by eBPF; /proc/PID/net/{tcp,tcp6,udp,udp6} polled for the rest' : '/proc/self/net/tcp is not readable' },
    { name: 'action snapshot', ok: existsSync('/proc/self/stat'), detail: '/proc readable' },
    { name: 'action probe', ok: true, detail: findExecutable('nsenter') ? 'HTTP probe of replica ports; inside other network namespaces through nsenter' : 'HTTP probe of replica ports; nsenter not found, so ports inside other network namespaces are not probed' },
    writable('output audit log', DEFAULTS.runLog, 'NDJSON, hash-chained, synchronous writes'),
    writable('output control socket', DEFAULTS.socket, 'unix socket, mode 0600'),
    {
      name: 'systemd notify',
      ok: findExecutable('systemd-notify') !== null,
      detail: findExecutable('systemd-notify') ? `systemd-notify found: Type=notify readiness and watchdog work${notifyAvailable() ? ' (NOTIFY_SOCKET set now)' : ''}` : 'systemd-notify not found: use Type=simple in the unit',
    },
  ];
  return checks;
}

function procNetReadable(): boolean {
  try {
    readFileSync('/proc/self/net/tcp');
    return true;
  } catch {
    return false;
  }
}

/** can the daemon create the folder a file goes in and write there? */
function writable(name: string, file: string, what: string): Check {
  const dir = dirname(file);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return { name, ok: true, detail: `${what}; ${dir} is writable` };
  } catch (err) {
    return { name, ok: false, detail: `${what}; ${dir} is not writable here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give another path` };
  }
}

/** can the daemon's default websocket address be bound? */
function websocketCheck(): Promise<Check> {
  const { host, port } = DEFAULTS.runWs;
  const name = 'output websocket';
  const token = process.env[DEFAULTS.wsTokenEnv] ? `token from ${DEFAULTS.wsTokenEnv}` : 'no token set: the daemon generates one (/run/redline/ws-PORT.token)';
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'in use (a running redline, or another program: give --ws)' : (err.code ?? err.message);
      resolve({ name, ok: false, detail: `ws://${host}:${port}/stream: ${why}` });
    });
    srv.listen(port, host, () => srv.close(() => resolve({ name, ok: true, detail: `ws://${host}:${port}/stream can listen (run's default; --ws); ${token}` })));
  });
}

/**
 * The kernel guard: the BPF LSM programs are loaded for a moment (for a uid no process has),
 * so the answer is the kernel's, not a guess; and exec's seccomp entry.
 */
async function guardChecks(): Promise<Check[]> {
  let lsm: Check;
  try {
    const g = await LsmGuard.start({ kind: 'uid', uid: 0xfffffffe });
    await g.stop();
    lsm = { name: 'guard (BPF LSM)', ok: true, detail: 'guard: kernel. The subject\'s signals, ptrace, cgroup moves and writes aimed at the monitor, bpf() and module loads are refused in the kernel' };
  } catch (err) {
    lsm = { name: 'guard (BPF LSM)', ok: false, detail: `guard: detect-only. ${(err as Error).message}` };
  }
  const enter = seccompEntry();
  const seccomp: Check = enter
    ? { name: 'guard (seccomp)', ok: true, detail: `${enter}: exec starts the subject under a seccomp filter that refuses its signals, ptrace and scheduling calls aimed at monitor pids, bpf() and module loads (reboot and kexec too in enforce mode)` }
    : { name: 'guard (seccomp)', ok: false, detail: process.env.REDLINE_GUARD === 'off' ? 'turned off (REDLINE_GUARD=off)' : 'not available (needs root on x86_64, and cc at npm ci to build redline-enter)' };
  return [lsm, seccomp];
}

export async function doctorCommand(out = process.stdout, nvidiaSmi?: string): Promise<number> {
  const facts = collectHostFacts();
  for (const c of [...doctorChecks(nvidiaSmi), ...(await guardChecks()), await websocketCheck()]) out.write(`${c.ok ? 'ok  ' : 'no  '} ${c.name.padEnd(22)} ${c.detail}\n`);
  // what the shipped rules lose with the poll sensor
  const shipped = loadRules([shippedRulesDir()]).ruleset?.rules ?? [];
  const starved = describeStarved(starvedByPoll(shipped));
  out.write(`\nwith the poll sensor, of the ${shipped.length} shipped rules:\n${starved.map((l) => `  ${l}\n`).join('')}`);
  out.write(`\nthis host:\n${describeHost(await facts).map((l) => `  ${l}\n`).join('')}`);
  return 0;
}

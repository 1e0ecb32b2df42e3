// Host checks the eBPF sensor needs: root, a bpftrace binary, a mounted tracefs.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function findExecutable(name: string): string | null {
  if (name.includes('/')) return isExecutable(name) ? name : null;
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir || '.', name);
    if (isExecutable(p)) return p;
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const TRACEFS_CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

export function tracefsMounted(): boolean {
  return TRACEFS_CANDIDATES.some((d) => existsSync(join(d, 'events')));
}

/** mounts tracefs when missing; returns why not when it cannot */
export function ensureTracefs(): string | null {
  if (tracefsMounted()) return null;
  try {
    mkdirSync('/sys/kernel/tracing', { recursive: true });
    execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'pipe' });
  } catch (err) {
    return `tracefs is not mounted and mounting it failed: ${(err as Error).message.split('\n')[0]}`;
  }
  return tracefsMounted() ? null : 'tracefs mounted but /sys/kernel/tracing/events is missing';
}

/** null when the eBPF sensor can run here, else the reason it cannot */
export function ebpfUnavailableReason(bpftrace = 'bpftrace'): string | null {
  if (process.getuid?.() !== 0) return 'the eBPF sensor needs root (bpftrace loads kernel programs)';
  if (!findExecutable(bpftrace)) return `bpftrace not found on PATH (install it: apt-get install -y bpftrace)`;
  return null;
}

/** the libbpf loader's two files, built by `npm run build` (loader/build.sh) */
export interface LoaderFiles {
  bin: string;
  obj: string;
}

/**
 * The built loader, or null (not built: no toolchain, not x86_64; or turned off with
 * REDLINE_LOADER=off): the bpftrace program then counts the bytes itself. REDLINE_LOADER=DIR
 * names another build.
 */
/** why the loader is not there to count the bytes (null: it is), in the words doctor and the sensor record use */
export function loaderUnavailableReason(): string | null {
  if (findLoader()) return null;
  if (process.env.REDLINE_LOADER === 'off') return 'turned off (REDLINE_LOADER=off)';
  if (process.arch !== 'x64') return `not for ${process.arch} (it reads x86_64 registers)`;
  return 'not built (apt-get install -y clang libbpf-dev bpftool, then npm run build)';
}

export function findLoader(): LoaderFiles | null {
  const env = process.env.REDLINE_LOADER;
  if (env === 'off' || process.arch !== 'x64') return null;
  // from the sources (daemon/sensors/ebpf) or from the build (dist/daemon/sensors/ebpf)
  const dirs = env ? [env] : [fileURLToPath(new URL('../../../dist/loader', import.meta.url)), fileURLToPath(new URL('../../../loader', import.meta.url))];
  for (const dir of dirs) {
    const files = { bin: join(dir, 'redline-loader'), obj: join(dir, 'bytes.bpf.o') };
    if (isExecutable(files.bin) && existsSync(files.obj)) return files;
  }
  return null;
}

// Parsers for nvidia-smi's CSV queries (`--format=csv,noheader,nounits`). Pure: text in,
// records or an error out, never a throw — the output of a hung or broken driver is data.

/** the two queries the GPU sensor runs, exactly as nvidia-smi takes them */
export const APPS_ARGS = ['--query-compute-apps=pid,used_memory,gpu_uuid', '--format=csv,noheader,nounits'] as const;
export const GPUS_ARGS = ['--query-gpu=index,uuid,memory.used,memory.total', '--format=csv,noheader,nounits'] as const;

/** one compute process on one GPU (a process on two GPUs is two records) */
export interface ComputeApp {
  /** a host pid; null when the driver would not say (e.g. "[N/A]" inside some containers) */
  pid: number | null;
  /** null when the driver reports "[N/A]" (MIG, some WDDM setups) */
  used_mib: number | null;
  gpu_uuid: string;
}

export interface GpuInfo {
  index: number;
  uuid: string;
  used_mib: number | null;
  total_mib: number | null;
}

export type Parsed<T> = { ok: true; records: T[] } | { ok: false; error: string };

// Drivers print these instead of (or among) CSV rows; they carry no data.
const NO_APPS = /^No running (compute )?processes found$/i;
const NO_DEVICES = /^No devices were found$/i;
// "[N/A]", "[Not Supported]", "[Insufficient Permissions]", "[Unknown Error]", …
const BRACKETED = /^\[[^\]]*\]$/;
// GPU-<uuid>, and MIG-<uuid> / MIG-GPU-<uuid>/<gi>/<ci> on MIG devices
const UUID = /^(GPU|MIG)-[0-9A-Za-z][0-9A-Za-z/-]*$/;
const INT = /^\d{1,12}$/;

type Field<T> = { ok: true; value: T } | { ok: false };

function intField(s: string): Field<number | null> {
  if (INT.test(s)) return { ok: true, value: Number(s) };
  if (BRACKETED.test(s)) return { ok: true, value: null };
  return { ok: false };
}

function rows(text: string, skip?: RegExp): { line: number; cells: string[] }[] {
  const out: { line: number; cells: string[] }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || skip?.test(line)) return;
    out.push({ line: i + 1, cells: line.split(',').map((c) => c.trim()) });
  });
  return out;
}

function bad(line: number, why: string, cells: string[]): { ok: false; error: string } {
  const shown = cells.join(', ');
  return { ok: false, error: `line ${line}: ${why}: ${JSON.stringify(shown.length > 120 ? `${shown.slice(0, 120)}…` : shown)}` };
}

/** `--query-compute-apps=pid,used_memory,gpu_uuid`; no output means no processes */
export function parseComputeApps(text: string): Parsed<ComputeApp> {
  const records: ComputeApp[] = [];
  for (const { line, cells } of rows(text, NO_APPS)) {
    if (cells.length !== 3) return bad(line, `expected 3 fields (pid, used_memory, gpu_uuid), got ${cells.length}`, cells);
    const [pidS = '', usedS = '', uuid = ''] = cells;
    const pid = intField(pidS);
    const used = intField(usedS);
    if (!pid.ok || pid.value === 0) return bad(line, 'pid is not a process id', cells);
    if (!used.ok) return bad(line, 'used_memory is not a number of MiB', cells);
    if (!UUID.test(uuid)) return bad(line, 'gpu_uuid is not a GPU uuid', cells);
    records.push({ pid: pid.value, used_mib: used.value, gpu_uuid: uuid });
  }
  return { ok: true, records };
}

/** `--query-gpu=index,uuid,memory.used,memory.total` */
export function parseGpus(text: string): Parsed<GpuInfo> {
  if (NO_DEVICES.test(text.trim())) return { ok: false, error: 'nvidia-smi found no GPUs' };
  const records: GpuInfo[] = [];
  for (const { line, cells } of rows(text)) {
    if (cells.length !== 4) return bad(line, `expected 4 fields (index, uuid, memory.used, memory.total), got ${cells.length}`, cells);
    const [indexS = '', uuid = '', usedS = '', totalS = ''] = cells;
    const used = intField(usedS);
    const total = intField(totalS);
    if (!INT.test(indexS)) return bad(line, 'index is not a GPU index', cells);
    if (!UUID.test(uuid)) return bad(line, 'uuid is not a GPU uuid', cells);
    if (!used.ok || !total.ok) return bad(line, 'memory is not a number of MiB', cells);
    records.push({ index: Number(indexS), uuid, used_mib: used.value, total_mib: total.value });
  }
  return { ok: true, records };
}

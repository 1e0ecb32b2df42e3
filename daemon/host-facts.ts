// The host a trial ran on, from systeminformation: OS, kernel, CPU, memory, GPU controllers and
// their driver. Collected off the hot path (started before the subject, awaited only briefly);
// a trial's start record carries them, so a result can be told apart by the machine it ran on.
import si from 'systeminformation';

export interface HostFacts {
  os: { distro: string; release: string; kernel: string; arch: string };
  cpu: { brand: string; manufacturer: string; cores: number; physical_cores: number };
  memory_bytes: number;
  gpus: { vendor: string; model: string; vram_mib: number | null; driver: string | null }[];
  /** how long collecting took */
  ms: number;
}

/** the facts, or why they could not be had (never throws; a part that fails is left empty) */
export async function collectHostFacts(timeoutMs = 5000): Promise<HostFacts | { error: string }> {
  const t0 = performance.now();
  const facts = (async (): Promise<HostFacts> => {
    const [os, cpu, mem, gfx] = await Promise.all([si.osInfo(), si.cpu(), si.mem(), si.graphics().catch(() => ({ controllers: [] }))]);
    return {
      os: { distro: os.distro, release: os.release, kernel: os.kernel, arch: os.arch },
      cpu: { brand: cpu.brand, manufacturer: cpu.manufacturer, cores: cpu.cores, physical_cores: cpu.physicalCores },
      memory_bytes: mem.total,
      gpus: gfx.controllers.map((c) => ({
        vendor: c.vendor,
        model: c.model,
        vram_mib: typeof c.vram === 'number' ? c.vram : null,
        driver: 'driverVersion' in c && typeof c.driverVersion === 'string' && c.driverVersion !== '' ? c.driverVersion : null,
      })),
      ms: Math.round(performance.now() - t0),
    };
  })();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ error: string }>((resolve) => {
    timer = setTimeout(() => resolve({ error: `not collected within ${timeoutMs} ms` }), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([facts, late]);
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** one line per fact, for `redline doctor` */
export function describeHost(f: HostFacts | { error: string }): string[] {
  if ('error' in f) return [`host facts: ${f.error}`];
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  return [
    `os: ${f.os.distro} ${f.os.release} (${f.os.arch}), kernel ${f.os.kernel}`,
    `cpu: ${f.cpu.manufacturer} ${f.cpu.brand}, ${f.cpu.cores} cores (${f.cpu.physical_cores} physical)`,
    `memory: ${gib(f.memory_bytes)}`,
    f.gpus.length === 0 ? 'gpus: none found' : `gpus: ${f.gpus.map((g) => `${g.vendor} ${g.model}${g.vram_mib ? ` ${g.vram_mib} MiB` : ''}${g.driver ? `, driver ${g.driver}` : ''}`).join('; ')}`,
  ];
}

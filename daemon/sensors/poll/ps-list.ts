// Processes from ps-list (it asks `ps`), for hosts where /proc is not mounted (macOS, a jail):
// pid, parent, name and command line only; the poll sees no files there.
import psList from 'ps-list';

export interface PsEntry {
  pid: number;
  ppid: number;
  name: string;
  cmd: string;
}

export async function psListSnapshot(): Promise<PsEntry[]> {
  const list = await psList({ all: true });
  return list.map((p) => ({ pid: p.pid, ppid: p.ppid, name: p.name, cmd: p.cmd ?? p.name }));
}

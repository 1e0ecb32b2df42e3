import { constants } from 'node:os';

const NAMES = new Map<number, string>();
for (const [name, num] of Object.entries(constants.signals)) if (!NAMES.has(num)) NAMES.set(num, name);

/** "SIGKILL" for 9; "signal 0" for the existence probe; "SIGRT+n" for realtime signals */
export function signalName(sig: number): string {
  if (sig === 0) return 'signal 0';
  const n = NAMES.get(sig);
  if (n) return n;
  if (sig >= 34 && sig <= 64) return `SIGRTMIN+${sig - 34}`;
  return `signal ${sig}`;
}

// The one place an unexpected error on the event → alert → freeze path goes. Expected races
// (a process or file that vanished while it was being read) are only counted; anything else
// is reported once per distinct error, so a bug hit by every event does not flood the log.

/** errno codes that mean "it was gone by the time we looked": part of watching processes */
const EXPECTED = new Set(['ENOENT', 'ESRCH']);
// distinct errors remembered; past this, new ones are still reported, old ones may repeat
const MAX_REMEMBERED = 1024;

export type ErrorReport = (key: string, err: Error, where: string) => void;

export class ErrorFunnel {
  private readonly seen = new Set<string>();
  /** every error that reached the funnel, reported or not */
  count = 0;
  /** vanished processes and files: dropped, as expected */
  races = 0;
  private reporting = false;

  constructor(private readonly onNew: ErrorReport) {}

  /** an error caught at `where`; never throws */
  report(where: string, thrown: unknown): void {
    this.count++;
    const err = thrown instanceof Error ? thrown : new Error(String(thrown));
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && EXPECTED.has(code)) {
      this.races++;
      return;
    }
    const key = `${where}: ${err.message.split('\n')[0] ?? ''}`;
    // an error raised while an error is being reported (a listener that throws on every
    // alert, this one included) would report itself without end: stderr gets it instead
    if (this.reporting) {
      process.stderr.write(`redline: internal error while reporting one: ${key}\n`);
      return;
    }
    if (!this.firstTime(key)) return;
    this.reporting = true;
    try {
      this.onNew(key, err, where);
    } catch (again) {
      // reporting failed too (the log is gone): stderr is all that is left
      process.stderr.write(`redline: internal error (${key}) could not be logged: ${String(again)}\n`);
    } finally {
      this.reporting = false;
    }
  }

  /** true the first time `key` is seen */
  firstTime(key: string): boolean {
    if (this.seen.has(key)) return false;
    if (this.seen.size >= MAX_REMEMBERED) this.seen.clear();
    this.seen.add(key);
    return true;
  }
}

// Start-up as a list of steps, each with its teardown: a step that fails undoes the ones
// before it (last first), and stopping undoes them all the same way.

export class Steps {
  private readonly undo: { name: string; down: () => unknown }[] = [];

  /** one step; its teardown (given what the step returned) is kept for later */
  async run<T>(name: string, up: () => T | Promise<T>, down?: (t: T) => unknown): Promise<T> {
    const t = await up();
    if (down) this.undo.push({ name, down: () => down(t) });
    return t;
  }

  /** a teardown for work a step left running in the background */
  add(name: string, down: () => unknown): void {
    this.undo.push({ name, down });
  }

  /** every teardown so far, last first; one that fails is reported and the others still run */
  async teardown(report: (name: string, err: unknown) => void): Promise<void> {
    for (let s = this.undo.pop(); s; s = this.undo.pop()) {
      try {
        await s.down();
      } catch (err) {
        report(s.name, err);
      }
    }
  }
}

/**
 * Waits on state that changes by events (a manager's calls, a published trigger, a log line): the
 * owner calls notify() after each change and every open wait re-checks its condition then, so a
 * test goes on at the change itself, with no polling interval and no race with a timer.
 */
export class Signal {
  private readonly waits = new Set<() => void>();

  /**
   * Resolves with what `get` gives once it gives something (not undefined, null or false): at
   * once, or at the notify() that makes it so. Rejects after `ms`, saying what it waited for;
   * `what` may be a function, read then, to tell how far it got.
   */
  until<T>(
    get: () => T | undefined | null | false,
    what: string | (() => string),
    ms = 5000,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const ready = (): T | undefined => {
        const value = get();
        return value === undefined || value === null || value === false ? undefined : value;
      };
      const now = ready();
      if (now !== undefined) {
        resolve(now);
        return;
      }
      const check = () => {
        const value = ready();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waits.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waits.delete(check);
        const said = typeof what === 'string' ? what : what();
        reject(new Error(`timed out after ${ms} ms waiting for ${said}`));
      }, ms);
      this.waits.add(check);
    });
  }

  /** Something changed: settles every wait whose condition now holds. */
  notify(): void {
    for (const check of [...this.waits]) check();
  }
}

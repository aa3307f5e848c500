/**
 * Whether the database takes writes, as the last write batch found, for both engines: readiness
 * (ping()) fails while it does not, and a probe write runs every `intervalMs` until one commits.
 * The probe goes through the engine's own write path, so its outcome reaches failed()/succeeded()
 * like any batch's.
 */

/** While writes fail: how often a probe write checks whether the database takes writes again. */
export const WRITE_PROBE_INTERVAL_MS = 2000;

export class WriteHealth {
  private reason: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly probe: () => void,
    readonly intervalMs = WRITE_PROBE_INTERVAL_MS,
  ) {}

  /** Why the last write batch could not write, or undefined once one did. */
  get failure(): string | undefined {
    return this.reason;
  }

  failed(reason: string): void {
    this.reason = reason;
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.reason !== undefined && !this.stopped) this.probe();
    }, this.intervalMs);
    this.timer.unref();
  }

  succeeded(): void {
    this.reason = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The store is closing: no more probes. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

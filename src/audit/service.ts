/**
 * The audit log's use cases: read it page by page, and keep it within its retention. Entries are
 * written by the services of the writes they record (the device and enrollment services, through
 * the AuditRecorder seam of devices/admin.ts), in the same transaction.
 */
import type { AuditEntry, AuditStore } from './store.js';

/** How often retention runs while the server runs (and once at start). */
export const AUDIT_PRUNE_INTERVAL_MS = 60 * 60 * 1000;

export interface AuditServiceOptions {
  /** Entries older than this are pruned; 0 keeps them forever (--audit-retention). */
  retentionMs: number;
  now?: () => number;
  /** The primary id of the device holding an alias, else the id itself (the device service's). */
  resolveId: (rawId: string) => Promise<string>;
}

export interface AuditPageQuery {
  /** A device's id or alias: its primary id's entries (a deleted device's by its id). */
  device?: string | undefined;
  after?: number | undefined;
  limit: number;
}

export class AuditService {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: AuditStore,
    private readonly opts: AuditServiceOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  async list(q: AuditPageQuery): Promise<AuditEntry[]> {
    const device = q.device === undefined ? undefined : await this.opts.resolveId(q.device);
    return this.store.list({ device, after: q.after, limit: q.limit });
  }

  /** Deletes the entries past retention; returns how many (none with retention 0). */
  prune(): Promise<number> {
    if (this.opts.retentionMs === 0) return Promise.resolve(0);
    return this.store.prune(this.now() - this.opts.retentionMs);
  }

  /** Prunes now and then every AUDIT_PRUNE_INTERVAL_MS until stop(); failures go to `onError`. */
  start(onError: (e: unknown) => void): void {
    if (this.opts.retentionMs === 0 || this.timer) return;
    const run = () => void this.prune().catch(onError);
    run();
    this.timer = setInterval(run, AUDIT_PRUNE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

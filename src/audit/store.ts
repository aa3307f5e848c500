/**
 * The audit log's records and store: one entry per admin write, appended as a step of the
 * write's own transaction (db/unit-of-work.ts), so that a change and its entry commit or fail
 * together. Imports only types.
 *
 * Times are integers (milliseconds since the epoch); the API renders them as ISO 8601.
 */
import type { Step } from '../db/unit-of-work.js';
import type { AuditRecord, AuditRecorder } from '../devices/admin.js';

export interface AuditEntry extends AuditRecord {
  /** Increases with every entry, never reused (the paging cursor `after`). */
  seq: number;
}

export interface AuditQuery {
  /** Only this device's entries (its primary id); all when undefined. */
  device?: string | undefined;
  /** Entries with a seq above this one. */
  after?: number | undefined;
  limit: number;
}

/** One implementation per engine: store-sqlite.ts, store-postgres.ts (and a fake in test/fakes/). */
export interface AuditStore extends AuditRecorder {
  /**
   * Appends an entry as a step of the caller's transaction; `entry` is called when the step
   * runs (after the change it records, whose results it reads).
   */
  appendStep(entry: () => AuditRecord): Step<AuditEntry>;
  /** Entries oldest first (by seq), after `after`, at most `limit`. */
  list(q: AuditQuery): Promise<AuditEntry[]>;
  /** Deletes the entries older than `before` (ms); returns how many. */
  prune(before: number): Promise<number>;
}

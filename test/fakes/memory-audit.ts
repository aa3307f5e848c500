/** The in-memory fake of the audit store (test-only, like test/fakes/memory-stores.ts). */
import type { MemoryStep } from '../../src/db/unit-of-work.js';
import type { AuditRecord } from '../../src/devices/admin.js';
import type { AuditEntry, AuditQuery, AuditStore } from '../../src/audit/store.js';
import type { MemoryTables } from './memory-stores.js';

export class MemoryAuditStore implements AuditStore {
  /** Oldest first, as the engines' audit_log by seq. */
  readonly entries: AuditEntry[] = [];
  private lastSeq = 0;

  constructor(private readonly t: MemoryTables) {
    t.onSnapshot(() => {
      const entries = [...this.entries];
      const lastSeq = this.lastSeq;
      return () => {
        this.entries.splice(0, this.entries.length, ...entries);
        this.lastSeq = lastSeq;
      };
    });
  }

  appendStep(entry: () => AuditRecord): MemoryStep<AuditEntry> {
    return this.t.step(() => {
      const record = entry();
      // The engines' NOT NULL columns of audit_log.
      for (const column of ['actor', 'source', 'action', 'via'] as const)
        if (typeof record[column] !== 'string')
          throw new Error(`NOT NULL constraint failed: audit_log.${column}`);
      // A copy through JSON, as the engines keep the images as JSON text.
      const stored = JSON.parse(JSON.stringify({ ...record, seq: ++this.lastSeq })) as AuditEntry;
      this.entries.push(stored);
      return structuredClone(stored);
    });
  }

  list(q: AuditQuery): Promise<AuditEntry[]> {
    return this.t.run(() =>
      this.entries
        .filter((e) => e.seq > (q.after ?? 0) && (q.device === undefined || e.device === q.device))
        .slice(0, q.limit)
        .map((e) => structuredClone(e)),
    );
  }

  prune(before: number): Promise<number> {
    return this.t.run(() => {
      const kept = this.entries.filter((e) => e.at >= before);
      const pruned = this.entries.length - kept.length;
      this.entries.splice(0, this.entries.length, ...kept);
      return pruned;
    });
  }
}

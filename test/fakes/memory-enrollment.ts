/** The in-memory fake of the enrollment store (test-only, like test/fakes/memory-stores.ts). */
import type { MemoryStep } from '../../src/db/unit-of-work.js';
import {
  AlreadyRejectedError,
  DeviceRejectedError,
  NotPendingError,
  NotRejectedError,
} from '../../src/enrollment/errors.js';
import { ALIASES_PER_DEVICE_MAX } from '../../src/devices/identity.js';
import {
  mergePendingAliases,
  type EnrollmentStore,
  type PendingDevice,
  type PendingRegistration,
  type RejectedDevice,
} from '../../src/enrollment/store.js';
import { mapSnapshot, type MemoryTables } from './memory-stores.js';

export class MemoryEnrollmentStore implements EnrollmentStore {
  readonly pending = new Map<string, PendingDevice>();
  readonly rejected = new Map<string, RejectedDevice>();

  constructor(private readonly t: MemoryTables) {
    t.onSnapshot(() => {
      const pending = mapSnapshot(this.pending);
      const rejected = mapSnapshot(this.rejected);
      return () => {
        pending();
        rejected();
      };
    });
  }

  pendStep(reg: PendingRegistration): MemoryStep<{ created: boolean; pending: PendingDevice }> {
    return this.t.step(() => {
      if (this.rejected.has(reg.id)) throw new DeviceRejectedError(reg.id);
      const old = this.pending.get(reg.id);
      const pending: PendingDevice = {
        id: reg.id,
        ip: reg.ip,
        name: reg.name,
        userdata: reg.userdata,
        source: reg.source,
        aliases: mergePendingAliases(old?.aliases ?? [], reg.aliases, ALIASES_PER_DEVICE_MAX),
        firstSeen: old?.firstSeen ?? reg.at,
        lastSeen: reg.at,
        registrations: (old?.registrations ?? 0) + 1,
      };
      this.pending.set(reg.id, pending);
      return { created: old === undefined, pending: { ...pending } };
    });
  }

  takeStep(id: string): MemoryStep<PendingDevice> {
    return this.t.step(() => {
      const p = this.pending.get(id);
      if (!p) throw new NotPendingError(id);
      this.pending.delete(id);
      return p;
    });
  }

  dropStep(id: string): MemoryStep<void> {
    return this.t.step(() => {
      this.pending.delete(id);
    });
  }

  rejectStep(id: string, at: number): MemoryStep<RejectedDevice> {
    return this.t.step(() => {
      if (this.rejected.has(id)) throw new AlreadyRejectedError(id);
      const p = this.pending.get(id);
      if (!p) throw new NotPendingError(id);
      this.pending.delete(id);
      const r = { id, at, ip: p.ip, source: p.source };
      this.rejected.set(id, r);
      return { ...r };
    });
  }

  liftStep(id: string): MemoryStep<RejectedDevice> {
    return this.t.step(() => {
      const r = this.rejected.get(id);
      if (!r) throw new NotRejectedError(id);
      this.rejected.delete(id);
      return r;
    });
  }

  getPending(id: string): Promise<PendingDevice | undefined> {
    return this.t.run(() => {
      const p = this.pending.get(id);
      return p && { ...p };
    });
  }

  getRejected(id: string): Promise<RejectedDevice | undefined> {
    return this.t.run(() => {
      const r = this.rejected.get(id);
      return r && { ...r };
    });
  }

  listPending(after: string | undefined, limit: number): Promise<PendingDevice[]> {
    return this.t.run(() => page(this.pending, after, limit));
  }

  countPending(): Promise<number> {
    return this.t.run(() => this.pending.size);
  }

  listRejected(after: string | undefined, limit: number): Promise<RejectedDevice[]> {
    return this.t.run(() => page(this.rejected, after, limit));
  }
}

function page<T extends { id: string }>(
  rows: Map<string, T>,
  after: string | undefined,
  limit: number,
): T[] {
  return [...rows.values()]
    .filter((r) => after === undefined || r.id > after)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, limit)
    .map((r) => ({ ...r }));
}

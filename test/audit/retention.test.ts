/**
 * AuditService's retention schedule on node:test's mocked timers: pruned at start and every
 * hour with the cutoff of its injected clock; never with retention 0.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { AUDIT_PRUNE_INTERVAL_MS, AuditService } from '../../src/audit/service.js';
import type { AuditStore } from '../../src/audit/store.js';

function countingStore(): { store: AuditStore; cutoffs: number[] } {
  const cutoffs: number[] = [];
  const store = {
    appendStep: () => {
      throw new Error('not used');
    },
    list: () => Promise.resolve([]),
    prune: (before: number) => {
      cutoffs.push(before);
      return Promise.resolve(0);
    },
  } satisfies AuditStore;
  return { store, cutoffs };
}

describe('audit retention schedule', () => {
  it('prunes at start and then hourly, entries older than the retention', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const clock = { now: 1_000_000_000_000 };
      const { store, cutoffs } = countingStore();
      const audit = new AuditService(store, {
        retentionMs: 7 * 86_400_000,
        now: () => clock.now,
        resolveId: (id) => Promise.resolve(id),
      });
      audit.start(() => assert.fail('no failure expected'));
      assert.deepEqual(cutoffs, [clock.now - 7 * 86_400_000]);
      clock.now += AUDIT_PRUNE_INTERVAL_MS;
      mock.timers.tick(AUDIT_PRUNE_INTERVAL_MS);
      assert.deepEqual(cutoffs.length, 2);
      assert.equal(cutoffs[1], clock.now - 7 * 86_400_000);
      audit.stop();
      mock.timers.tick(AUDIT_PRUNE_INTERVAL_MS);
      assert.equal(cutoffs.length, 2, 'stopped');
    } finally {
      mock.timers.reset();
    }
  });

  it('never prunes with retention 0', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const { store, cutoffs } = countingStore();
      const audit = new AuditService(store, {
        retentionMs: 0,
        resolveId: (id) => Promise.resolve(id),
      });
      audit.start(() => undefined);
      mock.timers.tick(10 * AUDIT_PRUNE_INTERVAL_MS);
      assert.deepEqual(cutoffs, []);
      audit.stop();
    } finally {
      mock.timers.reset();
    }
  });
});

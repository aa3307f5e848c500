/** The SQLite outbox queries the dispatcher relies on (the shared store suite covers the rest). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SqliteStore } from '../storage/store-view.js';
import { PLANNED_SQL } from '../../src/triggers/outbox-sqlite.js';
import { isClaimed } from '../../src/triggers/outbox.js';
import { type RegisterOptions } from '../storage/store-view.js';
import { tempSqliteStore } from '../helpers.js';

const opts = { enqueueTrigger: true, historyLimit: 0 };
const reg = (
  store: SqliteStore,
  id: string,
  ip: string,
  at: number,
  options: RegisterOptions = opts,
) => store.register({ id, ip, name: '', userdata: '', source: '', at }, options);

async function withStore(fn: (store: SqliteStore) => Promise<void>): Promise<void> {
  const { store, cleanup } = tempSqliteStore();
  try {
    await fn(store);
  } finally {
    await cleanup();
  }
}

describe('SQLite trigger outbox', () => {
  it('a registration while the pending trigger is leased queues a second one behind it', () =>
    withStore(async (store) => {
      await reg(store, 'd', '10.0.0.1', 1000);
      const [claimed] = await store.claimTriggers(1000, 10, 5000);
      assert.ok(claimed);
      const second = (await reg(store, 'd', '10.0.0.2', 1100)).trigger!;
      assert.notEqual(second.id, claimed.id);
      // the second is not claimable while the first is pending, nor counted as due
      assert.deepEqual(await store.claimTriggers(1200, 10, 5000), []);
      assert.equal(await store.nextTriggerDue(), undefined);
      assert.equal(await store.countPendingTriggers(), 2);
      assert.ok(await store.completeTrigger(claimed, { kind: 'delivered', at: 1300 }));
      assert.equal(await store.nextTriggerDue(), 1100);
      const [next] = await store.claimTriggers(1300, 10, 5000);
      assert.equal(next?.ip, '10.0.0.2');
    }));

  it('nextTriggerDue is the earliest claimable time, skipping in-flight triggers', () =>
    withStore(async (store) => {
      await reg(store, 'a', '10.0.0.1', 1000);
      await reg(store, 'b', '10.0.0.2', 2000);
      assert.equal(await store.nextTriggerDue(), 1000);
      const [a] = await store.claimTriggers(1500, 1, 5000);
      assert.equal(a?.deviceId, 'a');
      assert.equal(await store.nextTriggerDue(), 2000);
      await store.completeTrigger(a, {
        kind: 'retry',
        at: 1600,
        nextAttemptAt: 1700,
        error: 'HTTP 500',
      });
      assert.equal(await store.nextTriggerDue(), 1700);
    }));

  it('a registration after an expired lease takes the trigger over; the old lease is void', () =>
    withStore(async (store) => {
      await reg(store, 'd', '10.0.0.1', 1000);
      const [stale] = await store.claimTriggers(1000, 1, 100);
      const fresh = (await reg(store, 'd', '10.0.0.9', 2000)).trigger!;
      assert.equal(fresh.id, stale!.id);
      assert.equal(fresh.ip, '10.0.0.9');
      assert.equal(fresh.attempts, 0);
      assert.notEqual(fresh.key, stale!.key, 'a new registration is a new request');
      assert.equal(await store.completeTrigger(stale!, { kind: 'delivered', at: 2100 }), false);
      assert.equal((await store.latestTrigger('d'))?.state, 'pending');
    }));

  it('claims, coalescing and the due time use the outbox indexes (no scan of all pending)', () =>
    withStore(async (store) => {
      const plan = (sql: string) =>
        (
          store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({
            now: 1,
            limit: 1,
            leaseUntil: 1,
            token: 'x',
            deviceId: 'd',
            at: 1,
            ip: '',
            type: 'registered',
            key: '',
            prevId: null,
          }) as { detail: string }[]
        )
          .map((r) => r.detail)
          .join('\n');
      for (const name of ['claim', 'coalesce', 'nextDue'] as const) {
        const p = plan(PLANNED_SQL[name]);
        assert.doesNotMatch(p, /triggers_state/, `${name}:\n${p}`);
        // the per-device checks read only the device's pending triggers, not its whole past
        assert.match(p, /triggers_device_pending/, `${name}:\n${p}`);
        assert.doesNotMatch(p, /^SCAN (t|triggers)$/m, `${name}: full table scan\n${p}`);
      }
      const unleased = plan(PLANNED_SQL.unleasedPending);
      assert.match(unleased, /triggers_due/, unleased);
      for (const name of ['devicePending', 'devicePendingTrigger'] as const) {
        const p = (
          store.db.prepare(`EXPLAIN QUERY PLAN ${PLANNED_SQL[name]}`).all('d') as {
            detail: string;
          }[]
        )
          .map((r) => r.detail)
          .join('\n');
        assert.match(p, /triggers_device_pending/, `${name}:\n${p}`);
      }
    }));

  it('hand-over: a new trigger is leased with its registration unless the device has one pending', () =>
    withStore(async (store) => {
      const handOver = { ...opts, handOverLeaseMs: 500 };
      const at = 1000;
      const first = (await reg(store, 'd', '10.0.0.1', at, handOver)).trigger!;
      assert.ok(isClaimed(first), 'handed over with its lease token');
      assert.equal(first.leaseUntil, at + 500);
      assert.equal(first.attempts, 1, 'the hand-over is the first attempt');
      assert.deepEqual(await store.claimTriggers(at + 1, 10, 5000), [], 'leased: not claimable');
      assert.equal(await store.hasUnleasedTriggers(), false);

      // The device registers again while the first is out: queued behind it, not leased.
      const second = (await reg(store, 'd', '10.0.0.2', at + 10, handOver)).trigger!;
      assert.equal(second.leaseUntil, null);
      assert.equal(isClaimed(second), false);
      assert.equal(second.attempts, 0);
      assert.equal(await store.hasUnleasedTriggers(), true);
      // ...and a third coalesces into the second, still not leased.
      const third = (await reg(store, 'd', '10.0.0.3', at + 20, handOver)).trigger!;
      assert.equal(third.id, second.id);
      assert.equal(third.leaseUntil, null);
      assert.equal(isClaimed(third), false);

      // The handed-over trigger completes with its own lease, lazily batched or not.
      assert.equal(
        await store.completeTrigger(first, { kind: 'delivered', at: at + 30 }, { lazy: true }),
        true,
      );
      const [next] = await store.claimTriggers(at + 40, 10, 5000);
      assert.equal(next?.ip, '10.0.0.3');
    }));

  it('hand-over: if the process dies, its lease expires and a claim takes the trigger with the same key', () =>
    withStore(async (store) => {
      const { trigger } = await reg(store, 'd', '10.0.0.1', 1000, {
        ...opts,
        handOverLeaseMs: 500,
      });
      assert.ok(trigger && isClaimed(trigger));
      assert.deepEqual(await store.claimTriggers(1499, 10, 5000), []);
      const [again] = await store.claimTriggers(1501, 10, 5000);
      assert.ok(again, 'claimed once the lease expired');
      assert.equal(again.key, trigger.key);
      assert.equal(again.attempts, 2);
      assert.equal(
        await store.completeTrigger(trigger, { kind: 'delivered', at: 1502 }),
        false,
        'the dead lease is void',
      );
    }));

  it('pruning keeps the latest trigger of existing devices only', () =>
    withStore(async (store) => {
      for (const [id, at] of [
        ['a', 1000],
        ['b', 1000],
      ] as const) {
        await reg(store, id, '10.0.0.1', at);
        const [t] = await store.claimTriggers(at, 1, 1000);
        await store.completeTrigger(t!, { kind: 'delivered', at });
      }
      await store.requeueTrigger('a', 2000);
      const [t] = await store.claimTriggers(2000, 1, 1000);
      await store.completeTrigger(t!, { kind: 'failed', at: 2000, error: 'HTTP 400' });
      await store.delete('b');
      assert.equal(await store.pruneTriggers(5000), 2);
      const left = await store.listTriggers(undefined, undefined, 10);
      assert.deepEqual(
        left.map((x) => [x.deviceId, x.state]),
        [['a', 'failed']],
      );
    }));
});

/**
 * The store contract, run unchanged against every Store implementation
 * (sqlite.test.ts, postgres.test.ts).
 */
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import { DeviceNotFoundError } from '../../src/errors.js';
import type { Registration } from '../../src/devices/store.js';
import type { TriggerOutcome } from '../../src/triggers/outbox.js';
import type { StoreView } from './store-view.js';
import { applyOutcome } from '../../src/triggers/dispatcher.js';

export interface OpenedStore {
  store: StoreView;
  cleanup: () => Promise<void>;
}

const T0 = 1_700_000_000_000;

function reg(id: string, ip: string, at: number, extra: Partial<Registration> = {}): Registration {
  return { id, ip, name: '', userdata: '', source: '192.0.2.1', at, ...extra };
}

const noTrigger = { enqueueTrigger: false, historyLimit: 20 };
const withTrigger = { enqueueTrigger: true, historyLimit: 20 };

export function storeSuite(name: string, open: () => Promise<OpenedStore>): void {
  describe(`StoreView contract: ${name}`, () => {
    let opened: OpenedStore | undefined;
    let store: StoreView;
    beforeEach(async () => {
      if (opened) await opened.cleanup();
      opened = await open();
      store = opened.store;
    });
    after(async () => {
      await opened?.cleanup();
    });

    describe('devices', () => {
      it('creates on first registration and updates after, counting registrations', async () => {
        const first = await store.register(
          reg('dev-1', '10.0.0.1', T0, { name: 'a', userdata: 'u' }),
          noTrigger,
        );
        assert.equal(first.created, true);
        assert.equal(first.device.registrations, 1);
        assert.equal(first.trigger, undefined);
        const second = await store.register(
          reg('dev-1', '10.0.0.2', T0 + 1000, { source: '192.0.2.9' }),
          noTrigger,
        );
        assert.equal(second.created, false);
        const d = await store.get('dev-1');
        assert.deepEqual(d, {
          id: 'dev-1',
          ip: '10.0.0.2',
          name: '',
          userdata: '',
          firstSeen: T0,
          lastSeen: T0 + 1000,
          updatedAt: T0 + 1000,
          registrations: 2,
          lastSource: '192.0.2.9',
          pinned: { name: false, userdata: false },
          reported: { name: '', userdata: '' },
        });
        assert.equal(typeof d.registrations, 'number');
      });

      it('keeps a field a registration omits, and a pinned one, recording what the device reported', async () => {
        await store.register(
          reg('dev-p', '10.0.0.1', T0, { name: 'dev', userdata: 'boot' }),
          noTrigger,
        );
        await store.edit('dev-p', { name: 'keep', userdata: 'admin note' }, T0 + 1);
        const omitted = await store.register(
          { id: 'dev-p', ip: '10.0.0.2', source: '', at: T0 + 2 },
          noTrigger,
        );
        assert.equal(omitted.device.name, 'keep');
        assert.equal(omitted.device.userdata, 'admin note');
        assert.equal(omitted.device.ip, '10.0.0.2');
        // Unpinned: the device's own value wins again.
        await store.register(reg('dev-p', '10.0.0.2', T0 + 3, { name: 'dev2' }), noTrigger);
        assert.equal((await store.get('dev-p')).name, 'dev2');
        const pinned = await store.edit('dev-p', { name: 'admin', pinned: { name: true } }, T0 + 4);
        assert.deepEqual(pinned.pinned, { name: true, userdata: false });
        await store.register(
          reg('dev-p', '10.0.0.3', T0 + 5, { name: 'dev3', userdata: 'u3' }),
          noTrigger,
        );
        const d = await store.get('dev-p');
        assert.equal(d.name, 'admin');
        assert.equal(d.userdata, 'u3');
        assert.deepEqual(d.reported, { name: 'dev3', userdata: 'u3' });
        // A partial edit leaves the other members and pins alone.
        const e = await store.edit('dev-p', { ip: '10.0.0.9' }, T0 + 6);
        assert.equal(e.name, 'admin');
        assert.deepEqual(e.pinned, { name: true, userdata: false });
        const unpinned = await store.edit('dev-p', { pinned: { name: false } }, T0 + 7);
        assert.deepEqual(unpinned.pinned, { name: false, userdata: false });
      });

      it('resolves aliases to their device, one device per alias value', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), noTrigger);
        await store.register(reg('dev-b', '10.0.0.2', T0), noTrigger);
        const serial = { type: 'serial' as const, value: 'FOC123' };
        const mac = { type: 'mac' as const, value: '00:11:22:33:44:55' };
        assert.deepEqual(await store.addAliases('dev-a', [serial, mac]), [mac, serial]);
        assert.equal((await store.get('FOC123')).id, 'dev-a');
        // The manager's lookup reads the record alone, by id or alias alike.
        const record = { id: 'dev-a', ip: '10.0.0.1', name: '', userdata: '' };
        assert.deepEqual(await store.record('FOC123'), record);
        assert.deepEqual(await store.record('dev-a'), record);
        assert.equal(await store.resolveId('00:11:22:33:44:55'), 'dev-a');
        assert.equal(await store.resolveId('dev-b'), 'dev-b');
        assert.equal(await store.resolveId('unknown'), 'unknown');
        // Held by another device, or another device's primary id: refused, nothing stored.
        await assert.rejects(store.addAliases('dev-b', [{ type: 'cpu', value: 'c1' }, serial]), {
          code: 'alias_conflict',
          extra: { alias: 'FOC123', holder: 'dev-a' },
        });
        await assert.rejects(store.addAliases('dev-b', [{ type: 'serial', value: 'dev-a' }]), {
          code: 'alias_conflict',
        });
        assert.deepEqual(await store.aliases('dev-b'), []);
        // A registration by an alias updates its holder; its aliases are added there.
        const r = await store.register(
          { ...reg('dev-a', '10.0.0.7', T0 + 1), aliases: [{ type: 'dmi', value: 'd-1' }] },
          noTrigger,
        );
        assert.equal(r.device.id, 'dev-a');
        assert.equal(r.device.ip, '10.0.0.7');
        assert.equal((await store.get('d-1')).id, 'dev-a');
        await assert.rejects(
          store.register({ ...reg('dev-b', '10.0.0.8', T0 + 2), aliases: [serial] }, noTrigger),
          { code: 'alias_conflict' },
        );
        assert.equal((await store.get('dev-b')).registrations, 1);
        // The limit counts the aliases a device already holds.
        await assert.rejects(
          store.addAliases(
            'dev-b',
            [
              { type: 'cpu', value: 'c1' },
              { type: 'cpu', value: 'c2' },
            ],
            1,
          ),
          { code: 'too_many_aliases' },
        );
        await store.removeAlias('dev-a', serial);
        await assert.rejects(store.get('FOC123'), DeviceNotFoundError);
        await assert.rejects(store.removeAlias('dev-a', serial), { code: 'alias_not_found' });
        await assert.rejects(store.removeAlias('nope', serial), DeviceNotFoundError);
        // Deleting a device frees its aliases.
        await store.delete('dev-a');
        await assert.rejects(store.get('d-1'), DeviceNotFoundError);
        await store.addAliases('dev-b', [mac]);
        assert.equal((await store.get('00:11:22:33:44:55')).id, 'dev-b');
        // The console's search matches aliases.
        const page = await store.queryDevices({ search: '44:55', limit: 10, offset: 0 });
        assert.deepEqual(
          page.items.map((i) => i.device.id),
          ['dev-b'],
        );
      });

      it('throws DeviceNotFoundError for unknown ids on get, record, edit and delete', async () => {
        await assert.rejects(store.get('nope'), DeviceNotFoundError);
        await assert.rejects(store.record('nope'), DeviceNotFoundError);
        await assert.rejects(
          store.edit('nope', { ip: '1.1.1.1', pinned: { name: true } }, T0),
          DeviceNotFoundError,
        );
        await assert.rejects(store.delete('nope'), DeviceNotFoundError);
        assert.equal(await store.countDevices(), 0);
      });

      it('edits fields without counting a registration or touching last seen', async () => {
        await store.register(reg('dev-1', '10.0.0.1', T0), noTrigger);
        const edited = await store.edit(
          'dev-1',
          { ip: '10.9.9.9', name: 'renamed', userdata: 'x' },
          T0 + 5,
        );
        assert.equal(edited.ip, '10.9.9.9');
        assert.equal(edited.name, 'renamed');
        assert.equal(edited.registrations, 1);
        assert.equal(edited.lastSeen, T0);
        assert.equal(edited.updatedAt, T0 + 5);
        assert.deepEqual(await store.get('dev-1'), edited);
      });

      it('deletes a device with its history and returns what was removed', async () => {
        await store.register(reg('dev-1', '10.0.0.1', T0, { name: 'gone' }), noTrigger);
        const removed = await store.delete('dev-1');
        assert.equal(removed.name, 'gone');
        await assert.rejects(store.get('dev-1'), DeviceNotFoundError);
        assert.deepEqual(await store.history('dev-1'), []);
        const again = await store.register(reg('dev-1', '10.0.0.3', T0 + 9), noTrigger);
        assert.equal(again.created, true);
        assert.equal(again.device.registrations, 1);
      });

      it('lists ids in byte order with cursor paging', async () => {
        const ids = ['b', 'A', 'a', 'aa:bb:cc:dd:ee:ff', 'Z-1', '0', 'a.b', 'a_b'];
        for (const id of ids) await store.register(reg(id, '10.0.0.1', T0), noTrigger);
        const sorted = [...ids].sort();
        assert.deepEqual(await store.listIds(undefined, 100), sorted);
        assert.deepEqual(await store.listIds(undefined, 3), sorted.slice(0, 3));
        assert.deepEqual(await store.listIds(sorted[2], 3), sorted.slice(3, 6));
        assert.deepEqual(await store.listIds(sorted.at(-1), 3), []);
        assert.equal(await store.countDevices(), ids.length);
      });

      it('keeps the last N registrations as history, newest first', async () => {
        for (let i = 0; i < 7; i++) {
          await store.register(reg('dev-h', `10.0.0.${i}`, T0 + i, { source: `192.0.2.${i}` }), {
            enqueueTrigger: false,
            historyLimit: 3,
          });
        }
        assert.deepEqual(await store.history('dev-h'), [
          { at: T0 + 6, ip: '10.0.0.6', source: '192.0.2.6' },
          { at: T0 + 5, ip: '10.0.0.5', source: '192.0.2.5' },
          { at: T0 + 4, ip: '10.0.0.4', source: '192.0.2.4' },
        ]);
        await store.register(reg('dev-none', '10.0.0.1', T0), {
          enqueueTrigger: false,
          historyLimit: 0,
        });
        assert.deepEqual(await store.history('dev-none'), []);
      });

      it('commits concurrent registrations of overlapping ids consistently', async () => {
        const writes = [];
        for (let i = 0; i < 300; i++)
          writes.push(store.register(reg(`dev-${i % 50}`, `10.1.0.${i % 250}`, T0 + i), noTrigger));
        const results = await Promise.all(writes);
        assert.equal(results.filter((r) => r.created).length, 50);
        assert.equal(await store.countDevices(), 50);
        const d = await store.get('dev-7');
        assert.equal(d.registrations, 6);
      });

      it('queries devices with search, sort and paging', async () => {
        await store.register(reg('sw-1', '10.0.0.1', T0, { name: 'Core Switch' }), noTrigger);
        await store.register(reg('sw-2', '10.0.0.2', T0 + 2, { name: 'edge' }), noTrigger);
        await store.register(reg('srv-1', '10.0.5.1', T0 + 1, { name: 'db_server%' }), noTrigger);
        const all = await store.queryDevices({ limit: 10, offset: 0 });
        assert.equal(all.total, 3);
        assert.deepEqual(
          all.items.map((d) => d.device.id),
          ['srv-1', 'sw-1', 'sw-2'],
        );
        const byName = await store.queryDevices({ search: 'core', limit: 10, offset: 0 });
        assert.deepEqual(
          byName.items.map((d) => d.device.id),
          ['sw-1'],
        );
        const byIp = await store.queryDevices({ search: '10.0.5', limit: 10, offset: 0 });
        assert.deepEqual(
          byIp.items.map((d) => d.device.id),
          ['srv-1'],
        );
        const literal = await store.queryDevices({ search: '_server%', limit: 10, offset: 0 });
        assert.deepEqual(
          literal.items.map((d) => d.device.id),
          ['srv-1'],
        );
        const wildcardIsLiteral = await store.queryDevices({ search: '%', limit: 10, offset: 0 });
        assert.equal(wildcardIsLiteral.total, 1);
        const recent = await store.queryDevices({
          sort: 'lastSeen',
          order: 'desc',
          limit: 2,
          offset: 0,
        });
        assert.deepEqual(
          recent.items.map((d) => d.device.id),
          ['sw-2', 'srv-1'],
        );
        assert.equal(recent.total, 3);
        const page2 = await store.queryDevices({
          sort: 'lastSeen',
          order: 'desc',
          limit: 2,
          offset: 2,
        });
        assert.deepEqual(
          page2.items.map((d) => d.device.id),
          ['sw-1'],
        );
        assert.equal(await store.countSeenSince(T0 + 1), 2);
      });

      it("filters devices by their latest trigger's state, together with the search", async () => {
        const states = {
          'sw-failed': 'failed',
          'sw-dead': 'dead',
          'srv-failed': 'failed',
        } as const;
        for (const id of ['sw-failed', 'sw-dead', 'srv-failed', 'sw-retriggered', 'sw-delivered'])
          await store.register(reg(id, '10.0.0.1', T0), withTrigger);
        await store.register(reg('sw-none', '10.0.0.2', T0), noTrigger);
        for (const t of await store.claimTriggers(T0, 10, 60_000)) {
          const state =
            t.deviceId in states ? states[t.deviceId as keyof typeof states] : undefined;
          if (t.deviceId === 'sw-delivered')
            await store.completeTrigger(t, { kind: 'delivered', at: T0 + 1 });
          else await store.completeTrigger(t, { kind: state ?? 'failed', at: T0 + 1, error: 'x' });
        }
        // Re-triggered after its failure: its latest trigger is pending, no longer failed.
        await store.requeueTrigger('sw-retriggered', T0 + 2);

        const ids = async (q: Partial<Parameters<StoreView['queryDevices']>[0]>) => {
          const page = await store.queryDevices({ limit: 10, offset: 0, ...q });
          assert.equal(page.total, page.items.length);
          return page.items.map((d) => d.device.id);
        };
        assert.deepEqual(await ids({ triggerState: 'failed' }), ['srv-failed', 'sw-failed']);
        assert.deepEqual(await ids({ triggerState: 'dead' }), ['sw-dead']);
        assert.deepEqual(await ids({ triggerState: 'pending' }), ['sw-retriggered']);
        assert.deepEqual(await ids({ triggerState: 'delivered' }), ['sw-delivered']);
        assert.deepEqual(await ids({ triggerState: 'failed', search: 'sw' }), ['sw-failed']);
        assert.deepEqual(await ids({ triggerState: 'dead', search: 'srv' }), []);
        // Paging past the matches still counts them.
        const beyond = await store.queryDevices({ triggerState: 'failed', limit: 1, offset: 5 });
        assert.deepEqual(beyond, { total: 2, items: [] });
      });

      it('gives each device of a page its latest trigger, read in the same query', async () => {
        // Registered out of id order, so that a join losing the page's order would show.
        for (const [id, name] of [
          ['dev-c', 'alpha'],
          ['dev-a', 'gamma'],
          ['dev-b', 'beta'],
        ] as const)
          await store.register(reg(id, '10.0.0.1', T0, { name }), withTrigger);
        await store.register(reg('dev-none', '10.0.0.2', T0, { name: 'delta' }), noTrigger);
        const claimed = await store.claimTriggers(T0, 10, 60_000);
        const ofA = claimed.find((t) => t.deviceId === 'dev-a')!;
        await store.completeTrigger(ofA, { kind: 'failed', at: T0 + 1, error: 'refused' });
        // dev-b: a newer trigger queued behind its leased one; dev-c stays leased.
        const ofB = claimed.find((t) => t.deviceId === 'dev-b')!;
        await store.completeTrigger(ofB, { kind: 'delivered', at: T0 + 1 });
        await store.requeueTrigger('dev-b', T0 + 2);

        const page = await store.queryDevices({ sort: 'name', order: 'desc', limit: 3, offset: 0 });
        assert.equal(page.total, 4);
        assert.deepEqual(
          page.items.map((row) => row.device.id),
          ['dev-a', 'dev-none', 'dev-b'],
        );
        for (const row of page.items) {
          assert.deepEqual(row.device, await store.get(row.device.id));
          assert.deepEqual(row.latestTrigger, await store.latestTrigger(row.device.id));
        }
        const [latestOfA, latestOfNone, latestOfB] = page.items.map((row) => row.latestTrigger);
        assert.deepEqual(
          { state: latestOfA?.state, lastError: latestOfA?.lastError },
          { state: 'failed', lastError: 'refused' },
        );
        assert.equal(latestOfNone, undefined);
        assert.deepEqual(
          { state: latestOfB?.state, attempts: latestOfB?.attempts },
          { state: 'pending', attempts: 0 },
        );

        const leased = await store.queryDevices({ search: 'dev-c', limit: 10, offset: 0 });
        const ofC = leased.items[0]!.latestTrigger!;
        assert.equal(ofC.deviceId, 'dev-c');
        assert.equal(typeof ofC.leaseUntil, 'number');
        assert.equal('leaseToken' in ofC, false, 'a reader never sees the lease token');
      });

      it('imports devices exactly, replacing existing ones', async () => {
        const device = {
          id: 'imp-1',
          ip: '2001:db8::1',
          name: 'n',
          userdata: 'ü',
          firstSeen: T0,
          lastSeen: T0 + 50,
          updatedAt: T0 + 60,
          registrations: 9,
          lastSource: '192.0.2.7',
          pinned: { name: true, userdata: false },
          reported: { name: 'from-device', userdata: null },
        };
        const history = [
          { at: T0 + 50, ip: '2001:db8::1', source: '192.0.2.7' },
          { at: T0 + 40, ip: '10.0.0.1', source: '192.0.2.6' },
        ];
        const aliases = [{ type: 'serial' as const, value: 'S-1' }];
        assert.equal(await store.importDevice(device, history, aliases), 'created');
        assert.deepEqual(await store.get('imp-1'), device);
        assert.deepEqual(await store.aliases('imp-1'), aliases);
        assert.deepEqual(await store.history('imp-1'), history);
        // The same device again (importing a file twice): its history keys are the same.
        assert.equal(await store.importDevice(device, history), 'replaced');
        assert.deepEqual(await store.get('imp-1'), device);
        assert.deepEqual(await store.history('imp-1'), history);
        assert.equal(await store.importDevice({ ...device, name: 'm' }, []), 'replaced');
        assert.equal((await store.get('imp-1')).name, 'm');
        assert.deepEqual(await store.history('imp-1'), []);
      });
    });

    describe('trigger outbox', () => {
      it('gives every write of one batch its own result, whatever statements each runs', async () => {
        await store.register(reg('dev-0', '10.0.0.9', T0), withTrigger);
        const [leased] = await store.claimTriggers(T0, 1, 60_000);
        // One tick: one batch mixing registrations with and without history or trigger, and an
        // outcome (a different number of statements each on PostgreSQL).
        const [x, y, done, z] = await Promise.all([
          store.register(reg('dev-x', '10.0.0.1', T0 + 1), {
            enqueueTrigger: false,
            historyLimit: 0,
          }),
          store.register(reg('dev-y', '10.0.0.2', T0 + 1), withTrigger),
          store.completeTrigger(leased!, { kind: 'delivered', at: T0 + 1 }),
          store.register(reg('dev-z', '10.0.0.3', T0 + 1), {
            enqueueTrigger: true,
            historyLimit: 0,
          }),
        ]);
        assert.deepEqual([x.device.id, x.device.ip, x.trigger], ['dev-x', '10.0.0.1', undefined]);
        assert.deepEqual(
          [y.device.id, y.trigger?.deviceId, y.trigger?.ip],
          ['dev-y', 'dev-y', '10.0.0.2'],
        );
        assert.equal(done, true);
        assert.deepEqual(
          [z.device.id, z.trigger?.deviceId, z.trigger?.ip],
          ['dev-z', 'dev-z', '10.0.0.3'],
        );
        assert.equal((await store.latestTrigger('dev-0'))?.state, 'delivered');
        assert.deepEqual(await store.history('dev-x'), []);
        assert.equal((await store.history('dev-y')).length, 1);
      });

      it('enqueues a pending trigger in the same operation as the registration', async () => {
        const r = await store.register(reg('dev-t', '10.0.0.1', T0), withTrigger);
        assert.ok(r.trigger);
        assert.equal(r.trigger.state, 'pending');
        assert.equal(r.trigger.ip, '10.0.0.1');
        assert.equal(r.trigger.deviceId, 'dev-t');
        assert.equal(r.trigger.attempts, 0);
        assert.match(r.trigger.key, /^[0-9a-f-]{36}$/);
        assert.deepEqual(await store.countTriggers(), {
          pending: 1,
          delivered: 0,
          failed: 0,
          dead: 0,
        });
        assert.equal(await store.nextTriggerDue(), T0);
      });

      it('counts devices by the state of their latest trigger, not trigger rows', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        await store.register(reg('dev-b', '10.0.0.2', T0 + 1), withTrigger);
        for (const t of await store.claimTriggers(T0 + 5, 10, 1000)) {
          await store.completeTrigger(t, { kind: 'failed', at: T0 + 6, error: 'HTTP 400' });
        }
        await store.requeueTrigger('dev-a', T0 + 7);
        assert.deepEqual(await store.countTriggers(), {
          pending: 1,
          delivered: 0,
          failed: 2,
          dead: 0,
        });
        assert.deepEqual(await store.countDevicesByTrigger(), {
          pending: 1,
          delivered: 0,
          failed: 1,
          dead: 0,
        });
        await store.delete('dev-b'); // its finished trigger stays until retention, uncounted
        assert.deepEqual(await store.countDevicesByTrigger(), {
          pending: 1,
          delivered: 0,
          failed: 0,
          dead: 0,
        });
      });

      it('coalesces a waiting trigger: the manager gets the latest ip once', async () => {
        const a = await store.register(reg('dev-t', '10.0.0.1', T0), withTrigger);
        const b = await store.register(reg('dev-t', '10.0.0.2', T0 + 10), withTrigger);
        assert.equal(b.trigger!.id, a.trigger!.id);
        assert.equal(b.trigger!.ip, '10.0.0.2');
        assert.notEqual(b.trigger!.key, a.trigger!.key);
        assert.equal((await store.countTriggers()).pending, 1);
      });

      it('claims due triggers once, under a lease, and records delivery', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        await store.register(reg('dev-b', '10.0.0.2', T0 + 1), withTrigger);
        assert.deepEqual(
          await store.claimTriggers(T0 - 1, 10, 1000),
          [],
          'nothing is due before its time',
        );
        const claimed = await store.claimTriggers(T0 + 5, 10, 1000);
        assert.deepEqual(
          claimed.map((t) => t.deviceId),
          ['dev-a', 'dev-b'],
        );
        assert.equal(claimed[0]!.attempts, 1);
        assert.deepEqual(
          await store.claimTriggers(T0 + 6, 10, 1000),
          [],
          'leased triggers are not claimed twice',
        );
        assert.equal(
          await store.completeTrigger(claimed[0]!, { kind: 'delivered', at: T0 + 7 }),
          true,
        );
        const latest = await store.latestTrigger('dev-a');
        assert.equal(latest!.state, 'delivered');
        assert.equal(latest!.deliveredAt, T0 + 7);
        assert.equal(latest!.leaseUntil, null);
        assert.deepEqual(await store.countTriggers(), {
          pending: 1,
          delivered: 1,
          failed: 0,
          dead: 0,
        });
      });

      it('re-claims a trigger whose lease expired (its dispatcher died); the old lease is void', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        const [first] = await store.claimTriggers(T0, 10, 1000);
        const [again] = await store.claimTriggers(T0 + 1001, 10, 1000);
        assert.equal(again!.id, first!.id);
        assert.equal(again!.key, first!.key, 'Idempotency-Key is stable across attempts');
        assert.equal(again!.attempts, 2);
        assert.equal(
          await store.completeTrigger(first!, { kind: 'delivered', at: T0 + 1002 }),
          false,
        );
        assert.equal(
          await store.completeTrigger(again!, { kind: 'delivered', at: T0 + 1003 }),
          true,
        );
      });

      it('completes a copy of a claimed trigger: the lease is its token, not the object', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        const [claimed] = await store.claimTriggers(T0, 10, 1000);
        assert.equal(typeof claimed!.leaseToken, 'string');
        // What a dispatcher gets back after passing a trigger through a queue or a worker.
        const copy = structuredClone({ ...claimed! });
        assert.equal(await store.completeTrigger(copy, { kind: 'delivered', at: T0 + 1 }), true);
        assert.equal((await store.latestTrigger('dev-a'))!.state, 'delivered');
      });

      it('refuses an outcome under a token that is not the lease, changing nothing', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        const [claimed] = await store.claimTriggers(T0, 10, 1000);
        const before = await store.latestTrigger('dev-a');
        const forged = { ...claimed!, leaseToken: `${claimed!.leaseToken}x` };
        assert.equal(
          await store.completeTrigger(forged, { kind: 'failed', at: T0 + 1, error: 'HTTP 400' }),
          false,
        );
        assert.deepEqual(await store.latestTrigger('dev-a'), before);
        assert.equal(
          await store.completeTrigger(claimed!, { kind: 'delivered', at: T0 + 2 }),
          true,
          'the real lease still holds',
        );
      });

      it('shows a lease token only to whoever took the lease', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        await store.claimTriggers(T0, 10, 1000);
        const latest = await store.latestTrigger('dev-a');
        const listed = await store.listTriggers(undefined, undefined, 10);
        const recent = await store.recentTriggers('dev-a', 10);
        for (const t of [latest!, ...listed, ...recent]) {
          assert.equal(t.leaseUntil, T0 + 1000);
          assert.equal('leaseToken' in t, false);
        }
      });

      it('stores each outcome as the dispatcher publishes it (one outcome-to-state rule)', async () => {
        const outcomes: TriggerOutcome[] = [
          { kind: 'delivered', at: T0 + 1 },
          { kind: 'retry', at: T0 + 1, nextAttemptAt: T0 + 500, error: 'HTTP 503' },
          { kind: 'failed', at: T0 + 1, error: 'HTTP 400' },
          { kind: 'dead', at: T0 + 1, error: 'too old' },
        ];
        for (const [i, outcome] of outcomes.entries()) {
          const id = `dev-${outcome.kind}`;
          await store.register(reg(id, `10.0.0.${i + 1}`, T0), withTrigger);
          const [claimed] = await store.claimTriggers(T0, 1, 1000);
          assert.equal(claimed!.deviceId, id);
          assert.equal(await store.completeTrigger(claimed!, outcome), true);
          assert.deepEqual(await store.latestTrigger(id), applyOutcome(claimed!, outcome));
        }
      });

      it('schedules retries and records failed and dead outcomes', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        await store.register(reg('dev-b', '10.0.0.2', T0), withTrigger);
        await store.register(reg('dev-c', '10.0.0.3', T0), withTrigger);
        const [a, b, c] = await store.claimTriggers(T0, 10, 1000);
        await store.completeTrigger(a!, {
          kind: 'retry',
          at: T0 + 1,
          nextAttemptAt: T0 + 500,
          error: 'HTTP 503',
        });
        // Quotes and backslashes as a manager's answer may hold them: stored as they are.
        const quoted = `HTTP 400: it's \\'bad' $1 ;--`;
        await store.completeTrigger(b!, { kind: 'failed', at: T0 + 1, error: quoted });
        await store.completeTrigger(c!, { kind: 'dead', at: T0 + 1, error: 'too old' });
        assert.equal((await store.latestTrigger('dev-b'))!.lastError, quoted);
        const ta = await store.latestTrigger('dev-a');
        assert.equal(ta!.state, 'pending');
        assert.equal(ta!.nextAttemptAt, T0 + 500);
        assert.equal(ta!.lastError, 'HTTP 503');
        assert.equal(await store.nextTriggerDue(), T0 + 500);
        assert.deepEqual(await store.claimTriggers(T0 + 499, 10, 1000), []);
        assert.equal((await store.claimTriggers(T0 + 500, 10, 1000)).length, 1);
        assert.deepEqual(await store.countTriggers(), {
          pending: 1,
          delivered: 0,
          failed: 1,
          dead: 1,
        });
        assert.deepEqual(
          (await store.listTriggers('failed', undefined, 10)).map((t) => t.deviceId),
          ['dev-b'],
        );
        assert.equal((await store.listTriggers(undefined, undefined, 10)).length, 3);
      });

      it('keeps per-device order: a newer trigger waits while an older one is in flight', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        const [inFlight] = await store.claimTriggers(T0, 10, 10_000);
        const newer = await store.register(reg('dev-a', '10.0.0.2', T0 + 1), withTrigger);
        assert.notEqual(
          newer.trigger!.id,
          inFlight!.id,
          'an in-flight trigger is not coalesced into',
        );
        assert.deepEqual(
          await store.claimTriggers(T0 + 2, 10, 10_000),
          [],
          'the newer one waits for the older',
        );
        await store.completeTrigger(inFlight!, { kind: 'delivered', at: T0 + 3 });
        const next = await store.claimTriggers(T0 + 4, 10, 10_000);
        assert.deepEqual(
          next.map((t) => t.ip),
          ['10.0.0.2'],
        );
      });

      it('coalescing into a trigger whose lease expired voids the old lease', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        const [stale] = await store.claimTriggers(T0, 10, 100);
        const r = await store.register(reg('dev-a', '10.0.0.9', T0 + 200), withTrigger);
        assert.equal(r.trigger!.id, stale!.id);
        assert.equal(
          await store.completeTrigger(stale!, { kind: 'delivered', at: T0 + 201 }),
          false,
        );
        const [fresh] = await store.claimTriggers(T0 + 202, 10, 100);
        assert.equal(fresh!.ip, '10.0.0.9');
      });

      it('requeues a trigger for the current ip of a device, and 404s an unknown one', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), noTrigger);
        await store.edit('dev-a', { ip: '10.0.0.7', name: '', userdata: '' }, T0 + 1);
        const t = await store.requeueTrigger('dev-a', T0 + 2);
        assert.equal(t.ip, '10.0.0.7');
        assert.equal(t.state, 'pending');
        await assert.rejects(store.requeueTrigger('nope', T0), DeviceNotFoundError);
        assert.deepEqual(
          (await store.recentTriggers('dev-a', 5)).map((x) => x.id),
          [t.id],
        );
      });

      it("lists a device's own triggers newest first, across coalescing, requeues and pruning", async () => {
        const deliver = async (at: number) => {
          const [t] = await store.claimTriggers(at, 1, 1000);
          await store.completeTrigger(t!, { kind: 'delivered', at });
          return t!;
        };
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        await store.register(reg('dev-b', '10.0.0.9', T0), withTrigger);
        const t1 = await deliver(T0 + 1);
        await deliver(T0 + 1); // dev-b's
        await store.register(reg('dev-a', '10.0.0.2', T0 + 2), withTrigger);
        const coalesced = await store.register(reg('dev-a', '10.0.0.3', T0 + 3), withTrigger);
        const t3 = await store.requeueTrigger('dev-a', T0 + 4);
        assert.equal(t3.id, coalesced.trigger!.id, 'a requeue coalesces into the waiting trigger');
        const t2 = await deliver(T0 + 5);
        const t4 = (await store.register(reg('dev-a', '10.0.0.4', T0 + 6), withTrigger)).trigger!;
        assert.deepEqual(
          (await store.recentTriggers('dev-a', 10)).map((t) => [t.id, t.ip]),
          [
            [t4.id, '10.0.0.4'],
            [t2.id, '10.0.0.3'],
            [t1.id, '10.0.0.1'],
          ],
        );
        assert.deepEqual(
          (await store.recentTriggers('dev-a', 2)).map((t) => t.id),
          [t4.id, t2.id],
        );
        assert.equal((await store.latestTrigger('dev-a'))!.id, t4.id);
        // A pruned trigger ends the list: t1 (finished at T0+1) goes, dev-b keeps its only one.
        assert.equal(await store.pruneTriggers(T0 + 3), 1);
        assert.deepEqual(
          (await store.recentTriggers('dev-a', 10)).map((t) => t.id),
          [t4.id, t2.id],
        );
      });

      it('a deleted device loses its triggers, as it loses its history; an import keeps them', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        const [t1] = await store.claimTriggers(T0, 10, 1000);
        await store.completeTrigger(t1!, { kind: 'delivered', at: T0 });
        const t2 = (await store.register(reg('dev-a', '10.0.0.2', T0 + 1), withTrigger)).trigger!;
        await store.delete('dev-a');
        assert.equal(await store.latestTrigger('dev-a'), undefined);
        assert.deepEqual(await store.recentTriggers('dev-a', 10), []);
        // The new device's registration takes over the trigger still waiting (coalescing), but
        // not the finished one before it.
        const again = await store.register(reg('dev-a', '10.0.0.3', T0 + 2), withTrigger);
        assert.equal(again.trigger!.id, t2.id);
        assert.deepEqual(
          (await store.recentTriggers('dev-a', 10)).map((t) => [t.id, t.ip]),
          [[t2.id, '10.0.0.3']],
        );
        const device = await store.get('dev-a');
        assert.equal(await store.importDevice({ ...device, name: 'imported' }, []), 'replaced');
        assert.equal((await store.get('dev-a')).name, 'imported');
        assert.equal((await store.latestTrigger('dev-a'))!.id, t2.id);
      });

      it('records the type and the ip before the registration; coalescing keeps the earliest', async () => {
        const first = await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        assert.equal(first.trigger!.type, 'registered');
        assert.equal(first.trigger!.previousIp, null, 'a new device');
        const [t1] = await store.claimTriggers(T0, 10, 1000);
        await store.completeTrigger(t1!, { kind: 'delivered', at: T0 + 1 });
        const second = await store.register(reg('dev-a', '10.0.0.2', T0 + 2), withTrigger);
        assert.equal(second.trigger!.previousIp, '10.0.0.1');
        const coalesced = await store.register(reg('dev-a', '10.0.0.3', T0 + 3), withTrigger);
        assert.equal(coalesced.trigger!.id, second.trigger!.id);
        assert.equal(coalesced.trigger!.ip, '10.0.0.3');
        assert.equal(coalesced.trigger!.previousIp, '10.0.0.1', 'what the manager last knew');
        const [t2] = await store.claimTriggers(T0 + 4, 10, 1000);
        await store.completeTrigger(t2!, { kind: 'delivered', at: T0 + 4 });
        const manual = await store.requeueTrigger('dev-a', T0 + 5);
        assert.equal(manual.type, 'retriggered');
        assert.equal(manual.ip, '10.0.0.3');
        assert.equal(manual.previousIp, '10.0.0.2', 'the ip before the latest registration');
        assert.deepEqual(
          (await store.recentTriggers('dev-a', 5)).map((t) => [t.type, t.ip, t.previousIp]),
          [
            ['retriggered', '10.0.0.3', '10.0.0.2'],
            ['registered', '10.0.0.3', '10.0.0.1'],
            ['registered', '10.0.0.1', null],
          ],
        );
      });

      it('ip-change: no trigger for the ip last delivered, kept across retention', async () => {
        const ipChange = { ...withTrigger, onIpChangeOnly: true };
        const deliver = async (at: number) => {
          const [t] = await store.claimTriggers(at, 1, 1000);
          assert.equal(await store.completeTrigger(t!, { kind: 'delivered', at }), true);
        };
        await store.register(reg('dev-a', '10.0.0.1', T0), ipChange);
        assert.equal(await store.lastDeliveredIp('dev-a'), undefined);
        await deliver(T0 + 1);
        assert.equal(await store.lastDeliveredIp('dev-a'), '10.0.0.1');
        const same = await store.register(reg('dev-a', '10.0.0.1', T0 + 2), ipChange);
        assert.equal(same.trigger, undefined, 'the delivered ip again: nothing queued');
        assert.equal((await store.history('dev-a')).length, 2, 'its history records it');
        // A failed trigger records nothing: the manager does not know 10.0.0.2.
        await store.register(reg('dev-a', '10.0.0.2', T0 + 3), ipChange);
        const [failed] = await store.claimTriggers(T0 + 3, 1, 1000);
        await store.completeTrigger(failed!, { kind: 'failed', at: T0 + 3, error: 'HTTP 400' });
        assert.equal(await store.lastDeliveredIp('dev-a'), '10.0.0.1');
        assert.ok((await store.register(reg('dev-a', '10.0.0.2', T0 + 4), ipChange)).trigger);
        // Pending for 10.0.0.2: back on 10.0.0.1, the waiting trigger takes the current ip.
        const back = await store.register(reg('dev-a', '10.0.0.1', T0 + 5), ipChange);
        assert.equal(back.trigger!.ip, '10.0.0.1');
        await deliver(T0 + 6);
        assert.equal(await store.pruneTriggers(T0 + 100), 2, 'all but the latest trigger');
        await store.register(reg('dev-a', '10.0.0.9', T0 + 101), noTrigger);
        await store.requeueTrigger('dev-a', T0 + 102);
        await deliver(T0 + 103);
        assert.equal(await store.lastDeliveredIp('dev-a'), '10.0.0.9');
        assert.equal(await store.pruneTriggers(T0 + 200), 1);
        const after = await store.register(reg('dev-a', '10.0.0.9', T0 + 201), ipChange);
        assert.equal(after.trigger, undefined, 'retention forgets no delivered ip');
        // every-registration queues regardless.
        assert.ok((await store.register(reg('dev-a', '10.0.0.9', T0 + 202), withTrigger)).trigger);
      });

      it('ip-change: a device registered anew (deleted before) is called, whatever its ip', async () => {
        const ipChange = { ...withTrigger, onIpChangeOnly: true };
        await store.register(reg('dev-a', '10.0.0.1', T0), ipChange);
        const [t] = await store.claimTriggers(T0, 1, 1000);
        await store.completeTrigger(t!, { kind: 'delivered', at: T0 });
        await store.delete('dev-a');
        const again = await store.register(reg('dev-a', '10.0.0.1', T0 + 1), ipChange);
        assert.equal(again.trigger!.previousIp, null);
      });

      it('a forwarded report is a trigger of its own: never coalesced, never the latest, no delivered ip', async () => {
        const ipChange = { ...withTrigger, onIpChangeOnly: true };
        const report = { type: 'bootstrap-error', message: 'disk full' };
        const first = await store.register(reg('dev-f', '10.0.0.1', T0), ipChange);
        const forward = await store.forward('dev-f', report, T0 + 1);
        assert.deepEqual(
          [forward!.type, forward!.ip, forward!.previousIp, forward!.report, forward!.state],
          ['report', '10.0.0.1', null, report, 'pending'],
        );
        assert.equal(await store.forward('nope', report, T0 + 1), undefined, 'no device: none');
        // A registration coalesces into its own waiting trigger, never into the report's.
        const again = await store.register(reg('dev-f', '10.0.0.2', T0 + 2), ipChange);
        assert.equal(again.trigger!.id, first.trigger!.id);
        assert.equal((await store.latestTrigger('dev-f'))!.id, first.trigger!.id);
        assert.deepEqual(
          (await store.recentTriggers('dev-f', 5)).map((t) => t.type),
          ['registered'],
        );
        assert.deepEqual(
          (await store.listTriggers(undefined, undefined, 10)).map((t) => t.type),
          ['registered', 'report'],
          'the outbox listing shows both',
        );
        // Per-device order: the older (registration's) first, the report after its outcome.
        const claimed = await store.claimTriggers(T0 + 3, 10, 1000);
        assert.deepEqual(
          claimed.map((t) => t.id),
          [first.trigger!.id],
        );
        await store.completeTrigger(claimed[0]!, { kind: 'delivered', at: T0 + 4 });
        const [forwarded] = await store.claimTriggers(T0 + 4, 10, 1000);
        assert.deepEqual([forwarded!.id, forwarded!.report], [forward!.id, report]);
        assert.equal(
          await store.completeTrigger(forwarded!, { kind: 'delivered', at: T0 + 5 }),
          true,
        );
        assert.equal(await store.lastDeliveredIp('dev-f'), '10.0.0.2', 'the registration’s ip');
        // ip-change: a pending report does not make a registration of the delivered ip call.
        await store.forward('dev-f', report, T0 + 6);
        const same = await store.register(reg('dev-f', '10.0.0.2', T0 + 7), ipChange);
        assert.equal(same.trigger, undefined);
        assert.deepEqual(await store.countDevicesByTrigger(), {
          pending: 0,
          delivered: 1,
          failed: 0,
          dead: 0,
        });
        assert.equal((await store.countTriggers()).pending, 1, 'the second report waits');
        assert.equal(await store.pruneTriggers(T0 + 100), 1, 'the delivered report');
        assert.equal((await store.latestTrigger('dev-f'))!.id, first.trigger!.id);
      });

      it('prunes old finished triggers but keeps each device latest', async () => {
        await store.register(reg('dev-a', '10.0.0.1', T0), withTrigger);
        const [t1] = await store.claimTriggers(T0, 10, 1000);
        await store.completeTrigger(t1!, { kind: 'delivered', at: T0 + 1 });
        await store.register(reg('dev-a', '10.0.0.2', T0 + 2), withTrigger);
        const [t2] = await store.claimTriggers(T0 + 2, 10, 1000);
        await store.completeTrigger(t2!, { kind: 'delivered', at: T0 + 3 });
        assert.equal(await store.pruneTriggers(T0 + 100), 1);
        assert.deepEqual(
          (await store.recentTriggers('dev-a', 5)).map((t) => t.id),
          [t2!.id],
        );
      });
    });

    describe('lifecycle', () => {
      it('answers ping', async () => {
        await store.ping();
      });
    });
  });
}

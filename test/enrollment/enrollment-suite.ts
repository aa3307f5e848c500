/**
 * The enrollment modes through the HTTP API, run on each engine (enrollment-*.test.ts): what is
 * stored and triggered in each mode, approval, rejection, rules, bad input. Triggers are queued
 * in the outbox (a manager is "configured", no dispatcher runs), so the tests count them there.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { DeviceService, type Stores } from '../../src/devices/service.js';
import { enrollmentPlugin } from '../../src/enrollment/routes.js';
import { RuleSet } from '../../src/enrollment/rules.js';
import { EnrollmentService, type EnrollmentMode } from '../../src/enrollment/service.js';
import type { EnrollmentStore } from '../../src/enrollment/store.js';
import { EventBus } from '../../src/events/bus.js';
import { json } from '../helpers.js';

export interface OpenedEnrollmentStores {
  stores: Stores & { enrollment: EnrollmentStore };
  close(): Promise<void>;
}

interface Fixture {
  app: FastifyInstance;
  enrollment: EnrollmentService;
  stores: OpenedEnrollmentStores['stores'];
  register(
    id: string,
    body?: Record<string, unknown>,
    source?: string,
  ): Promise<LightMyRequestResponse>;
  admin(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    body?: object,
  ): Promise<LightMyRequestResponse>;
  /** The triggers queued for a device, oldest first. */
  triggers(id: string): Promise<{ ip: string }[]>;
}

const MAC = 'aa:bb:cc:00:00:01';

export function enrollmentSuite(engine: string, open: () => Promise<OpenedEnrollmentStores>): void {
  describe(`enrollment on ${engine}`, () => {
    let opened: OpenedEnrollmentStores | undefined;
    let app: FastifyInstance | undefined;

    afterEach(async () => {
      await app?.close();
      await opened?.close();
      app = undefined;
      opened = undefined;
    });

    async function fixture(mode: EnrollmentMode, rules = ''): Promise<Fixture> {
      opened = await open();
      const { stores } = opened;
      const enrollment = new EnrollmentService(stores.db, stores.enrollment, {
        mode,
        rules: RuleSet.parse(rules, 'rules'),
      });
      const service = new DeviceService(stores, {
        triggersEnabled: true,
        historyLimit: 10,
        events: new EventBus(),
        admission: enrollment.admission,
      });
      enrollment.attach(service);
      const built = await buildApp({
        service,
        logger: false,
        plugins: [enrollmentPlugin(enrollment)],
      });
      app = built;
      return {
        app: built,
        enrollment,
        stores,
        register: (id, body = {}, source = '10.9.0.1') =>
          built.inject({
            method: 'PUT',
            url: `/ztp/register/${id}`,
            payload: body,
            remoteAddress: source,
          }),
        admin: (method, url, body) =>
          built.inject({ method, url, ...(body ? { payload: body } : {}) }),
        triggers: async (id) =>
          (await service.triggerQueries.list(undefined, undefined, 1000)).filter(
            (t) => t.deviceId === id,
          ),
      };
    }

    async function assertNothingStored(f: Fixture, id: string): Promise<void> {
      const check = await f.app.inject({ method: 'GET', url: `/ztp/check/${id}` });
      assert.equal(json(check).code, 'device_not_found');
      assert.deepEqual(await f.triggers(id), []);
      assert.equal(json(await f.admin('GET', '/ztp/mng/pending')).count, 0);
    }

    describe('open (the default)', () => {
      it('registers any device and queues its trigger, as the seed does', async () => {
        const f = await fixture('open');
        const res = await f.register('dev-1', { ip: '10.0.0.1' });
        assert.equal(res.statusCode, 201);
        assert.deepEqual(json(res), { id: 'dev-1', ip: '10.0.0.1', name: '', userdata: '' });
        assert.equal((await f.triggers('dev-1')).length, 1);
        assert.equal(json(await f.admin('GET', '/ztp/mng/pending')).count, 0);
      });

      it('PUT /ztp/mng/{id} still never creates', async () => {
        const f = await fixture('open');
        const res = await f.admin('PUT', '/ztp/mng/dev-9', { ip: '10.0.0.9' });
        assert.equal(res.statusCode, 404);
        assert.equal(json(res).code, 'device_not_found');
      });
    });

    describe('allowlist', () => {
      it('refuses an unknown device with 403 not_enrolled: nothing stored, nothing triggered', async () => {
        const f = await fixture('allowlist');
        const res = await f.register('dev-x', { ip: '10.0.0.2' });
        assert.equal(res.statusCode, 403);
        assert.equal(json(res).code, 'not_enrolled');
        await assertNothingStored(f, 'dev-x');
      });

      it('accepts a device an admin created; creating queues no trigger, its registration one', async () => {
        const f = await fixture('allowlist');
        const created = await f.admin('PUT', `/ztp/mng/${MAC.toUpperCase()}`, {
          ip: '10.0.0.3',
          name: 'leaf-1',
        });
        assert.equal(created.statusCode, 201);
        assert.equal(json(created).id, MAC);
        assert.deepEqual(await f.triggers(MAC), []);
        const detail = json(await f.admin('GET', `/ztp/mng/${MAC}`));
        assert.equal(detail.registrations, 0);

        const res = await f.register(MAC, { ip: '10.0.0.4' });
        assert.equal(res.statusCode, 200);
        assert.equal(json(res).ip, '10.0.0.4');
        assert.deepEqual(
          (await f.triggers(MAC)).map((t) => t.ip),
          ['10.0.0.4'],
        );
        // An edit of an existing device is still an edit (200).
        assert.equal((await f.admin('PUT', `/ztp/mng/${MAC}`, { ip: '10.0.0.5' })).statusCode, 200);
      });

      it('accepts an unknown device a rule matches ("automatic approval")', async () => {
        const f = await fixture('allowlist', 'serial-pattern FOC2*\n');
        const res = await f.register('FOC2001X', { ip: '10.0.0.6' });
        assert.equal(res.statusCode, 201);
        assert.equal((await f.triggers('FOC2001X')).length, 1);
        assert.equal((await f.register('FOC3001X')).statusCode, 403);
      });

      it('admits a device an admin created when it registers by one of its aliases', async () => {
        const f = await fixture('allowlist');
        assert.equal((await f.admin('PUT', '/ztp/mng/leaf-9', { name: 'leaf 9' })).statusCode, 201);
        const alias = { type: 'serial', value: 'FOC9009' };
        assert.equal((await f.admin('POST', '/ztp/mng/leaf-9/aliases', alias)).statusCode, 201);
        const res = await f.register('FOC9009', { ip: '10.0.9.9' });
        assert.equal(res.statusCode, 200);
        assert.deepEqual([json(res).id, json(res).ip], ['leaf-9', '10.0.9.9']);
        assert.deepEqual(
          (await f.triggers('leaf-9')).map((t) => t.ip),
          ['10.0.9.9'],
        );
        assert.equal((await f.register('FOC9010')).statusCode, 403);
      });

      it('a rule matches the aliases a registration carries, not only its id', async () => {
        const f = await fixture('allowlist', 'mac-prefix 00:1b:21\nserial FOC9100\n');
        const byMac = await f.register('host-1', {
          aliases: [{ type: 'mac', value: '00-1B-21-00-00-01' }],
        });
        assert.equal(byMac.statusCode, 201);
        const bySerial = await f.register('aa:bb:cc:09:10:01', {
          aliases: [{ type: 'serial', value: 'foc9100' }],
        });
        assert.equal(bySerial.statusCode, 201);
        // A serial rule does not match a MAC alias, nor other alias types.
        const other = await f.register('host-2', {
          aliases: [
            { type: 'machine-id', value: 'FOC9100' },
            { type: 'mac', value: '02:00:00:00:91:00' },
          ],
        });
        assert.equal(other.statusCode, 403);
        await assertNothingStored(f, 'host-2');
      });
    });

    describe('approve', () => {
      it('holds an unknown device as pending: 202, no trigger, check answers device_pending', async () => {
        const f = await fixture('approve');
        const res = await f.register('dev-p', { ip: '10.0.1.1', name: 'spine' });
        assert.equal(res.statusCode, 202);
        assert.deepEqual(json(res), {
          id: 'dev-p',
          ip: '10.0.1.1',
          name: 'spine',
          userdata: '',
          state: 'pending',
        });
        const check = await f.app.inject({ method: 'GET', url: '/ztp/check/dev-p' });
        assert.equal(check.statusCode, 404);
        assert.equal(json(check).code, 'device_pending');
        assert.deepEqual(await f.triggers('dev-p'), []);
        assert.deepEqual(json(await f.admin('GET', '/ztp/mng/list')).hosts, []);

        // A re-registration updates it and it stays pending.
        const again = await f.register('dev-p', { ip: '10.0.1.2', name: 'spine' }, '10.9.0.7');
        assert.equal(again.statusCode, 202);
        const list = json<{ pending: Record<string, unknown>[]; count: number }>(
          await f.admin('GET', '/ztp/mng/pending'),
        );
        assert.equal(list.count, 1);
        assert.equal(list.pending[0]!.ip, '10.0.1.2');
        assert.equal(list.pending[0]!.source, '10.9.0.7');
        assert.equal(list.pending[0]!.registrations, 2);
        assert.equal(list.pending[0]!.rule, null);
        assert.deepEqual(await f.triggers('dev-p'), []);
      });

      it('approval makes it a device and queues exactly one trigger for its latest ip', async () => {
        const f = await fixture('approve');
        await f.register('dev-a', { ip: '10.0.2.1' });
        await f.register('dev-a', { ip: '10.0.2.2', userdata: 'u' });
        const res = await f.admin('POST', '/ztp/mng/dev-a/approve');
        assert.equal(res.statusCode, 200);
        assert.deepEqual(json(res), { id: 'dev-a', ip: '10.0.2.2', name: '', userdata: 'u' });
        assert.deepEqual(
          (await f.triggers('dev-a')).map((t) => t.ip),
          ['10.0.2.2'],
        );
        const check = await f.app.inject({ method: 'GET', url: '/ztp/check/dev-a' });
        assert.equal(check.statusCode, 200);
        assert.equal(json(await f.admin('GET', '/ztp/mng/pending')).count, 0);

        const twice = await f.admin('POST', '/ztp/mng/dev-a/approve');
        assert.equal(twice.statusCode, 409);
        assert.equal(json(twice).code, 'device_not_pending');
        assert.equal((await f.triggers('dev-a')).length, 1);

        // Now a known device: it registers as any (200; its undelivered trigger now calls the new ip).
        const reg = await f.register('dev-a', { ip: '10.0.2.3' });
        assert.equal(reg.statusCode, 200);
        assert.equal((await f.triggers('dev-a')).at(-1)?.ip, '10.0.2.3');
      });

      it('two approvals at once register it and trigger it once', async () => {
        const f = await fixture('approve');
        await f.register('dev-race', { ip: '10.0.2.9' });
        const answers = await Promise.all([
          f.admin('POST', '/ztp/mng/dev-race/approve'),
          f.admin('POST', '/ztp/mng/dev-race/approve'),
        ]);
        assert.deepEqual(answers.map((r) => r.statusCode).sort(), [200, 409]);
        assert.equal((await f.triggers('dev-race')).length, 1);
      });

      it('rejection removes it and refuses it until an admin lifts the rejection', async () => {
        const f = await fixture('approve');
        await f.register('dev-r', { ip: '10.0.3.1' });
        const res = await f.admin('POST', '/ztp/mng/dev-r/reject');
        assert.equal(res.statusCode, 200);
        assert.equal(json(res).id, 'dev-r');
        assert.equal(json(res).ip, '10.0.3.1');
        assert.equal(json(await f.admin('GET', '/ztp/mng/pending')).count, 0);

        const refused = await f.register('dev-r', { ip: '10.0.3.2' });
        assert.equal(refused.statusCode, 403);
        assert.equal(json(refused).code, 'device_rejected');
        await assertNothingStored(f, 'dev-r');

        const twice = await f.admin('POST', '/ztp/mng/dev-r/reject');
        assert.equal(twice.statusCode, 409);
        assert.equal(json(twice).code, 'already_rejected');
        const approve = await f.admin('POST', '/ztp/mng/dev-r/approve');
        assert.equal(approve.statusCode, 409);
        assert.deepEqual(
          json<{ rejected: { id: string }[] }>(
            await f.admin('GET', '/ztp/mng/rejected'),
          ).rejected.map((r) => r.id),
          ['dev-r'],
        );

        assert.equal((await f.admin('DELETE', '/ztp/mng/rejected/dev-r')).statusCode, 204);
        const liftAgain = await f.admin('DELETE', '/ztp/mng/rejected/dev-r');
        assert.equal(liftAgain.statusCode, 404);
        assert.equal(json(liftAgain).code, 'device_not_rejected');
        assert.equal((await f.register('dev-r', { ip: '10.0.3.3' })).statusCode, 202);
      });

      it('a rejection wins over a matching rule', async () => {
        const f = await fixture('approve');
        await f.register('FOC1', { ip: '10.0.3.9' });
        await f.admin('POST', '/ztp/mng/FOC1/reject');
        f.enrollment.setRules(RuleSet.parse('serial FOC1', 'rules'));
        assert.equal(json(await f.register('FOC1')).code, 'device_rejected');
      });

      it('approving or rejecting a device that is not pending is a 409; a bad id a 400', async () => {
        const f = await fixture('approve');
        for (const action of ['approve', 'reject']) {
          const res = await f.admin('POST', `/ztp/mng/nobody/${action}`);
          assert.equal(res.statusCode, 409);
          assert.equal(json(res).code, 'device_not_pending');
        }
        const bad = await f.admin('POST', '/ztp/mng/bad%20id/approve');
        assert.equal(bad.statusCode, 400);
        assert.equal(json(bad).code, 'invalid_id');
        const page = await f.admin('GET', '/ztp/mng/pending?limit=0');
        assert.equal(page.statusCode, 400);
        assert.equal(
          json(await f.admin('DELETE', '/ztp/mng/rejected/nobody')).code,
          'device_not_rejected',
        );
        // A registered (approved) device is not pending either.
        await f.register('dev-k');
        await f.admin('POST', '/ztp/mng/dev-k/approve');
        assert.equal(
          json(await f.admin('POST', '/ztp/mng/dev-k/reject')).code,
          'device_not_pending',
        );
      });

      it('rules approve matching devices at registration (MAC prefix, source network)', async () => {
        const f = await fixture('approve', 'mac-prefix aa:bb:cc\nsource 192.0.2.0/24\n');
        const byMac = await f.register('AA-BB-CC-00-00-02', { ip: '10.0.4.1' });
        assert.equal(byMac.statusCode, 201);
        assert.equal((await f.triggers('aa:bb:cc:00:00:02')).length, 1);
        const bySource = await f.register('dev-s', { ip: '10.0.4.2' }, '192.0.2.10');
        assert.equal(bySource.statusCode, 201);
        const other = await f.register('dev-o', { ip: '10.0.4.3' }, '198.51.100.1');
        assert.equal(other.statusCode, 202);
      });

      it('a pending device shows the rule that would match it now, and a match at registration takes it out of pending', async () => {
        const f = await fixture('approve');
        await f.register('FOC7001', { ip: '10.0.5.1' });
        await f.register('FOC8001', { ip: '10.0.5.2' });
        f.enrollment.setRules(RuleSet.parse('# lab\nserial-pattern FOC7*\n', 'rules.txt'));
        const list = json<{ pending: { id: string; rule: unknown }[] }>(
          await f.admin('GET', '/ztp/mng/pending'),
        );
        assert.deepEqual(
          list.pending.map((p) => [p.id, p.rule]),
          [
            ['FOC7001', { kind: 'serial-pattern', value: 'FOC7*', where: 'rules.txt:2' }],
            ['FOC8001', null],
          ],
        );
        assert.equal((await f.register('FOC7001', { ip: '10.0.5.3' })).statusCode, 201);
        assert.deepEqual(
          json<{ pending: { id: string }[] }>(await f.admin('GET', '/ztp/mng/pending')).pending.map(
            (p) => p.id,
          ),
          ['FOC8001'],
        );
        assert.deepEqual(
          (await f.triggers('FOC7001')).map((t) => t.ip),
          ['10.0.5.3'],
        );
      });

      it('a pending device keeps the aliases it registered with: rules see them, approval gives them to it', async () => {
        const f = await fixture('approve');
        const first = await f.register('dev-p', {
          ip: '10.0.6.1',
          aliases: [{ type: 'serial', value: 'FOC6001' }],
        });
        assert.equal(first.statusCode, 202);
        await f.register('dev-p', {
          ip: '10.0.6.2',
          aliases: [{ type: 'mac', value: 'AA-BB-CC-06-00-01' }],
        });
        f.enrollment.setRules(RuleSet.parse('serial FOC6001\n', 'rules.txt'));
        const [pending] = json<{ pending: { id: string; aliases: unknown; rule: unknown }[] }>(
          await f.admin('GET', '/ztp/mng/pending'),
        ).pending;
        assert.deepEqual(pending, {
          ...pending,
          id: 'dev-p',
          aliases: [
            { type: 'mac', value: 'aa:bb:cc:06:00:01' },
            { type: 'serial', value: 'FOC6001' },
          ],
          rule: { kind: 'serial', value: 'FOC6001', where: 'rules.txt:1' },
        });
        assert.equal((await f.admin('POST', '/ztp/mng/dev-p/approve')).statusCode, 200);
        const detail = json<{ aliases: unknown; ip: string }>(
          await f.admin('GET', '/ztp/mng/dev-p'),
        );
        // By value (byte order).
        assert.deepEqual(detail.aliases, [
          { type: 'serial', value: 'FOC6001' },
          { type: 'mac', value: 'aa:bb:cc:06:00:01' },
        ]);
        // Found by an alias from then on.
        assert.equal(json(await f.app.inject({ url: '/ztp/check/FOC6001' })).id, 'dev-p');
      });

      it('an approval whose alias another device took meanwhile is 409 alias_conflict and stays pending', async () => {
        const f = await fixture('approve');
        const serial = { type: 'serial', value: 'FOC7001' };
        assert.equal((await f.register('dev-q', { aliases: [serial] })).statusCode, 202);
        assert.equal((await f.register('dev-k')).statusCode, 202);
        assert.equal((await f.admin('POST', '/ztp/mng/dev-k/approve')).statusCode, 200);
        assert.equal((await f.admin('POST', '/ztp/mng/dev-k/aliases', serial)).statusCode, 201);
        const refused = await f.admin('POST', '/ztp/mng/dev-q/approve');
        assert.equal(refused.statusCode, 409);
        assert.deepEqual([json(refused).code, json(refused).holder], ['alias_conflict', 'dev-k']);
        const { pending } = json<{ pending: { id: string }[] }>(
          await f.admin('GET', '/ztp/mng/pending'),
        );
        assert.deepEqual(
          pending.map((p) => p.id),
          ['dev-q'],
        );
        assert.equal(json(await f.app.inject({ url: '/ztp/check/dev-q' })).code, 'device_pending');
      });

      it('pages pending devices by id', async () => {
        const f = await fixture('approve');
        for (const id of ['p-3', 'p-1', 'p-2']) await f.register(id);
        const first = json<{ pending: { id: string }[]; next: string; count: number }>(
          await f.admin('GET', '/ztp/mng/pending?limit=2'),
        );
        assert.deepEqual(
          first.pending.map((p) => p.id),
          ['p-1', 'p-2'],
        );
        assert.equal(first.count, 3);
        const rest = json<{ pending: { id: string }[]; next?: string }>(
          await f.admin('GET', `/ztp/mng/pending?limit=2&after=${first.next}`),
        );
        assert.deepEqual(
          rest.pending.map((p) => p.id),
          ['p-3'],
        );
        assert.equal(rest.next, undefined);
      });

      it('PUT /ztp/mng/{id} does not create in approve mode', async () => {
        const f = await fixture('approve');
        assert.equal((await f.admin('PUT', '/ztp/mng/dev-n', { ip: '10.0.0.1' })).statusCode, 404);
      });
    });
  });
}

/**
 * The HTTP API, end to end through the real app (app.inject), run unchanged against every
 * store engine (api.test.ts for SQLite, api-postgres.test.ts for PostgreSQL).
 */
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import type { StoreView } from '../storage/store-view.js';
import { json, testApp, type TestApp } from '../helpers.js';
import type { OpenedStore } from '../storage/store-suite.js';

const PROBLEM = 'application/problem+json; charset=utf-8';

export function apiSuite(name: string, open: () => Promise<OpenedStore>): void {
  describe(`HTTP API: ${name}`, () => {
    let t: TestApp | undefined;
    let opened: OpenedStore | undefined;
    let store: StoreView;

    beforeEach(async () => {
      if (t) await t.close();
      if (opened) await opened.cleanup();
      opened = await open();
      store = opened.store;
      t = await testApp({ store, service: { triggersEnabled: true } });
    });
    after(async () => {
      await t?.close();
      await opened?.cleanup();
    });
    const app = () => t!.app;

    const put = (url: string, body?: unknown, headers: Record<string, string> = {}) =>
      app().inject({
        method: 'PUT',
        url,
        ...(body === undefined
          ? {}
          : {
              payload: typeof body === 'string' ? body : JSON.stringify(body),
              headers: { 'content-type': 'application/json', ...headers },
            }),
      });
    const get = (url: string) => app().inject({ method: 'GET', url });
    const patch = (url: string, body: unknown) =>
      app().inject({
        method: 'PATCH',
        url,
        payload: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });

    function assertProblem(
      res: { statusCode: number; headers: Record<string, unknown>; body: string },
      status: number,
      code: string,
    ) {
      assert.equal(res.statusCode, status, res.body);
      assert.equal(res.headers['content-type'], PROBLEM);
      const p = json(res);
      assert.equal(p.code, code);
      assert.equal(p.status, status);
      assert.equal(typeof p.detail, 'string');
      assert.doesNotMatch(res.body, /at .*\.(ts|js):\d+/, 'no stack trace in a response');
    }

    describe('PUT /ztp/register/{id}', () => {
      it('answers 201 with the record the first time and 200 after', async () => {
        const first = await put('/ztp/register/AA-BB-CC-DD-EE-FF', {
          ip: '1.1.1.1',
          name: 'sw1',
          userdata: 'u',
        });
        assert.equal(first.statusCode, 201);
        assert.deepEqual(json(first), {
          id: 'aa:bb:cc:dd:ee:ff',
          ip: '1.1.1.1',
          name: 'sw1',
          userdata: 'u',
        });
        const second = await put('/ztp/register/aabb.ccdd.eeff', { ip: '2.2.2.2' });
        assert.equal(second.statusCode, 200);
        // Members a registration omits keep their value.
        assert.deepEqual(json(second), {
          id: 'aa:bb:cc:dd:ee:ff',
          ip: '2.2.2.2',
          name: 'sw1',
          userdata: 'u',
        });
      });

      it('records the source address when ip is omitted, with no body at all too', async () => {
        const res = await app().inject({
          method: 'PUT',
          url: '/ztp/register/cpu-0001',
          remoteAddress: '::ffff:10.1.2.3',
        });
        assert.equal(res.statusCode, 201, res.body);
        assert.equal(json(res).ip, '10.1.2.3');
        const withEmpty = await put('/ztp/register/cpu-0002', {});
        assert.equal(withEmpty.statusCode, 201);
        assert.equal(json(withEmpty).ip, '127.0.0.1');
      });

      it('keeps non-MAC ids as given and normalises IPv6', async () => {
        const res = await put('/ztp/register/Serial-XY.42_a', { ip: '2001:DB8:0:0::1' });
        assert.equal(res.statusCode, 201);
        assert.deepEqual(json(res), {
          id: 'Serial-XY.42_a',
          ip: '2001:db8::1',
          name: '',
          userdata: '',
        });
      });

      it('ignores unknown members', async () => {
        const res = await put('/ztp/register/dev-1', { ip: '1.1.1.1', extra: { deep: true } });
        assert.equal(res.statusCode, 201);
        assert.deepEqual(json(res), { id: 'dev-1', ip: '1.1.1.1', name: '', userdata: '' });
      });

      for (const [label, body, code] of [
        ['junk after an ip', { ip: '1.1.1.1&x=y' }, 'invalid_ip'],
        ['an out-of-range quad', { ip: '1.1.1.256' }, 'invalid_ip'],
        ['a hostname', { ip: 'example.com' }, 'invalid_ip'],
        ['a number as ip', { ip: 5 }, 'invalid_body'],
        ['a number as name', { ip: '1.1.1.1', name: 5 }, 'invalid_body'],
        ['null as userdata', { ip: '1.1.1.1', userdata: null }, 'invalid_body'],
        ['a null body', 'null', 'invalid_body'],
        ['an array body', '[]', 'invalid_body'],
        ['a string body', '"1.1.1.1"', 'invalid_body'],
        ['invalid JSON', '{"ip":', 'invalid_json'],
        ['a long name', { ip: '1.1.1.1', name: 'x'.repeat(256) }, 'invalid_body'],
        ['a control character in name', { ip: '1.1.1.1', name: 'a\nb' }, 'invalid_body'],
        [
          'userdata over 64 KiB',
          { ip: '1.1.1.1', userdata: 'é'.repeat(33 * 1024) },
          'invalid_body',
        ],
        // JSON.stringify writes a lone surrogate as the escape \ud800 (valid JSON, not Unicode).
        ['a lone surrogate in name', { ip: '1.1.1.1', name: 'a\ud800b' }, 'invalid_body'],
        [
          'a name of 255 lone surrogates',
          { ip: '1.1.1.1', name: '\ud800'.repeat(255) },
          'invalid_body',
        ],
        ['a lone surrogate in userdata', { ip: '1.1.1.1', userdata: 'x\udfff' }, 'invalid_body'],
        ['a lone surrogate in ip', { ip: '1.1.1.1\udc00' }, 'invalid_body'],
        [
          'a lone surrogate in an unknown member',
          { ip: '1.1.1.1', extra: { deep: ['\ud83d'] } },
          'invalid_body',
        ],
      ] as const) {
        it(`answers 400 ${code} for ${label}, storing nothing`, async () => {
          const res = await put('/ztp/register/dev-bad', body);
          assertProblem(res, 400, code);
          assert.equal(await store.countDevices(), 0);
        });
      }

      for (const id of [
        'list',
        'triggers',
        'events',
        'a b',
        'x'.repeat(129),
        'ab/cd',
        'naïve',
        '%00',
      ]) {
        it(`answers 400 invalid_id for '${id.slice(0, 20)}'`, async () => {
          const res = await put(`/ztp/register/${encodeURIComponent(id)}`, { ip: '1.1.1.1' });
          assert.ok([400, 404].includes(res.statusCode), res.body);
          assert.equal(res.headers['content-type'], PROBLEM);
          assert.equal(await store.countDevices(), 0);
        });
      }

      it('refuses lone surrogates in ids and keeps paired ones (astral text) exactly', async () => {
        // A surrogate in a URL can only be %-encoded, as invalid UTF-8.
        assertProblem(
          await put('/ztp/register/a%ED%A0%80b', { ip: '1.1.1.1' }),
          400,
          'invalid_url',
        );
        assertProblem(await get('/ztp/check/%ED%A0%80'), 400, 'invalid_url');
        const problem = json(await put('/ztp/register/dev-1', '{"ip":"1.1.1.1","name":"\\ud800"}'));
        assert.match(String(problem.detail), /\/name contains a lone UTF-16 surrogate/);
        assert.equal(await store.countDevices(), 0);
        // Escaped pair and literal character: the same text, stored and returned unchanged.
        const name = '😀'.repeat(127);
        const res = await put(
          '/ztp/register/dev-1',
          `{"ip":"1.1.1.1","name":"${'\\ud83d\\ude00'.repeat(127)}","userdata":"😀"}`,
        );
        assert.equal(res.statusCode, 201, res.body);
        assert.deepEqual(json(await get('/ztp/check/dev-1')), {
          id: 'dev-1',
          ip: '1.1.1.1',
          name,
          userdata: '😀',
        });
      });

      it('answers 415 for a non-JSON body and 413 for an oversized one', async () => {
        // Forms and untyped JSON are registration bodies too (test/devices/registration-bodies).
        const xml = await app().inject({
          method: 'PUT',
          url: '/ztp/register/dev-1',
          payload: '<ip>1.1.1.1</ip>',
          headers: { 'content-type': 'application/xml' },
        });
        assertProblem(xml, 415, 'unsupported_media_type');
        const big = await put('/ztp/register/dev-1', {
          ip: '1.1.1.1',
          userdata: 'x'.repeat(100 * 1024),
        });
        assertProblem(big, 413, 'body_too_large');
        assert.equal(await store.countDevices(), 0);
      });

      it('queues a trigger for the manager with each registration', async () => {
        await put('/ztp/register/dev-1', { ip: '1.1.1.1' });
        const detail = json<{ trigger: { state: string; ip: string } }>(
          await get('/ztp/mng/dev-1'),
        );
        assert.equal(detail.trigger.state, 'pending');
        assert.equal(detail.trigger.ip, '1.1.1.1');
      });
    });

    describe('GET /ztp/check/{id}', () => {
      it('answers the seed shape for any notation of the id', async () => {
        await put('/ztp/register/aa:bb:cc:dd:ee:01', { ip: '10.0.0.1', name: 'n', userdata: 'u' });
        for (const id of [
          'aa:bb:cc:dd:ee:01',
          'AA-BB-CC-DD-EE-01',
          'aabb.ccdd.ee01',
          'AABBCCDDEE01',
          'aabbccddee01',
        ]) {
          const res = await get(`/ztp/check/${id}`);
          assert.equal(res.statusCode, 200);
          assert.deepEqual(json(res), {
            id: 'aa:bb:cc:dd:ee:01',
            ip: '10.0.0.1',
            name: 'n',
            userdata: 'u',
          });
        }
      });

      it('answers 404 device_not_found for an unknown id and 400 for a bad one', async () => {
        assertProblem(await get('/ztp/check/unknown-1'), 404, 'device_not_found');
        assertProblem(await get('/ztp/check/bad%20id'), 400, 'invalid_id');
      });
    });

    describe('management', () => {
      it('lists all ids sorted, with and without the trailing slash', async () => {
        for (const id of ['c-3', 'a-1', 'B-2']) await put(`/ztp/register/${id}`, { ip: '1.1.1.1' });
        for (const url of ['/ztp/mng/list/', '/ztp/mng/list']) {
          const res = await get(url);
          assert.equal(res.statusCode, 200);
          assert.match(String(res.headers['content-type']), /^application\/json/);
          assert.deepEqual(json(res), { hosts: ['B-2', 'a-1', 'c-3'] });
        }
      });

      it('lists an empty registry as an empty array', async () => {
        assert.deepEqual(json(await get('/ztp/mng/list/')), { hosts: [] });
      });

      it('pages the list with limit and after', async () => {
        for (let i = 0; i < 5; i++) await put(`/ztp/register/dev-${i}`, { ip: '1.1.1.1' });
        const p1 = json<{ hosts: string[]; next?: string }>(await get('/ztp/mng/list?limit=2'));
        assert.deepEqual(p1, { hosts: ['dev-0', 'dev-1'], next: 'dev-1' });
        const p3 = json(await get('/ztp/mng/list?limit=2&after=dev-3'));
        assert.deepEqual(p3, { hosts: ['dev-4'] });
        assertProblem(await get('/ztp/mng/list?limit=0'), 400, 'invalid_query');
        assertProblem(await get('/ztp/mng/list?limit=abc'), 400, 'invalid_query');
      });

      it('streams a list larger than one page', async () => {
        const ids: string[] = [];
        const writes = [];
        for (let i = 0; i < 5200; i++) {
          const id = `d${String(i).padStart(5, '0')}`;
          ids.push(id);
          writes.push(
            store.register(
              { id, ip: '1.1.1.1', name: '', userdata: '', source: '', at: 1 },
              { enqueueTrigger: false, historyLimit: 0 },
            ),
          );
        }
        await Promise.all(writes);
        const res = await get('/ztp/mng/list/');
        assert.deepEqual(json<{ hosts: string[] }>(res).hosts, ids);
      });

      it('shows the detail of a device', async () => {
        await app().inject({
          method: 'PUT',
          url: '/ztp/register/dev-1',
          payload: { ip: '10.0.0.1' },
          remoteAddress: '192.0.2.10',
        });
        await app().inject({
          method: 'PUT',
          url: '/ztp/register/dev-1',
          payload: { ip: '10.0.0.2' },
          remoteAddress: '192.0.2.11',
        });
        const res = await get('/ztp/mng/dev-1');
        assert.equal(res.statusCode, 200);
        const d = json<Record<string, unknown> & { history: { ip: string; source: string }[] }>(
          res,
        );
        assert.equal(d.ip, '10.0.0.2');
        assert.equal(d.registrations, 2);
        assert.equal(d.lastSource, '192.0.2.11');
        assert.match(String(d.firstSeen), /^\d{4}-\d\d-\d\dT/);
        assert.ok(String(d.lastSeen) >= String(d.firstSeen));
        assert.deepEqual(
          d.history.map((h) => [h.ip, h.source]),
          [
            ['10.0.0.2', '192.0.2.11'],
            ['10.0.0.1', '192.0.2.10'],
          ],
        );
        assertProblem(await get('/ztp/mng/nope-1'), 404, 'device_not_found');
      });

      it('edits an existing device without triggering, and never creates', async () => {
        await put('/ztp/register/dev-1', { ip: '10.0.0.1', name: 'a' });
        const triggersBefore = await store.countTriggers();
        const res = await put('/ztp/mng/DEV-1', { ip: '10.0.0.9' });
        assertProblem(res, 404, 'device_not_found');
        const ok = await put('/ztp/mng/dev-1', { ip: '10.0.0.9', name: 'b', userdata: 'c' });
        assert.equal(ok.statusCode, 200);
        assert.deepEqual(json(ok), { id: 'dev-1', ip: '10.0.0.9', name: 'b', userdata: 'c' });
        assert.deepEqual(json(await get('/ztp/check/dev-1')), {
          id: 'dev-1',
          ip: '10.0.0.9',
          name: 'b',
          userdata: 'c',
        });
        assert.deepEqual(await store.countTriggers(), triggersBefore);
        assert.equal(json(await get('/ztp/mng/dev-1')).registrations, 1);
        assertProblem(await put('/ztp/mng/dev-1', { ip: '999.1.1.1' }), 400, 'invalid_ip');
        assertProblem(
          await put('/ztp/mng/dev-1', { ip: '10.0.0.1', name: 'x\ud800' }),
          400,
          'invalid_body',
        );
        assert.equal(
          json(await get('/ztp/check/dev-1')).name,
          'b',
          'a refused edit changes nothing',
        );
        assertProblem(await put('/ztp/mng/unknown-9', { ip: '1.1.1.1' }), 404, 'device_not_found');
        assert.equal(await store.countDevices(), 1);
      });

      it('merges an edit: members absent keep their value; PATCH null empties and unpins', async () => {
        await put('/ztp/register/dev-m', { ip: '10.0.0.1', name: 'n', userdata: 'u' });
        const renamed = await put('/ztp/mng/dev-m', { name: 'renamed' });
        assert.equal(renamed.statusCode, 200, renamed.body);
        assert.deepEqual(json(renamed), {
          id: 'dev-m',
          ip: '10.0.0.1',
          name: 'renamed',
          userdata: 'u',
        });
        const ipOnly = await put('/ztp/mng/dev-m', { ip: '10.0.0.6' });
        assert.deepEqual(json(ipOnly), {
          id: 'dev-m',
          ip: '10.0.0.6',
          name: 'renamed',
          userdata: 'u',
        });
        const patched = await patch('/ztp/mng/dev-m', {
          userdata: null,
          pinned: { name: true },
        });
        assert.equal(patched.statusCode, 200, patched.body);
        assert.deepEqual(json(patched), {
          id: 'dev-m',
          ip: '10.0.0.6',
          name: 'renamed',
          userdata: '',
        });
        assert.deepEqual(json(await get('/ztp/mng/dev-m')).pinned, { name: true, userdata: false });
        await patch('/ztp/mng/dev-m', { pinned: { name: null } });
        assert.deepEqual(json(await get('/ztp/mng/dev-m')).pinned, {
          name: false,
          userdata: false,
        });
        // null is PATCH's; PUT takes values only. Nothing changes on a refusal.
        assertProblem(await put('/ztp/mng/dev-m', { name: null }), 400, 'invalid_body');
        assertProblem(await patch('/ztp/mng/dev-m', { ip: null }), 400, 'invalid_body');
        assertProblem(await patch('/ztp/mng/nope-m', { name: 'x' }), 404, 'device_not_found');
        assertProblem(
          await patch('/ztp/mng/nope-m', { pinned: { name: true } }),
          404,
          'device_not_found',
        );
        assert.equal(json(await get('/ztp/check/dev-m')).name, 'renamed');
        assert.equal(await store.countDevices(), 1);
      });

      it('keeps what an admin wrote when the device boots again with only its ip', async () => {
        await put('/ztp/register/aa:bb:cc:00:00:0a', {
          ip: '10.0.0.1',
          name: 'dev',
          userdata: 'd',
        });
        await put('/ztp/mng/aa:bb:cc:00:00:0a', { name: 'keep', userdata: 'admin note' });
        const boot = await put('/ztp/register/aa:bb:cc:00:00:0a', { ip: '10.0.0.2' });
        assert.deepEqual(json(boot), {
          id: 'aa:bb:cc:00:00:0a',
          ip: '10.0.0.2',
          name: 'keep',
          userdata: 'admin note',
        });
        // No body at all (the seed's client with nothing to say): the same.
        const bare = await app().inject({ method: 'PUT', url: '/ztp/register/aa:bb:cc:00:00:0a' });
        assert.equal(json(bare).name, 'keep');
        assert.equal(json(bare).userdata, 'admin note');
      });

      it('pins: registrations cannot change a pinned field; what the device sent is reported', async () => {
        await put('/ztp/register/dev-pin', { ip: '10.0.0.1', name: 'dev', userdata: 'boot' });
        await put('/ztp/mng/dev-pin', { name: 'admin name', pinned: { name: true } });
        const boot = await put('/ztp/register/dev-pin', {
          ip: '10.0.0.1',
          name: 'dev-2',
          userdata: 'boot-2',
        });
        assert.equal(json(boot).name, 'admin name');
        assert.equal(json(boot).userdata, 'boot-2', 'an unpinned field follows the device');
        const d = json(await get('/ztp/mng/dev-pin'));
        assert.deepEqual(d.pinned, { name: true, userdata: false });
        assert.deepEqual(d.reported, { name: 'dev-2', userdata: 'boot-2' });
        // Unpinned: the device's next value is taken again.
        await patch('/ztp/mng/dev-pin', { pinned: { name: false } });
        await put('/ztp/register/dev-pin', { name: 'dev-3' });
        assert.equal(json(await get('/ztp/check/dev-pin')).name, 'dev-3');
        assertProblem(
          await put('/ztp/mng/ghost-pin', { pinned: { name: true } }),
          404,
          'device_not_found',
        );
        assertProblem(
          await put('/ztp/mng/dev-pin', { pinned: { name: 'yes' } }),
          400,
          'invalid_body',
        );
      });

      it('resolves an alias on every {id} endpoint, to the same device', async () => {
        await put('/ztp/register/aa:bb:cc:00:00:20', {
          ip: '10.0.0.1',
          name: 'sw',
          aliases: [
            { type: 'serial', value: 'FOC123' },
            { type: 'mac', value: 'AABB.CC00.0021' },
          ],
        });
        const primary = 'aa:bb:cc:00:00:20';
        for (const alias of ['FOC123', 'aa:bb:cc:00:00:21', 'AABBCC000021', 'aa-bb-cc-00-00-21']) {
          const check = await get(`/ztp/check/${alias}`);
          assert.equal(check.statusCode, 200, `${alias}: ${check.body}`);
          assert.equal(json(check).id, primary);
          const detail = json(await get(`/ztp/mng/${alias}`));
          assert.equal(detail.id, primary);
          assert.deepEqual(detail.aliases, [
            { type: 'serial', value: 'FOC123' },
            { type: 'mac', value: 'aa:bb:cc:00:00:21' },
          ]);
        }
        assert.equal(json(await put('/ztp/mng/FOC123', { name: 'by-alias' })).id, primary);
        assert.equal(json(await patch('/ztp/mng/FOC123', { userdata: 'x' })).userdata, 'x');
        const re = await put('/ztp/register/FOC123', { ip: '10.0.0.9' });
        assert.equal(re.statusCode, 200, 'a registration by an alias updates its device');
        assert.equal(json(re).id, primary);
        assert.equal(json(re).name, 'by-alias');
        const trig = await app().inject({ method: 'POST', url: '/ztp/mng/FOC123/trigger' });
        assert.equal(trig.statusCode, 202, trig.body);
        assert.equal(json(trig).deviceId, primary);
        assert.equal(json(trig).ip, '10.0.0.9');
        const hosts = json(await get('/ztp/mng/list/'));
        assert.deepEqual(hosts, { hosts: [primary] }, 'the list shows primary ids only');
        assert.equal(await store.countDevices(), 1);
        const viaGet = await get('/ztp/mng/FOC123/delete');
        assert.equal(viaGet.statusCode, 200);
        assert.equal(json(viaGet).id, primary);
        assertProblem(await get('/ztp/check/FOC123'), 404, 'device_not_found');
        // Freed with the device.
        await put('/ztp/register/other', { aliases: [{ type: 'serial', value: 'FOC123' }] });
        const del = await app().inject({ method: 'DELETE', url: '/ztp/mng/FOC123' });
        assert.equal(del.statusCode, 204);
        assert.equal(await store.countDevices(), 0);
      });

      it('adds and removes aliases; a conflict names the holder and stores nothing', async () => {
        await put('/ztp/register/dev-x', { ip: '10.0.0.1' });
        await put('/ztp/register/dev-y', { ip: '10.0.0.2' });
        const post = (url: string, body: unknown) =>
          app().inject({ method: 'POST', url, payload: body as object });
        const added = await post('/ztp/mng/dev-x/aliases', { type: 'cpu', value: 'CPU-1' });
        assert.equal(added.statusCode, 201, added.body);
        assert.deepEqual(json(added), { aliases: [{ type: 'cpu', value: 'CPU-1' }] });
        const taken = await post('/ztp/mng/dev-y/aliases', { type: 'cpu', value: 'CPU-1' });
        assertProblem(taken, 409, 'alias_conflict');
        assert.equal(json(taken).holder, 'dev-x');
        assert.equal(json(taken).alias, 'CPU-1');
        assertProblem(
          await post('/ztp/mng/dev-y/aliases', { type: 'serial', value: 'dev-x' }),
          409,
          'alias_conflict',
        );
        const reg = await put('/ztp/register/dev-y', {
          ip: '10.0.0.99',
          name: 'changed',
          aliases: [
            { type: 'dmi', value: 'D-1' },
            { type: 'cpu', value: 'CPU-1' },
          ],
        });
        assertProblem(reg, 409, 'alias_conflict');
        const y = json(await get('/ztp/mng/dev-y'));
        assert.equal(y.ip, '10.0.0.2', 'nothing stored');
        assert.equal(y.registrations, 1);
        assert.deepEqual(y.aliases, []);
        assertProblem(await get('/ztp/check/D-1'), 404, 'device_not_found');
        // Bad input: stable codes, nothing stored.
        assertProblem(
          await post('/ztp/mng/dev-y/aliases', { type: 'imei', value: 'x' }),
          400,
          'unknown_alias_type',
        );
        assertProblem(
          await post('/ztp/mng/dev-y/aliases', { type: 'mac', value: 'not-a-mac' }),
          400,
          'invalid_alias',
        );
        assertProblem(
          await post('/ztp/mng/dev-y/aliases', { type: 'serial', value: 'bad serial' }),
          400,
          'invalid_alias',
        );
        assertProblem(
          await post('/ztp/mng/dev-y/aliases', { type: 'serial', value: '..' }),
          400,
          'invalid_alias',
        );
        const many = Array.from({ length: 33 }, (_, i) => ({ type: 'serial', value: `S-${i}` }));
        assertProblem(await put('/ztp/register/dev-y', { aliases: many }), 400, 'too_many_aliases');
        for (let i = 0; i < 32; i++)
          await post('/ztp/mng/dev-y/aliases', { type: 'serial', value: `S-${i}` });
        assertProblem(
          await post('/ztp/mng/dev-y/aliases', { type: 'serial', value: 'S-32' }),
          400,
          'too_many_aliases',
        );
        assert.equal(json<{ aliases: unknown[] }>(await get('/ztp/mng/dev-y')).aliases.length, 32);
        assertProblem(
          await post('/ztp/mng/ghost/aliases', { type: 'serial', value: 'G' }),
          404,
          'device_not_found',
        );
        // Removal.
        const removed = await app().inject({
          method: 'DELETE',
          url: '/ztp/mng/CPU-1/aliases/cpu/CPU-1',
        });
        assert.equal(removed.statusCode, 204);
        assertProblem(await get('/ztp/check/CPU-1'), 404, 'device_not_found');
        assertProblem(
          await app().inject({ method: 'DELETE', url: '/ztp/mng/dev-x/aliases/cpu/CPU-1' }),
          404,
          'alias_not_found',
        );
      });

      it('refuses ids made only of dots', async () => {
        // `.` and `..` never arrive as ids (clients and the router collapse them).
        for (const id of ['...', '....', '%2E%2E%2E']) {
          assertProblem(await put(`/ztp/register/${id}`, { ip: '10.0.0.1' }), 400, 'invalid_id');
          assertProblem(await get(`/ztp/check/${id}`), 400, 'invalid_id');
        }
        assert.equal(await store.countDevices(), 0);
      });

      it('deletes with the seed GET form (200 + record) and with DELETE (204)', async () => {
        await put('/ztp/register/aa:bb:cc:00:00:01', { ip: '10.0.0.1', name: 'x' });
        await put('/ztp/register/aa:bb:cc:00:00:02', { ip: '10.0.0.2' });
        const viaGet = await get('/ztp/mng/AA-BB-CC-00-00-01/delete');
        assert.equal(viaGet.statusCode, 200);
        assert.deepEqual(json(viaGet), {
          id: 'aa:bb:cc:00:00:01',
          ip: '10.0.0.1',
          name: 'x',
          userdata: '',
        });
        const viaDelete = await app().inject({ method: 'DELETE', url: '/ztp/mng/aabb.cc00.0002' });
        assert.equal(viaDelete.statusCode, 204);
        assert.equal(viaDelete.body, '');
        assert.deepEqual(json(await get('/ztp/mng/list/')), { hosts: [] });
        assertProblem(await get('/ztp/mng/aa:bb:cc:00:00:01/delete'), 404, 'device_not_found');
        assertProblem(
          await app().inject({ method: 'DELETE', url: '/ztp/mng/aa:bb:cc:00:00:02' }),
          404,
          'device_not_found',
        );
      });

      it('lists triggers by state and re-queues one', async () => {
        await put('/ztp/register/dev-1', { ip: '10.0.0.1' });
        await put('/ztp/register/dev-2', { ip: '10.0.0.2' });
        const list = json<{ triggers: { deviceId: string; state: string }[] }>(
          await get('/ztp/mng/triggers?state=pending'),
        );
        assert.deepEqual(
          list.triggers.map((x) => x.deviceId),
          ['dev-1', 'dev-2'],
        );
        assert.deepEqual(json(await get('/ztp/mng/triggers?state=dead')), { triggers: [] });
        const paged = json<{ triggers: unknown[]; next?: number }>(
          await get('/ztp/mng/triggers?limit=1'),
        );
        assert.equal(paged.triggers.length, 1);
        assert.equal(typeof paged.next, 'number');
        assertProblem(await get('/ztp/mng/triggers?state=bogus'), 400, 'invalid_query');
        const re = await app().inject({ method: 'POST', url: '/ztp/mng/dev-1/trigger' });
        assert.equal(re.statusCode, 202);
        assert.equal(json(re).state, 'pending');
        assertProblem(
          await app().inject({ method: 'POST', url: '/ztp/mng/nope-1/trigger' }),
          404,
          'device_not_found',
        );
      });
    });

    describe('operations and documents', () => {
      it('answers liveness, readiness and unknown routes', async () => {
        assert.deepEqual(json(await get('/healthz')), { status: 'ok' });
        const ready = await get('/readyz');
        assert.equal(ready.statusCode, 200);
        assert.equal(json(ready).status, 'ready');
        assertProblem(await get('/nowhere'), 404, 'route_not_found');
      });

      it('an empty JSON registration body stores the device; HEAD on the seed delete keeps it', async () => {
        const created = await put('/ztp/register/empty-json-1', '');
        assert.equal(created.statusCode, 201, created.body);
        const head = await app().inject({ method: 'HEAD', url: '/ztp/mng/empty-json-1/delete' });
        assert.equal(head.statusCode, 405);
        assert.equal(head.headers.allow, 'GET');
        assert.equal((await get('/ztp/check/empty-json-1')).statusCode, 200);
        assertProblem(await get('/ztp/register/empty-json-1'), 405, 'method_not_allowed');
      });

      it('serves an OpenAPI 3 document covering every API path, and Swagger UI', async () => {
        const doc = json<{ openapi: string; paths: Record<string, unknown> }>(
          await get('/openapi.json'),
        );
        assert.match(doc.openapi, /^3\./);
        for (const p of [
          '/ztp/register/{id}',
          '/ztp/check/{id}',
          '/ztp/mng/list',
          '/ztp/mng/{id}',
          '/ztp/mng/{id}/delete',
        ]) {
          assert.ok(doc.paths[p], `${p} documented`);
        }
        const ui = await get('/docs/');
        assert.equal(ui.statusCode, 200);
        assert.match(ui.body, /swagger/i);
      });
    });
  });
}

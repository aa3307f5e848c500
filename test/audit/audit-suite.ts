/**
 * The audit log, run on each engine (audit-*.test.ts): the store's contract (append as a step,
 * paging, retention) and, through the HTTP API, one entry for every admin write with who, from
 * where and the device before and after, none for registrations, and the change and its entry
 * committed or failed together.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { auditRoutes } from '../../src/audit/routes.js';
import { AuditService } from '../../src/audit/service.js';
import type { AuditEntry, AuditStore } from '../../src/audit/store.js';
import {
  cliContext,
  exportAudit,
  importDevices,
  importEnrollmentCsv,
  transferStore,
} from '../../src/cli/transfer.js';
import type { AuditRecord, AuditRecorder } from '../../src/devices/admin.js';
import { DeviceService, type Stores } from '../../src/devices/service.js';
import { enrollmentPlugin } from '../../src/enrollment/routes.js';
import { RuleSet } from '../../src/enrollment/rules.js';
import { EnrollmentService, type EnrollmentMode } from '../../src/enrollment/service.js';
import type { EnrollmentStore } from '../../src/enrollment/store.js';
import { EventBus } from '../../src/events/bus.js';
import type { ApiGroup, Guard } from '../../src/http/auth.js';
import { buildGuards } from '../../src/security/guards.js';
import { hashToken, parseTokens, TokenSet } from '../../src/security/tokens.js';
import { json } from '../helpers.js';

interface AuditPageBody {
  entries: { device: string }[];
  next?: number;
}

export interface OpenedAuditStores {
  stores: Stores & { enrollment: EnrollmentStore; audit: AuditStore };
  close(): Promise<void>;
}

const T0 = Date.parse('2026-12-05T12:00:00Z');
const DAY = 24 * 60 * 60 * 1000;
const ADMIN_TOKEN = 'audit-admin-token-0123456789';
const TOKENS = new TokenSet(parseTokens(`admin:alice:${hashToken(ADMIN_TOKEN)}\n`, 'tokens'));

function record(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    at: T0,
    actor: 'alice',
    source: '10.0.0.9',
    via: 'PATCH /ztp/mng/:id',
    action: 'edit',
    device: 'dev-1',
    before: { name: 'a' },
    after: { name: 'b' },
    detail: null,
    ...over,
  };
}

export function auditSuite(engine: string, open: () => Promise<OpenedAuditStores>): void {
  let opened: OpenedAuditStores | undefined;
  let app: FastifyInstance | undefined;

  afterEach(async () => {
    await app?.close();
    await opened?.close();
    app = undefined;
    opened = undefined;
  });

  describe(`audit store contract on ${engine}`, () => {
    async function append(store: AuditStore, stores: Stores, r: AuditRecord): Promise<AuditEntry> {
      const [entry] = await stores.db.commit(r.device ?? '', [store.appendStep(() => r)]);
      return entry;
    }

    it('appends as a step, keeps the images as given, and pages by seq and device', async () => {
      opened = await open();
      const { stores } = opened;
      const a = await append(stores.audit, stores, record());
      const b = await append(stores.audit, stores, record({ device: 'dev-2', at: T0 + 1 }));
      const c = await append(
        stores.audit,
        stores,
        record({ action: 'import', device: null, before: null, after: null, detail: { n: 2 } }),
      );
      assert.ok(a.seq < b.seq && b.seq < c.seq, 'seq increases');
      assert.deepEqual(a.before, { name: 'a' });
      assert.deepEqual(c.detail, { n: 2 });
      const all = await stores.audit.list({ limit: 10 });
      assert.deepEqual(
        all.map((e) => e.seq),
        [a.seq, b.seq, c.seq],
      );
      assert.deepEqual(all[0], a);
      assert.deepEqual(
        (await stores.audit.list({ after: a.seq, limit: 1 })).map((e) => e.seq),
        [b.seq],
      );
      assert.deepEqual(
        (await stores.audit.list({ device: 'dev-1', limit: 10 })).map((e) => e.seq),
        [a.seq],
      );
      assert.deepEqual(await stores.audit.list({ device: 'nope', limit: 10 }), []);
    });

    it('prunes entries older than the retention (injected clock); seq is never reused', async () => {
      opened = await open();
      const { stores } = opened;
      const clock = { now: T0 };
      const service = new AuditService(stores.audit, {
        retentionMs: 30 * DAY,
        now: () => clock.now,
        resolveId: (id) => Promise.resolve(id),
      });
      const old = await append(stores.audit, stores, record({ at: T0 - 40 * DAY }));
      const kept = await append(stores.audit, stores, record({ at: T0 - 10 * DAY }));
      assert.equal(await service.prune(), 1);
      assert.deepEqual(
        (await stores.audit.list({ limit: 10 })).map((e) => e.seq),
        [kept.seq],
      );
      clock.now = T0 + 25 * DAY;
      assert.equal(await service.prune(), 1);
      const next = await append(stores.audit, stores, record({ at: clock.now }));
      assert.ok(next.seq > kept.seq && next.seq > old.seq);
      const forever = new AuditService(stores.audit, {
        retentionMs: 0,
        now: () => T0 + 10_000 * DAY,
        resolveId: (id) => Promise.resolve(id),
      });
      assert.equal(await forever.prune(), 0, 'retention 0 keeps everything');
      assert.equal((await stores.audit.list({ limit: 10 })).length, 1);
    });
  });

  describe(`audit log through the API on ${engine}`, () => {
    interface Fixture {
      app: FastifyInstance;
      stores: OpenedAuditStores['stores'];
      as(
        who: 'alice' | 'anonymous',
        method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
        url: string,
        body?: object,
      ): Promise<LightMyRequestResponse>;
      register(id: string, body?: Record<string, string>): Promise<LightMyRequestResponse>;
      entries(query?: string): Promise<Record<string, unknown>[]>;
    }

    async function fixture(
      mode: EnrollmentMode,
      options: {
        tokens?: boolean;
        guard?: Guard;
        audit?: (store: AuditStore) => AuditRecorder;
      } = {},
    ): Promise<Fixture> {
      opened = await open();
      const { stores } = opened;
      const enrollment = new EnrollmentService(stores.db, stores.enrollment, {
        mode,
        rules: RuleSet.empty,
        now: () => T0,
      });
      const service = new DeviceService(stores, {
        triggersEnabled: true,
        historyLimit: 10,
        events: new EventBus(),
        admission: enrollment.admission,
        audit: options.audit ? options.audit(stores.audit) : stores.audit,
        now: () => T0,
      });
      enrollment.attach(service);
      const audit = new AuditService(stores.audit, {
        retentionMs: 0,
        resolveId: (id) => service.resolveId(id),
      });
      const guards: Partial<Record<ApiGroup, Guard>> = options.tokens
        ? buildGuards({ tokens: () => TOKENS })
        : {};
      if (options.guard) guards.management = options.guard;
      const built = await buildApp({
        service,
        logger: false,
        guards,
        plugins: [enrollmentPlugin(enrollment), auditRoutes(audit)],
      });
      app = built;
      const as: Fixture['as'] = (who, method, url, body) =>
        built.inject({
          method,
          url,
          remoteAddress: '192.0.2.7',
          headers: who === 'alice' ? { authorization: `Bearer ${ADMIN_TOKEN}` } : {},
          ...(body ? { payload: body } : {}),
        });
      return {
        app: built,
        stores,
        as,
        register: (id, body = {}) =>
          built.inject({
            method: 'PUT',
            url: `/ztp/register/${id}`,
            payload: body,
            remoteAddress: '10.9.0.1',
            headers: options.tokens ? { authorization: `Bearer ${ADMIN_TOKEN}` } : {},
          }),
        entries: async (query = '') => {
          const res = await as(
            options.tokens ? 'alice' : 'anonymous',
            'GET',
            `/ztp/mng/audit${query}`,
          );
          assert.equal(res.statusCode, 200, res.body);
          return json(res).entries as Record<string, unknown>[];
        },
      };
    }

    /** Runs an admin write and returns the one entry it added. */
    async function oneEntry(
      f: Fixture,
      write: () => Promise<LightMyRequestResponse>,
      status: number,
    ): Promise<Record<string, unknown>> {
      const before = await f.entries();
      const res = await write();
      assert.equal(res.statusCode, status, res.body);
      const after = await f.entries(before.length ? `?after=${String(before.at(-1)!.seq)}` : '');
      assert.equal(after.length, 1, `one entry: ${JSON.stringify(after)}`);
      return after[0]!;
    }

    const MAC = 'aa:bb:cc:00:00:01';

    it('records create, edit, pin, PATCH, alias add/remove, re-trigger and both deletes, with actor, source and images', async () => {
      const f = await fixture('allowlist', { tokens: true });
      const create = await oneEntry(
        f,
        () => f.as('alice', 'PUT', `/ztp/mng/${MAC}`, { ip: '10.0.0.3', name: 'leaf-1' }),
        201,
      );
      assert.equal(create.action, 'create');
      assert.equal(create.actor, 'alice');
      assert.equal(create.source, '192.0.2.7');
      assert.equal(create.via, 'PUT /ztp/mng/:id');
      assert.equal(create.device, MAC);
      assert.equal(create.before, null);
      assert.equal((create.after as { name: string }).name, 'leaf-1');
      assert.equal(create.at, new Date(T0).toISOString());

      const edit = await oneEntry(
        f,
        () => f.as('alice', 'PUT', `/ztp/mng/${MAC}`, { name: 'leaf-2' }),
        200,
      );
      assert.equal(edit.action, 'edit');
      assert.equal((edit.before as { name: string }).name, 'leaf-1');
      assert.equal((edit.after as { name: string }).name, 'leaf-2');

      const pin = await oneEntry(
        f,
        () => f.as('alice', 'PATCH', `/ztp/mng/${MAC}`, { pinned: { name: true } }),
        200,
      );
      assert.equal(pin.action, 'edit');
      assert.equal(pin.via, 'PATCH /ztp/mng/:id');
      assert.deepEqual((pin.before as { pinned: object }).pinned, { name: false, userdata: false });
      assert.deepEqual((pin.after as { pinned: object }).pinned, { name: true, userdata: false });

      const patch = await oneEntry(
        f,
        () => f.as('alice', 'PATCH', `/ztp/mng/${MAC}`, { userdata: 'x=1', name: null }),
        200,
      );
      assert.equal((patch.before as { userdata: string }).userdata, '');
      assert.equal((patch.after as { userdata: string }).userdata, 'x=1');
      assert.equal((patch.after as { name: string }).name, '');

      const add = await oneEntry(
        f,
        () => f.as('alice', 'POST', `/ztp/mng/${MAC}/aliases`, { type: 'serial', value: 'FOC1' }),
        201,
      );
      assert.equal(add.action, 'alias-add');
      assert.deepEqual(add.before, { aliases: [] });
      assert.deepEqual(add.after, { aliases: [{ type: 'serial', value: 'FOC1' }] });

      // Alias lookups: by the alias, the device's own trail.
      assert.equal((await f.entries('?device=FOC1')).length, 5);

      const remove = await oneEntry(
        f,
        () => f.as('alice', 'DELETE', `/ztp/mng/${MAC}/aliases/serial/FOC1`),
        204,
      );
      assert.equal(remove.action, 'alias-remove');
      assert.deepEqual(remove.after, { aliases: [] });

      const retrigger = await oneEntry(
        f,
        () => f.as('alice', 'POST', `/ztp/mng/${MAC}/trigger`),
        202,
      );
      assert.equal(retrigger.action, 'retrigger');
      assert.equal((retrigger.detail as { ip: string }).ip, '10.0.0.3');
      assert.equal(typeof (retrigger.detail as { trigger: number }).trigger, 'number');

      // Registrations are history, not audit entries.
      const count = (await f.entries()).length;
      assert.equal((await f.register(MAC, { ip: '10.0.0.4' })).statusCode, 200);
      assert.equal((await f.entries()).length, count, 'a registration adds no entry');

      const seedDelete = await oneEntry(
        f,
        () => f.as('alice', 'GET', `/ztp/mng/${MAC}/delete`),
        200,
      );
      assert.equal(seedDelete.action, 'delete');
      assert.equal(seedDelete.via, 'GET /ztp/mng/:id/delete', 'a GET delete is visible as such');
      assert.equal((seedDelete.before as { ip: string }).ip, '10.0.0.4');
      assert.equal(seedDelete.after, null);

      await f.as('alice', 'PUT', `/ztp/mng/${MAC}`, { ip: '10.0.0.5' });
      const del = await oneEntry(f, () => f.as('alice', 'DELETE', `/ztp/mng/${MAC}`), 204);
      assert.equal(del.action, 'delete');
      assert.equal(del.via, 'DELETE /ztp/mng/:id');

      // A deleted device's trail is still found by its id (in any spelling of it).
      const trail = await f.entries(`?device=${MAC.toUpperCase()}`);
      assert.deepEqual(
        trail.map((e) => e.action),
        [
          'create',
          'edit',
          'edit',
          'edit',
          'alias-add',
          'alias-remove',
          'retrigger',
          'delete',
          'create',
          'delete',
        ],
      );
    });

    it('records approve, reject and lift by an anonymous admin, with the pending record as before', async () => {
      const f = await fixture('approve');
      assert.equal((await f.register('dev-p', { ip: '10.0.0.7', name: 'p' })).statusCode, 202);
      assert.equal((await f.register('dev-r', { ip: '10.0.0.8' })).statusCode, 202);
      assert.deepEqual(await f.entries(), [], 'held registrations add no entry');
      const approve = await oneEntry(
        f,
        () => f.as('anonymous', 'POST', '/ztp/mng/dev-p/approve'),
        200,
      );
      assert.equal(approve.action, 'approve');
      assert.equal(approve.actor, 'anonymous');
      assert.equal((approve.before as { ip: string }).ip, '10.0.0.7');
      assert.equal((approve.after as { name: string }).name, 'p');
      const reject = await oneEntry(
        f,
        () => f.as('anonymous', 'POST', '/ztp/mng/dev-r/reject'),
        200,
      );
      assert.equal(reject.action, 'reject');
      assert.equal(reject.before, null);
      assert.equal((reject.after as { ip: string }).ip, '10.0.0.8');
      const lift = await oneEntry(
        f,
        () => f.as('anonymous', 'DELETE', '/ztp/mng/rejected/dev-r'),
        204,
      );
      assert.equal(lift.action, 'lift');
      assert.equal((lift.before as { id: string }).id, 'dev-r');
      assert.equal(lift.after, null);
    });

    it('takes the client certificate name as the actor under mutual TLS', async () => {
      const mtls = buildGuards({ requireClientCert: ['management'] }).management!;
      // The real guard, given the connection a TLS socket with a verified client certificate.
      const socket = {
        authorized: true,
        getPeerCertificate: () => ({ raw: Buffer.from('x'), subject: { CN: 'ops-laptop' } }),
      };
      const guard: Guard = (request, group) =>
        mtls({ ...request, raw: { socket } } as never, group);
      const f = await fixture('allowlist', { guard });
      const create = await oneEntry(
        f,
        () => f.as('anonymous', 'PUT', '/ztp/mng/dev-c', { ip: '10.0.0.1' }),
        201,
      );
      assert.equal(create.actor, 'ops-laptop');
    });

    it('records an import as one entry with its counts, by cli:<user> from local', async () => {
      const f = await fixture('allowlist');
      const transfer = transferStore(f.stores);
      const csv = await importEnrollmentCsv(
        transfer,
        ',FOC1,,a\n,FOC2,,b\n',
        T0,
        cliContext('ztp import --csv'),
      );
      assert.equal(csv.created, 2);
      const lines = [
        JSON.stringify({ id: 'dev-j', ip: '10.0.0.1', firstSeen: T0, lastSeen: T0 }),
        '{"audit":{"seq":1}}',
      ].join('\n');
      const jsonl = await importDevices(
        transfer,
        Readable.from([lines]),
        undefined,
        cliContext('ztp import'),
      );
      assert.equal(jsonl.auditLines, 1);
      const entries = await f.entries();
      assert.equal(entries.length, 2);
      assert.equal(entries[0]!.action, 'import');
      assert.equal(entries[0]!.device, null);
      assert.equal(entries[0]!.source, 'local');
      assert.match(String(entries[0]!.actor), /^cli:./);
      assert.equal(entries[0]!.via, 'ztp import --csv');
      assert.deepEqual(entries[0]!.detail, { created: 2, present: 0 });
      assert.deepEqual(entries[1]!.detail, { created: 1, replaced: 0, bad: 0 });

      // ztp export --audit: one line per entry, as the API shows it.
      let out = '';
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          out += chunk.toString();
          done();
        },
      });
      assert.equal(await exportAudit(transfer, sink), 2);
      const exported = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { audit: Record<string, unknown> });
      assert.deepEqual(
        exported.map((l) => l.audit),
        entries,
      );
    });

    it('pages with after and limit, and answers bad queries with 400', async () => {
      const f = await fixture('allowlist');
      for (const n of [1, 2, 3])
        await f.as('anonymous', 'PUT', `/ztp/mng/dev-${n}`, { ip: `10.0.0.${n}` });
      const first = await f.as('anonymous', 'GET', '/ztp/mng/audit?limit=2');
      assert.equal(first.statusCode, 200);
      const page = json<AuditPageBody>(first);
      assert.equal(page.entries.length, 2);
      const rest = json<AuditPageBody>(
        await f.as('anonymous', 'GET', `/ztp/mng/audit?after=${String(page.next)}`),
      );
      assert.deepEqual(
        rest.entries.map((e) => e.device),
        ['dev-3'],
      );
      assert.equal(rest.next, undefined);
      for (const query of [
        'limit=0',
        'limit=1001',
        'after=-1',
        'after=x',
        'after=1.5',
        'after=99999999999999999999',
        'device=',
        'device=bad%20id',
      ]) {
        const res = await f.as('anonymous', 'GET', `/ztp/mng/audit?${query}`);
        assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
        assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
        assert.ok(['invalid_query', 'invalid_id'].includes(String(json(res).code)), query);
        if (query.startsWith('after='))
          assert.equal(
            json(res).detail,
            'after must be a non-negative integer of at most 15 digits',
            query,
          );
      }
    });

    it('needs the management credential', async () => {
      const f = await fixture('allowlist', { tokens: true });
      const res = await f.as('anonymous', 'GET', '/ztp/mng/audit');
      assert.equal(res.statusCode, 401);
    });

    it('a write whose audit entry fails leaves the device unchanged and answers an error', async () => {
      // The entry breaks a NOT NULL constraint of audit_log: the database refuses it after
      // the change's own statements ran in the same transaction.
      const f = await fixture('allowlist', {
        audit: (store) => ({
          appendStep: (entry) =>
            store.appendStep(() => {
              const r = entry();
              return r.action === 'edit' || r.action === 'delete'
                ? ({ ...r, actor: null } as unknown as AuditRecord)
                : r;
            }),
        }),
      });
      assert.equal(
        (await f.as('anonymous', 'PUT', '/ztp/mng/dev-a', { name: 'one' })).statusCode,
        201,
      );
      const edit = await f.as('anonymous', 'PATCH', '/ztp/mng/dev-a', { name: 'two' });
      assert.ok(edit.statusCode >= 500, edit.body);
      const del = await f.as('anonymous', 'DELETE', '/ztp/mng/dev-a');
      assert.ok(del.statusCode >= 500, del.body);
      const device = json(await f.as('anonymous', 'GET', '/ztp/mng/dev-a'));
      assert.equal(device.name, 'one', 'the edit was rolled back with its entry');
      assert.deepEqual(
        (await f.entries()).map((e) => e.action),
        ['create'],
      );
    });

    it('a write whose change fails writes no entry', async () => {
      const f = await fixture('approve');
      assert.equal((await f.as('anonymous', 'POST', '/ztp/mng/nope/approve')).statusCode, 409);
      assert.equal((await f.as('anonymous', 'POST', '/ztp/mng/nope/reject')).statusCode, 409);
      assert.equal((await f.as('anonymous', 'DELETE', '/ztp/mng/rejected/nope')).statusCode, 404);
      assert.equal((await f.as('anonymous', 'DELETE', '/ztp/mng/nope')).statusCode, 404);
      assert.equal((await f.register('dev-x', { ip: '10.0.0.1' })).statusCode, 202);
      await f.as('anonymous', 'POST', '/ztp/mng/dev-x/approve');
      await f.register('dev-y', { ip: '10.0.0.2' });
      await f.as('anonymous', 'POST', '/ztp/mng/dev-y/approve');
      const count = (await f.entries()).length;
      // Inside the step: an alias another device holds, and an alias the device does not hold.
      await f.as('anonymous', 'POST', '/ztp/mng/dev-x/aliases', { type: 'serial', value: 'S1' });
      const conflict = await f.as('anonymous', 'POST', '/ztp/mng/dev-y/aliases', {
        type: 'serial',
        value: 'S1',
      });
      assert.equal(conflict.statusCode, 409);
      const missing = await f.as('anonymous', 'DELETE', '/ztp/mng/dev-y/aliases/serial/S9');
      assert.equal(missing.statusCode, 404);
      assert.equal((await f.entries()).length, count + 1, 'only the alias that was added');
    });
  });
}

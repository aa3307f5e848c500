/**
 * Progress reports: the ReportStore contract on the memory fake, SQLite and PostgreSQL, and
 * POST /ztp/report/{id} through the real app (JSON and form bodies, refusals that store nothing,
 * the event and the metric).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { buildApp } from '../../src/app.js';
import type { Transactor } from '../../src/db/unit-of-work.js';
import { DeviceService } from '../../src/devices/service.js';
import type { DeviceStore } from '../../src/devices/store.js';
import { DeviceNotFoundError } from '../../src/errors.js';
import { EventBus, type RegistryEvent } from '../../src/events/bus.js';
import { operatorFeatures } from '../../src/operator.js';
import { PROGRESS_TYPES, REPORT_MESSAGE_MAX_BYTES } from '../../src/reports/progress.js';
import { reportRoutes } from '../../src/reports/routes.js';
import { ReportService } from '../../src/reports/service.js';
import type { ReportStore } from '../../src/reports/store.js';
import { openStores } from '../../src/stores.js';
import { MemoryReportStore, memoryStores } from '../fakes/memory-stores.js';
import { json, tempDir } from '../helpers.js';
import { createTestDatabase, skippedPgSuite, type PgTestDatabase } from '../pg-helpers.js';

const T0 = 1_700_000_000_000;

interface Opened {
  db: Transactor;
  devices: DeviceStore;
  reports: ReportStore;
  close: () => Promise<void>;
}

function contract(name: string, open: () => Promise<Opened>) {
  describe(`ReportStore contract: ${name}`, () => {
    let s: Opened;
    beforeEach(async () => {
      s = await open();
    });
    const register = (id: string, at: number) =>
      s.db.commit(id, [
        s.devices.registerStep({ id, ip: '10.0.0.1', name: '', userdata: '', source: '', at }, 5),
      ]);
    const report = (id: string, at: number, type: (typeof PROGRESS_TYPES)[number], limit = 3) =>
      s.db.commit(id, [s.reports.reportStep({ deviceId: id, at, type, message: `m${at}` }, limit)]);

    it('keeps the newest reports of a device, numbered, and the latest of each', async () => {
      try {
        await register('dev-a', T0);
        await register('dev-b', T0);
        for (let i = 1; i <= 5; i++) await report('dev-a', T0 + i, 'informational');
        const [last] = await report('dev-a', T0 + 6, 'bootstrap-error');
        assert.deepEqual(last, {
          deviceId: 'dev-a',
          seq: 6,
          at: T0 + 6,
          type: 'bootstrap-error',
          message: `m${T0 + 6}`,
        });
        assert.deepEqual(
          (await s.reports.recent('dev-a', 10)).map((r) => [r.seq, r.type]),
          [
            [6, 'bootstrap-error'],
            [5, 'informational'],
            [4, 'informational'],
          ],
          'only the newest 3 are kept',
        );
        assert.deepEqual(
          (await s.reports.recent('dev-a', 1)).map((r) => r.seq),
          [6],
        );
        await report('dev-b', T0 + 7, 'bootstrap-complete');
        const latest = await s.reports.latest(['dev-a', 'dev-b', 'dev-c']);
        assert.deepEqual(latest.map((r) => [r.deviceId, r.type]).sort(), [
          ['dev-a', 'bootstrap-error'],
          ['dev-b', 'bootstrap-complete'],
        ]);
        assert.deepEqual(await s.reports.latest([]), []);
      } finally {
        await s.close();
      }
    });

    it('refuses a report of an unknown device, storing nothing; a deleted device takes its reports away', async () => {
      try {
        await assert.rejects(report('nope', T0, 'informational'), DeviceNotFoundError);
        assert.deepEqual(await s.reports.recent('nope', 10), []);
        await register('dev-a', T0);
        await report('dev-a', T0 + 1, 'bootstrap-error');
        await s.db.commit('dev-a', [s.devices.deleteStep('dev-a')]);
        assert.deepEqual(await s.reports.latest(['dev-a']), []);
        await register('dev-a', T0 + 2);
        assert.deepEqual(await s.reports.recent('dev-a', 10), [], 'not the new device’s');
        await report('dev-a', T0 + 3, 'bootstrap-initiated');
        assert.deepEqual(
          (await s.reports.recent('dev-a', 10)).map((r) => r.type),
          ['bootstrap-initiated'],
        );
      } finally {
        await s.close();
      }
    });
  });
}

contract('memory', async () => {
  const m = memoryStores();
  return {
    db: m.db,
    devices: m.devices,
    reports: new MemoryReportStore(m.tables),
    close: () => m.db.close(),
  };
});

const { dir, cleanup } = tempDir();
after(cleanup);
let n = 0;
contract('sqlite', async () => {
  const s = await openStores(join(dir, `contract-${++n}.db`));
  return { ...s, close: () => s.db.close() };
});

let pgdb: PgTestDatabase | undefined;
before(async () => {
  pgdb = await createTestDatabase('reports');
});
after(async () => {
  await pgdb?.drop();
});
if (process.env.ZTP_TEST_DATABASE_URL) {
  contract('postgres', async () => {
    await pgdb!.reset();
    const s = await openStores(pgdb!.url);
    return { ...s, close: () => s.db.close() };
  });
} else skippedPgSuite('ReportStore contract: postgres');

describe('POST /ztp/report/{id}', () => {
  async function reportApp() {
    const stores = await openStores(join(dir, `api-${++n}.db`));
    const events = new EventBus();
    const seen: RegistryEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const service = new DeviceService(stores, { triggersEnabled: false, historyLimit: 5, events });
    const reports = new ReportService(stores, service, { events });
    const operator = operatorFeatures({ service, reports, events, processMetrics: false });
    const app = await buildApp({ service, plugins: [reportRoutes(reports), operator.plugin] });
    const close = async () => {
      await app.close();
      await stores.db.close();
    };
    return { app, seen, close };
  }

  it('stores JSON and form reports of a registered device, streams and counts them', async () => {
    const { app, seen, close } = await reportApp();
    try {
      const reg = await app.inject({ method: 'PUT', url: '/ztp/register/AA-BB-CC-DD-EE-01' });
      assert.equal(reg.statusCode, 201);
      const first = await app.inject({
        method: 'POST',
        url: '/ztp/report/aa:bb:cc:dd:ee:01',
        payload: { type: 'bootstrap-initiated' },
      });
      assert.equal(first.statusCode, 201);
      const stored = json<{ seq: number; at: string; type: string; message: string }>(first);
      assert.deepEqual(
        { ...stored, at: typeof stored.at },
        { seq: 1, at: 'string', type: 'bootstrap-initiated', message: '' },
      );
      const form = await app.inject({
        method: 'POST',
        url: '/ztp/report/AA-BB-CC-DD-EE-01',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'type=bootstrap-error&message=config+apply+failed%3A+line+3&extra=x',
      });
      assert.equal(form.statusCode, 201, form.body);
      assert.equal(json(form).message, 'config apply failed: line 3');
      const listed = await app.inject({ url: '/ztp/mng/devices/AA-BB-CC-DD-EE-01/reports' });
      assert.deepEqual(
        json<{ reports: { type: string }[] }>(listed).reports.map((r) => r.type),
        ['bootstrap-error', 'bootstrap-initiated'],
      );
      const page = await app.inject({ url: '/ztp/mng/devices' });
      const row = json<{ items: { report: { type: string; message: string } | null }[] }>(page)
        .items[0]!;
      assert.equal(row.report?.type, 'bootstrap-error', 'the status column: the latest report');
      const reportEvents = seen.filter((e) => e.type === 'report');
      assert.deepEqual(
        reportEvents.map((e) => e.report.type),
        ['bootstrap-initiated', 'bootstrap-error'],
      );
      const metrics = (await app.inject({ url: '/metrics' })).body;
      assert.match(metrics, /^ztp_reports_total\{type="bootstrap-error"\} 1$/m);
      assert.match(metrics, /^ztp_reports_total\{type="bootstrap-initiated"\} 1$/m);
    } finally {
      await close();
    }
  });

  it('refuses an unknown type, a long message, an unknown device and other media, storing nothing', async () => {
    const { app, seen, close } = await reportApp();
    try {
      await app.inject({ method: 'PUT', url: '/ztp/register/dev-1' });
      const refusals: [Record<string, string>, number, string][] = [
        [{ type: 'ztp-complete' }, 400, 'unknown_progress_type'],
        [{ type: 'Bootstrap-Complete' }, 400, 'unknown_progress_type'],
        [
          { type: 'informational', message: 'é'.repeat(REPORT_MESSAGE_MAX_BYTES / 2 + 1) },
          400,
          'report_message_too_long',
        ],
        [{ message: 'no type' }, 400, 'invalid_body'],
        [{ type: 'informational', message: 'nul\u0000' }, 400, 'invalid_body'],
      ];
      for (const [payload, status, code] of refusals) {
        const res = await app.inject({ method: 'POST', url: '/ztp/report/dev-1', payload });
        assert.equal(res.statusCode, status, JSON.stringify(payload));
        assert.equal(json(res).code, code);
        assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      }
      const exact = await app.inject({
        method: 'POST',
        url: '/ztp/report/dev-1',
        payload: { type: 'informational', message: 'é'.repeat(REPORT_MESSAGE_MAX_BYTES / 2) },
      });
      assert.equal(exact.statusCode, 201, 'a message of exactly the limit is stored');
      const unknown = await app.inject({
        method: 'POST',
        url: '/ztp/report/dev-2',
        payload: { type: 'bootstrap-complete' },
      });
      assert.equal(unknown.statusCode, 404);
      assert.equal(json(unknown).code, 'device_not_found');
      const xml = await app.inject({
        method: 'POST',
        url: '/ztp/report/dev-1',
        headers: { 'content-type': 'application/xml' },
        payload: '<type>informational</type>',
      });
      assert.equal(xml.statusCode, 415);
      assert.match(json(xml).detail as string, /a report body cannot be application\/xml/);
      const listed = await app.inject({ url: '/ztp/mng/devices/dev-1/reports' });
      assert.equal(json<{ reports: unknown[] }>(listed).reports.length, 1);
      assert.equal((await app.inject({ url: '/ztp/mng/devices/dev-2/reports' })).statusCode, 404);
      assert.equal(seen.filter((e) => e.type === 'report').length, 1);
    } finally {
      await close();
    }
  });
});

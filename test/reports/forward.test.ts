/**
 * --report-forward through `ztp serve` on each engine, against a real local manager: a report is
 * POSTed to the manager (signed), retried after a 500, delivered by a new server when the first
 * one stopped before delivering it, and never becomes the device's latest trigger; without the
 * flag nothing is forwarded. Waits are the manager's own calls (no polling).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadServeConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { startServer } from '../../src/server.js';
import { tempDir } from '../helpers.js';
import { createTestDatabase, skippedPgSuite, type PgTestDatabase } from '../pg-helpers.js';

const SECRET = 'forward-secret-0123456789abcdef';
const ID = 'aa:bb:cc:00:20:01';

interface Call {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface ForwardedEvent {
  event_id: string;
  type: string;
  at: string;
  device: { id: string; ip: string; name: string; aliases: string[] };
  report: { type: string; message: string; at: string };
}

/**
 * A manager answering each call with `status(call)` (200 unless set), that lets a test await
 * the first call, past or future, that a predicate picks.
 */
async function scriptedManager() {
  const calls: Call[] = [];
  const waiters: { pick: (c: Call) => boolean; resolve: (c: Call) => void }[] = [];
  const m = {
    origin: '',
    calls,
    status: (_call: Call): number => 200,
    /** The first call `pick` accepts, answered already or still to come. */
    seen(pick: (c: Call) => boolean): Promise<Call> {
      const done = calls.find(pick);
      if (done) return Promise.resolve(done);
      return new Promise((resolve) => waiters.push({ pick, resolve }));
    },
    close: async () => undefined as unknown,
  };
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      const call = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      calls.push(call);
      res.statusCode = m.status(call);
      res.end();
      for (const w of waiters.filter((x) => x.pick(call))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(call);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  m.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  m.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return m;
}

const isReport = (c: Call) => c.url.startsWith('/reports/');
const eventOf = (c: Call) => JSON.parse(c.body) as ForwardedEvent;

function serve(database: string, env: Record<string, string>) {
  return startServer(
    loadServeConfig(
      ['--port', '0', '--host', '127.0.0.1', '--database', database, '--log-level', 'silent'],
      // Quick retries: a 500 is retried within milliseconds.
      { ZTP_TRIGGER_INITIAL_BACKOFF: '10ms', ZTP_TRIGGER_MAX_BACKOFF: '50ms', ...env },
    ),
  );
}

async function send(base: string, method: string, path: string, body: unknown) {
  return fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The documented check of docs/service-manager.md: HMAC over "t.METHOD target.body". */
function signedWith(secret: string, c: Call): boolean {
  const fields = String(c.headers['ztp-signature']).split(',');
  const t = fields.find((f) => f.startsWith('t='))?.slice(2);
  const mac = createHmac('sha256', secret).update(`${t}.${c.method} ${c.url}.${c.body}`);
  return fields.includes(`v1=${mac.digest('hex')}`);
}

/** The device's latest trigger, as the device API shows it (the console's trigger column). */
async function latestTrigger(base: string): Promise<{ id: number; type: string }> {
  const detail = (await (await fetch(`${base}/ztp/mng/${ID}`)).json()) as {
    trigger: { id: number; type: string; state: string };
  };
  return { id: detail.trigger.id, type: detail.trigger.type };
}

/** The types of a device's rows in the outbox listing, oldest first. */
async function listedTypes(base: string, deviceId: string): Promise<string[]> {
  const res = await fetch(`${base}/ztp/mng/triggers`);
  const { triggers } = (await res.json()) as { triggers: { deviceId: string; type: string }[] };
  return triggers.filter((t) => t.deviceId === deviceId).map((t) => t.type);
}

function suite(engine: string, database: () => string) {
  describe(`--report-forward (${engine})`, () => {
    it('POSTs each report signed, retries it after a 500 and across a restart, and leaves the latest trigger alone', async () => {
      const m = await scriptedManager();
      const env = {
        ZTP_MANAGER_URL: m.origin,
        ZTP_REPORT_FORWARD: `${m.origin}/reports/{id}?ip={ip}`,
        ZTP_MANAGER_SECRET: SECRET,
      };
      const firstAttempt = new Set<string>();
      // The first attempt of each report is answered 500; later ones 200.
      m.status = (c) => {
        if (!isReport(c)) return 200;
        const key = eventOf(c).event_id;
        if (firstAttempt.has(key)) return 200;
        firstAttempt.add(key);
        return 500;
      };
      try {
        let server = await serve(database(), env);
        let registration: { id: number; type: string };
        let stopped: Call;
        try {
          const reg = await send(server.url, 'PUT', `/ztp/register/AA-BB-CC-00-20-01`, {
            ip: '10.0.20.1',
            name: 'leaf 20',
            aliases: [{ type: 'serial', value: 'FOC2001' }],
          });
          assert.equal(reg.status, 201);
          const exec = await m.seen((c) => !isReport(c));
          assert.equal(`${exec.method} ${exec.url}`, 'GET /api/exec?ip=10.0.20.1');
          registration = await latestTrigger(server.url);
          assert.equal(registration.type, 'registered');

          const res = await send(server.url, 'POST', `/ztp/report/AA-BB-CC-00-20-01`, {
            type: 'bootstrap-error',
            message: 'disk full',
          });
          assert.equal(res.status, 201);
          const stored = (await res.json()) as { at: string };
          const refused = await m.seen(isReport);
          const delivered = await m.seen((c) => isReport(c) && c !== refused);
          for (const call of [refused, delivered]) {
            assert.equal(call.method, 'POST');
            assert.equal(call.url, '/reports/aa%3Abb%3Acc%3A00%3A20%3A01?ip=10.0.20.1');
            assert.equal(call.headers['content-type'], 'application/json');
            assert.ok(signedWith(SECRET, call), 'a valid ZTP-Signature');
          }
          const event = eventOf(delivered);
          assert.deepEqual(event, {
            event_id: event.event_id,
            type: 'report',
            at: stored.at,
            device: { id: ID, ip: '10.0.20.1', name: 'leaf 20', aliases: ['FOC2001'] },
            report: { type: 'bootstrap-error', message: 'disk full', at: stored.at },
          });
          assert.equal(eventOf(refused).event_id, event.event_id, 'a retry is the same event');
          assert.equal(delivered.headers['ztp-event-id'], event.event_id);
          assert.equal(delivered.headers['idempotency-key'], event.event_id);

          // The manager refuses every call now: the next report is stored, not delivered.
          m.status = () => 500;
          const next = await send(server.url, 'POST', `/ztp/report/AA-BB-CC-00-20-01`, {
            type: 'bootstrap-complete',
          });
          assert.equal(next.status, 201);
          stopped = await m.seen(
            (c) => isReport(c) && eventOf(c).report.type !== 'bootstrap-error',
          );
          assert.deepEqual(await latestTrigger(server.url), registration, 'still the registration');
        } finally {
          await server.close();
        }

        m.status = () => 200;
        const key = eventOf(stopped).event_id;
        const after = m.calls.length;
        const afterRestart = m.seen(
          (c) => isReport(c) && eventOf(c).event_id === key && m.calls.indexOf(c) >= after,
        );
        server = await serve(database(), env);
        try {
          const call = await afterRestart;
          assert.ok(signedWith(SECRET, call));
          assert.deepEqual(eventOf(call).report, {
            type: 'bootstrap-complete',
            message: '',
            at: eventOf(call).at,
          });
          assert.deepEqual(await latestTrigger(server.url), registration);
          assert.deepEqual(await listedTypes(server.url, ID), ['registered', 'report', 'report']);
        } finally {
          await server.close();
        }
      } finally {
        await m.close();
      }
    });

    it('forwards nothing without the flag', async () => {
      const m = await scriptedManager();
      try {
        const server = await serve(database(), { ZTP_MANAGER_URL: m.origin });
        try {
          const reg = await send(server.url, 'PUT', `/ztp/register/AA-BB-CC-00-21-01`, {});
          assert.equal(reg.status, 201);
          await m.seen(() => true);
          const res = await send(server.url, 'POST', `/ztp/report/AA-BB-CC-00-21-01`, {
            type: 'bootstrap-error',
          });
          assert.equal(res.status, 201);
          assert.deepEqual(await listedTypes(server.url, 'aa:bb:cc:00:21:01'), ['registered']);
        } finally {
          await server.close();
        }
        assert.equal(m.calls.length, 1, 'the registration’s call only');
      } finally {
        await m.close();
      }
    });
  });
}

describe('--report-forward configuration', () => {
  const config = (env: Record<string, string>) => () => loadServeConfig([], env);
  it('is refused without a manager URL, or on another origin than the manager', () => {
    assert.throws(
      config({ ZTP_REPORT_FORWARD: 'http://manager.example/reports' }),
      (e: unknown) => e instanceof ConfigError && e.message.includes('needs --manager-url'),
    );
    assert.throws(
      config({
        ZTP_MANAGER_URL: 'http://manager.example',
        ZTP_REPORT_FORWARD: 'http://other.example/reports',
      }),
      (e: unknown) => e instanceof ConfigError && e.message.includes("manager's origin"),
    );
    assert.equal(
      loadServeConfig([], {
        ZTP_MANAGER_URL: 'http://manager.example',
        ZTP_REPORT_FORWARD: 'http://manager.example/reports/{id}',
      }).reportForward,
      'http://manager.example/reports/{id}',
    );
  });
});

const { dir, cleanup } = tempDir();
after(cleanup);
suite('sqlite', () => join(dir, 'ztp.db'));

let pgdb: PgTestDatabase | undefined;
before(async () => {
  pgdb = await createTestDatabase('report_forward');
});
after(async () => {
  await pgdb?.drop();
});
if (process.env.ZTP_TEST_DATABASE_URL) suite('postgres', () => pgdb!.url);
else skippedPgSuite('--report-forward (postgres)');

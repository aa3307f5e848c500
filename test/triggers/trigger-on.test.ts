/**
 * What the outbox records for the manager (type, previous_ip) and --trigger-on ip-change, through
 * `ztp serve` on each engine: the last delivered ip survives a restart and trigger retention.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadServeConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { tempDir } from '../helpers.js';
import { createTestDatabase, skippedPgSuite, type PgTestDatabase } from '../pg-helpers.js';
import { Signal } from '../signal.js';

interface Received {
  url: string;
  event: { type: string; device: { id: string; ip: string; previous_ip: string | null } };
}

interface JsonManager {
  url: string;
  received: Received[];
  /** Resolves once the nth call has arrived. */
  called(n: number, what: string): Promise<unknown>;
  server: Server;
}

async function jsonManager(): Promise<JsonManager> {
  const received: Received[] = [];
  const arrived = new Signal();
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', event: JSON.parse(body) as Received['event'] });
      res.end();
      arrived.notify();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?was={previous_ip}`;
  const called = (n: number, what: string) =>
    arrived.until(() => received.length >= n, `${what} (call #${n})`, 10_000);
  return { url, received, called, server };
}

function serve(database: string, managerUrl: string, triggerOn: string) {
  return startServer(
    loadServeConfig(
      ['--port', '0', '--host', '127.0.0.1', '--database', database, '--log-level', 'silent'],
      { ZTP_MANAGER_URL: managerUrl, ZTP_MANAGER_FORMAT: 'json', ZTP_TRIGGER_ON: triggerOn },
    ),
  );
}

async function register(base: string, id: string, ip: string): Promise<void> {
  const res = await fetch(`${base}/ztp/register/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ip }),
  });
  assert.ok(res.status === 200 || res.status === 201, `registration: ${res.status}`);
}

interface ListedTrigger {
  ip: string;
  type: string;
  previousIp: string | null;
}

async function triggers(base: string): Promise<ListedTrigger[]> {
  const res = await fetch(`${base}/ztp/mng/triggers`);
  return ((await res.json()) as { triggers: ListedTrigger[] }).triggers;
}

function suite(engine: string, database: () => string) {
  describe(`--trigger-on and what the outbox records (${engine})`, () => {
    it('tells previous_ip and type; ip-change queues nothing for the delivered ip, across a restart', async () => {
      const m = await jsonManager();
      const id = 'AA-BB-CC-00-00-01';
      try {
        let server = await serve(database(), m.url, 'ip-change');
        try {
          await register(server.url, id, '10.0.0.1');
          await m.called(1, 'the first call');
          assert.equal(m.received[0]!.event.type, 'registered');
          assert.equal(m.received[0]!.event.device.previous_ip, null, 'a new device');
          assert.equal(m.received[0]!.url, '/hook?was=', 'an empty {previous_ip}');
          await register(server.url, id, '10.0.0.2');
          await m.called(2, 'the call for the new ip');
          assert.equal(m.received[1]!.event.device.previous_ip, '10.0.0.1');
          assert.equal(m.received[1]!.url, '/hook?was=10.0.0.1');
        } finally {
          await server.close();
        }

        server = await serve(database(), m.url, 'ip-change');
        try {
          assert.equal((await triggers(server.url)).length, 2);
          await register(server.url, id, '10.0.0.2');
          assert.equal((await triggers(server.url)).length, 2, 'the delivered ip: no trigger');
          const detail = await fetch(`${server.url}/ztp/mng/${id}`);
          const history = ((await detail.json()) as { history: unknown[] }).history;
          assert.equal(history.length, 3, 'the history still records it');
          const manual = await fetch(`${server.url}/ztp/mng/${id}/trigger`, { method: 'POST' });
          assert.equal(manual.status, 202);
          await m.called(3, 'the manual call');
          assert.equal(m.received[2]!.event.type, 'retriggered');
          await register(server.url, id, '10.0.0.3');
          await m.called(4, 'the call for 10.0.0.3');
          assert.equal(m.received[3]!.event.device.previous_ip, '10.0.0.2');
        } finally {
          await server.close();
        }

        // every-registration (the default) calls for the same ip again.
        server = await serve(database(), m.url, 'every-registration');
        try {
          await register(server.url, id, '10.0.0.3');
          await m.called(5, 'the call for the same ip');
          assert.equal(m.received[4]!.event.device.previous_ip, '10.0.0.3');
          const listed = await triggers(server.url);
          assert.deepEqual(
            listed.map((t) => [t.type, t.ip, t.previousIp]),
            [
              ['registered', '10.0.0.1', null],
              ['registered', '10.0.0.2', '10.0.0.1'],
              ['retriggered', '10.0.0.2', '10.0.0.2'],
              ['registered', '10.0.0.3', '10.0.0.2'],
              ['registered', '10.0.0.3', '10.0.0.3'],
            ],
            'the API shows what each call said',
          );
        } finally {
          await server.close();
        }
      } finally {
        m.server.closeAllConnections();
        await new Promise((r) => m.server.close(r));
      }
    });
  });
}

const { dir, cleanup } = tempDir();
after(cleanup);
suite('sqlite', () => join(dir, 'ztp.db'));

let pgdb: PgTestDatabase | undefined;
before(async () => {
  pgdb = await createTestDatabase('trigger_on');
});
after(async () => {
  await pgdb?.drop();
});
if (process.env.ZTP_TEST_DATABASE_URL) suite('postgres', () => pgdb!.url);
else skippedPgSuite('--trigger-on (postgres)');

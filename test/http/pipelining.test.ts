/**
 * HTTP/1.1 pipelining over a raw socket (several requests in one write): a request after a
 * state-changing one on the same connection sees its effect (RFC 9112 §9.3.2), on every store
 * engine, whether the fast lookup lane or Fastify answers it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { StoreView } from '../storage/store-view.js';
import { createTestDatabase, skippedPgSuite } from '../pg-helpers.js';
import { tempSqliteStore, testApp, type TestApp } from '../helpers.js';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses `count` HTTP/1.1 responses (Content-Length or chunked bodies) from `data`. */
function parseResponses(data: Buffer, count: number): RawAnswer[] | undefined {
  const answers: RawAnswer[] = [];
  let at = 0;
  while (answers.length < count) {
    const headEnd = data.indexOf('\r\n\r\n', at, 'latin1');
    if (headEnd < 0) return undefined;
    const [statusLine = '', ...lines] = data.toString('latin1', at, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    let bodyAt = headEnd + 4;
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const chunks: Buffer[] = [];
      for (;;) {
        const sizeEnd = data.indexOf('\r\n', bodyAt, 'latin1');
        if (sizeEnd < 0) return undefined;
        const size = parseInt(data.toString('latin1', bodyAt, sizeEnd), 16);
        if (data.length < sizeEnd + 2 + size + 2) return undefined;
        chunks.push(data.subarray(sizeEnd + 2, sizeEnd + 2 + size));
        bodyAt = sizeEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(chunks);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (data.length < bodyAt + length) return undefined;
      body = data.subarray(bodyAt, bodyAt + length);
      bodyAt += length;
    }
    answers.push({ status: Number(statusLine.split(' ')[1]), headers, body: body.toString() });
    at = bodyAt;
  }
  return answers;
}

/** Writes all `requests` in one write on one connection and reads their answers in order. */
async function pipeline(port: number, requests: string[]): Promise<RawAnswer[]> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const received: Buffer[] = [];
  try {
    const answers = new Promise<RawAnswer[]>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        const parsed = parseResponses(Buffer.concat(received), requests.length);
        if (parsed) resolve(parsed);
      });
      socket.on('close', () => reject(new Error('the server closed the connection early')));
      socket.on('error', reject);
    });
    socket.write(requests.join(''));
    return await answers;
  } finally {
    socket.destroy();
  }
}

const register = (id: string, ip: string) => {
  const body = JSON.stringify({ ip });
  return (
    `PUT /ztp/register/${id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
};
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

function pipeliningSuite(
  engine: string,
  open: () => Promise<{ store: StoreView; close: () => Promise<void> }>,
) {
  describe(`pipelined requests (${engine})`, () => {
    let t: TestApp;
    let close: () => Promise<void>;
    let port: number;
    before(async () => {
      const opened = await open();
      close = opened.close;
      t = await testApp({ store: opened.store });
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const address = t.app.server.address();
      port = typeof address === 'object' && address ? address.port : 0;
    });
    after(async () => {
      await t.close();
      await close();
    });

    it('a lookup after a registration on the same connection finds the device', async () => {
      const [reg, check] = await pipeline(port, [
        register('pl-1', '10.0.0.1'),
        get('/ztp/check/pl-1'),
      ]);
      assert.equal(reg?.status, 201);
      assert.equal(check?.status, 200, check?.body);
      assert.equal((JSON.parse(check.body) as { ip: string }).ip, '10.0.0.1');
    });

    it('100 registrations then 100 lookups: every lookup finds its device', async () => {
      const ids = Array.from({ length: 100 }, (_, i) => `pl-many-${i}`);
      const answers = await pipeline(port, [
        ...ids.map((id, i) => register(id, `10.0.1.${i}`)),
        ...ids.map((id) => get(`/ztp/check/${id}`)),
      ]);
      assert.deepEqual(
        answers.map((a) => a.status),
        [...ids.map(() => 201), ...ids.map(() => 200)],
      );
      assert.deepEqual(
        answers.slice(100).map((a) => (JSON.parse(a.body) as { ip: string }).ip),
        ids.map((_, i) => `10.0.1.${i}`),
      );
    });

    it('a lookup after the seed delete (a GET) no longer finds the device', async () => {
      const [reg] = await pipeline(port, [register('pl-del', '10.0.0.2')]);
      assert.equal(reg?.status, 201);
      const [del, check, list] = await pipeline(port, [
        get('/ztp/mng/pl-del/delete'),
        get('/ztp/check/pl-del'),
        get('/ztp/mng/list'),
      ]);
      assert.equal(del?.status, 200);
      assert.equal(check?.status, 404, check?.body);
      assert.ok(!(JSON.parse(list!.body) as { hosts: string[] }).hosts.includes('pl-del'));
    });

    it('a registration and a delete of the same device in one write apply in order', async () => {
      const [reg, del, check] = await pipeline(port, [
        register('pl-both', '10.0.0.4'),
        get('/ztp/mng/pl-both/delete'),
        get('/ztp/check/pl-both'),
      ]);
      assert.equal(reg?.status, 201);
      assert.equal(del?.status, 200, del?.body);
      assert.equal(check?.status, 404, check?.body);
    });

    it('a lookup before a registration answers what was there before it', async () => {
      const [check, reg] = await pipeline(port, [
        get('/ztp/check/pl-later'),
        register('pl-later', '10.0.0.3'),
      ]);
      assert.equal(check?.status, 404);
      assert.equal(reg?.status, 201);
    });
  });
}

pipeliningSuite('sqlite', () => {
  const { store, cleanup } = tempSqliteStore();
  return Promise.resolve({ store, close: cleanup });
});

const db = await createTestDatabase('pipelining');
if (!db) {
  skippedPgSuite('pipelined requests on PostgreSQL');
} else {
  after(() => db.drop());
  pipeliningSuite('postgres', async () => {
    const { store, cleanup } = await db.openStore();
    return { store, close: cleanup };
  });
}

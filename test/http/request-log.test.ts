/** The per-request log line: writes, errors and slow requests at info, successful reads at debug. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testApp } from '../helpers.js';

interface Line {
  msg: string;
  level: number;
  method?: string;
  url?: string;
  status?: number;
  reqId?: string;
}

async function withLog(
  level: string,
  run: (t: Awaited<ReturnType<typeof testApp>>) => Promise<void>,
) {
  const lines: Line[] = [];
  const stream = { write: (s: string) => lines.push(JSON.parse(s) as Line) };
  const t = await testApp({ app: { logger: { level, stream } } });
  try {
    await run(t);
  } finally {
    await t.close();
  }
  return lines.filter((l) => l.msg === 'request');
}

describe('per-request log line', () => {
  it('at info: one line per write and per error, none for a successful read', async () => {
    const lines = await withLog('info', async (t) => {
      const put = await t.app.inject({
        method: 'PUT',
        url: '/ztp/register/aa:bb:cc:dd:ee:01',
        payload: { ip: '10.0.0.1' },
      });
      assert.equal(put.statusCode, 201);
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/ztp/check/aa:bb:cc:dd:ee:01' })).statusCode,
        200,
      );
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/ztp/check/aa:bb:cc:dd:ee:02' })).statusCode,
        404,
      );
    });
    assert.deepEqual(
      lines.map((l) => [l.method, l.url, l.status]),
      [
        ['PUT', '/ztp/register/aa:bb:cc:dd:ee:01', 201],
        ['GET', '/ztp/check/aa:bb:cc:dd:ee:02', 404],
      ],
    );
    assert.ok(lines.every((l) => l.level === 30 && typeof l.reqId === 'string'));
  });

  it('at debug: successful reads get their line too', async () => {
    const lines = await withLog('debug', async (t) => {
      await t.app.inject({ method: 'GET', url: '/healthz' });
    });
    assert.deepEqual(
      lines.map((l) => [l.method, l.url, l.status, l.level]),
      [['GET', '/healthz', 200, 20]],
    );
  });
});

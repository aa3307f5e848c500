/**
 * src/server.ts wires the call's form: a template and the json format, a secret from the file,
 * the device lookup for name and userdata, and the call duration metric.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadServeConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { tempDir } from '../helpers.js';
import { Signal } from '../signal.js';

const SECRET = 'wiring-secret-0123456789abcdef';

describe('ztp serve with a json, signed manager call', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('POSTs the device with its name to the filled template, signed, and times the call', async () => {
    const received: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];
    const arrived = new Signal();
    const manager = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        received.push({ url: req.url ?? '', headers: req.headers, body });
        res.end();
        arrived.notify();
      });
    });
    await new Promise<void>((r) => manager.listen(0, '127.0.0.1', r));
    const managerUrl = `http://127.0.0.1:${(manager.address() as AddressInfo).port}/ztp/{name}`;
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${SECRET}\n`);
    const config = loadServeConfig(
      [
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--database',
        join(dir, 'ztp.db'),
        '--log-level',
        'silent',
      ],
      {
        ZTP_MANAGER_URL: managerUrl,
        ZTP_MANAGER_FORMAT: 'json',
        ZTP_MANAGER_SECRET_FILE: secretFile,
      },
    );
    const server = await startServer(config);
    try {
      const res = await fetch(`${server.url}/ztp/register/AA-BB-CC-DD-EE-10`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ip: '10.0.0.10', name: 'core sw/1', userdata: 'u' }),
      });
      assert.equal(res.status, 201);
      const call = await arrived.until(() => received[0], 'the manager call', 10_000);
      assert.equal(call.url, '/ztp/core%20sw%2F1');
      const event = JSON.parse(call.body) as { type: string; device: Record<string, unknown> };
      assert.equal(event.type, 'registered');
      assert.deepEqual(
        [event.device.id, event.device.ip, event.device.name, event.device.userdata],
        ['aa:bb:cc:dd:ee:10', '10.0.0.10', 'core sw/1', 'u'],
      );
      const [t, v1] = String(call.headers['ztp-signature']).split(',');
      const mac = createHmac('sha256', SECRET)
        .update(`${t!.slice(2)}.POST ${call.url}.${call.body}`)
        .digest('hex');
      assert.equal(v1, `v1=${mac}`);
      // Stopping the dispatcher waits for the call in flight to end: it has been timed by then.
      await server.dispatcher!.stop(10_000);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.ok(
        metrics.includes('ztp_manager_call_duration_seconds_count{result="2xx"} 1\n'),
        metrics,
      );
      assert.ok(!metrics.includes(SECRET));
    } finally {
      await server.close();
      manager.closeAllConnections();
      await new Promise((r) => manager.close(r));
    }
  });
});

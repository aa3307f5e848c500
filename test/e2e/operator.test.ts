/**
 * The built server (`ztp serve`) serves the console from dist/console, /metrics and the event
 * stream, and a SIGTERM ends open event streams instead of waiting for them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import { FakeManager } from '../triggers/fake-manager.js';
import { startServe, type ServeProcess } from './server-process.js';

describe('ztp serve: console, metrics, events', () => {
  let server: ServeProcess;
  let cleanup: () => void;

  before(async () => {
    const tmp = tempDir();
    cleanup = tmp.cleanup;
    server = await startServe(['--database', `${tmp.dir}/ztp.db`, '--log-level', 'warn']);
  });
  after(async () => {
    if (server.proc.exitCode === null) await server.stop();
    cleanup();
  });

  it('serves the built console page and its script', async () => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/console\/app\.js">/);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    const script = await fetch(`${server.url}/console/app.js`);
    assert.equal(script.status, 200);
    assert.ok((await script.text()).includes('/ztp/mng/events'));
  });

  it('answers /metrics and streams events; SIGTERM closes the open stream and exits 0', async () => {
    const metrics = await fetch(`${server.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^ztp_devices 0$/m);

    const stream = await fetch(`${server.url}/ztp/mng/events`);
    assert.equal(stream.status, 200);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    const put = await fetch(`${server.url}/ztp/register/e2e-1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"ip":"10.0.0.9"}',
    });
    assert.equal(put.status, 201);
    let text = '';
    while (!text.includes('event: registered')) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'stream ended early');
      text += value;
    }
    assert.equal(await server.stop(), 0);
    // The server ended the stream cleanly on shutdown.
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
  });
});

describe('ztp serve with a manager: trigger metrics and events follow real deliveries', () => {
  it('counts a retried then delivered trigger and its lag, and streams each state', async () => {
    const tmp = tempDir();
    const manager = await new FakeManager().start();
    // The first call fails (503), the retry succeeds.
    manager.mode = { kind: 'status', status: 503 };
    manager.onCall = () => (manager.mode = { kind: 'status', status: 200 });
    let server: ServeProcess | undefined;
    try {
      server = await startServe([
        '--database',
        `${tmp.dir}/ztp.db`,
        '--log-level',
        'error',
        '--manager-url',
        manager.url,
        '--trigger-initial-backoff',
        '50ms',
        '--trigger-poll-interval',
        '50ms',
      ]);
      const url = server.url;
      const stream = await fetch(`${url}/ztp/mng/events`);
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      await fetch(`${url}/ztp/register/e2e-2`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: '{"ip":"10.0.0.7"}',
      });
      let text = '';
      while (!text.includes('"state":"delivered"')) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'stream ended early');
        text += value;
      }
      const states = [...text.matchAll(/"state":"(\w+)"/g)].map((m) => m[1]);
      assert.deepEqual(states, ['pending', 'pending', 'delivered']);
      await reader.cancel();

      const metric = (body: string, line: RegExp) => Number(line.exec(body)?.[1]);
      const body = await eventually(async () => {
        const b = await (await fetch(`${url}/metrics`)).text();
        return b.includes('ztp_triggers_total{outcome="delivered"} 1') ? b : undefined;
      });
      assert.equal(metric(body, /^ztp_triggers_total\{outcome="retried"\} (\d+)$/m), 1);
      assert.equal(metric(body, /^ztp_triggers_total\{outcome="queued"\} (\d+)$/m), 1);
      assert.equal(metric(body, /^ztp_trigger_delivery_lag_seconds_count (\d+)$/m), 1);
      assert.equal(metric(body, /^ztp_registrations_total\{result="created"\} (\d+)$/m), 1);
      assert.equal(manager.calls.length, 2);
    } finally {
      await server?.stop();
      await manager.stop();
      tmp.cleanup();
    }
  });
});

/**
 * The built server (`ztp serve`) serves the console from dist/console, /metrics and the event
 * stream, and a SIGTERM ends open event streams instead of waiting for them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
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

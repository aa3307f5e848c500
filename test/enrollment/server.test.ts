/**
 * `ztp serve --enrollment-rules`: a bad file stops start-up (exit 2, the line named); SIGHUP's
 * reload replaces the rules, or keeps the previous ones and logs the error with its line.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { main as serveMain } from '../../src/cli/serve.js';
import { loadServeConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { tempDir } from '../helpers.js';

const { dir, cleanup } = tempDir();
after(cleanup);

function config(rules: string, mode = 'approve', db = 'ztp.db') {
  return loadServeConfig([
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--database',
    join(dir, db),
    '--log-level',
    'silent',
    '--enrollment',
    mode,
    '--enrollment-rules',
    rules,
  ]);
}

describe('--enrollment-rules', () => {
  it('a rules file with an error stops ztp serve with exit 2, naming its line', async () => {
    const bad = join(dir, 'bad.rules');
    writeFileSync(bad, '# lab\nserial FOC1\nmac-prefix zz:zz\n');
    const errors = mock.method(console, 'error', () => undefined);
    try {
      const code = await serveMain([
        '--port',
        '0',
        '--database',
        join(dir, 'bad.db'),
        '--enrollment',
        'approve',
        '--enrollment-rules',
        bad,
      ]);
      assert.equal(code, 2);
      const message = String(errors.mock.calls[0]?.arguments[0]);
      assert.match(message, /bad\.rules:3: 'zz:zz' is not a MAC prefix/);
    } finally {
      errors.mock.restore();
    }
  });

  it('SIGHUP reload replaces the rules; a bad file keeps the previous ones and logs the line', async () => {
    const rules = join(dir, 'lab.rules');
    writeFileSync(rules, 'serial-pattern A*\n');
    const server = await startServer(config(rules));
    const register = async (id: string) =>
      (await fetch(`${server.url}/ztp/register/${id}`, { method: 'PUT' })).status;
    try {
      assert.equal(await register('A1'), 201);
      assert.equal(await register('B1'), 202);

      writeFileSync(rules, 'serial-pattern B*\n');
      server.reload();
      assert.equal(await register('B2'), 201);
      assert.equal(await register('A2'), 202);

      writeFileSync(rules, 'serial-pattern C*\nsource 10.0.0.0/99\n');
      const logged = mock.method(server.app.log, 'error');
      server.reload();
      const messages = logged.mock.calls.map((c) =>
        String((c.arguments[0] as { err?: Error }).err?.message),
      );
      logged.mock.restore();
      assert.ok(
        messages.some((m) => m.includes('lab.rules:2:')),
        `logged: ${messages.join(' | ')}`,
      );
      assert.equal(await register('B3'), 201, 'the previous rules stay in force');
      assert.equal(await register('C1'), 202, 'nothing of the bad file is in force');
    } finally {
      await server.close();
    }
  });
});

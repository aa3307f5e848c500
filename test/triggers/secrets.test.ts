import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { loadServeConfig, optionsHelp, optionsTable, SERVE_OPTIONS } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { readManagerSecretFile } from '../../src/triggers/secret-file.js';
import { tempDir } from '../helpers.js';

const A = 'first-secret-0123456789';
const B = 'second-secret-9876543210';
const refused = (reason: RegExp) => (e: unknown) =>
  e instanceof ConfigError && reason.test(e.message);

describe('manager secrets', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads one or two secrets from a file, one per line, skipping blanks and comments', () => {
    assert.deepEqual(readManagerSecretFile(file('one', `${A}\n`)).reveal(), [A]);
    assert.deepEqual(
      readManagerSecretFile(file('two', `# rotation\n${A}\r\n\n  ${B}  \n`)).reveal(),
      [A, B],
    );
  });

  it('refuses an unreadable, empty, over-full or weak file with the reason, never the secret', () => {
    assert.throws(
      () => readManagerSecretFile(join(dir, 'missing')),
      refused(/cannot be read \(ENOENT\)/),
    );
    assert.throws(() => readManagerSecretFile(file('empty', '\n# none\n')), refused(/no secret/));
    assert.throws(
      () => readManagerSecretFile(file('three', `${A}\n${B}\nthird-secret-00000000\n`)),
      refused(/3 secrets; at most 2/),
    );
    assert.throws(
      () => readManagerSecretFile(file('short', 'hunter2\n')),
      (e) => {
        assert.ok(e instanceof ConfigError && e.message.includes('shorter than 16'));
        assert.ok(!e.message.includes('hunter2'));
        return true;
      },
    );
    if (process.getuid?.() !== 0) {
      const locked = file('locked', `${A}\n`);
      chmodSync(locked, 0);
      assert.throws(() => readManagerSecretFile(locked), refused(/cannot be read \(EACCES\)/));
    }
  });

  it('takes ZTP_MANAGER_SECRET (comma or newline separated) but never a flag value', () => {
    const env = { ZTP_MANAGER_URL: 'http://m', ZTP_MANAGER_SECRET: `${A}, ${B}` };
    assert.deepEqual(loadServeConfig([], env).managerSecret?.reveal(), [A, B]);
    assert.deepEqual(
      loadServeConfig([], { ...env, ZTP_MANAGER_SECRET: `${A}\n` }).managerSecret?.reveal(),
      [A],
    );
    for (const argv of [['--manager-secret', A], [`--manager-secret=${A}`]]) {
      assert.throws(
        () => loadServeConfig(['--manager-url', 'http://m', ...argv], {}),
        (e) => {
          assert.ok(e instanceof ConfigError && /not a flag.*ZTP_MANAGER_SECRET/.test(e.message));
          assert.ok(!e.message.includes(A));
          return true;
        },
      );
    }
    assert.throws(
      () => loadServeConfig(['--manager-secret-file', '/x'], env),
      refused(/once: --manager-secret-file .* or ZTP_MANAGER_SECRET, not both/),
    );
    assert.throws(
      () => loadServeConfig([], { ZTP_MANAGER_SECRET: A }),
      refused(/needs --manager-url/),
    );
    assert.throws(
      () => loadServeConfig([], { ...env, ZTP_MANAGER_SECRET: 'short' }),
      (e) =>
        e instanceof ConfigError &&
        e.message.includes('ZTP_MANAGER_SECRET') &&
        !e.message.includes('short,'),
    );
  });

  it('keeps the secret out of config dumps, inspection, --help and the docs table', () => {
    const config = loadServeConfig([], { ZTP_MANAGER_URL: 'http://m', ZTP_MANAGER_SECRET: A });
    for (const text of [
      JSON.stringify(config),
      inspect(config, { depth: 10 }),
      String(config.managerSecret),
    ])
      assert.ok(!text.includes(A), text);
    const help = optionsHelp(SERVE_OPTIONS);
    assert.match(help, /env ZTP_MANAGER_SECRET\n/);
    assert.ok(!help.includes('--manager-secret <value>'), 'no such flag');
    assert.match(optionsTable(SERVE_OPTIONS), /\| — \| `ZTP_MANAGER_SECRET` \|/);
  });
});

/**
 * The tokens-file options of restricted tokens (bind=, enroll, expires=, uses=, single-use): old
 * lines parse as before, new lines with colons in their values parse unambiguously, bad options
 * are named; and `ztp token create/hash` writing them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { hashToken, parseTokens, tokenLine } from '../../src/security/tokens.js';
import { tempDir } from '../helpers.js';

const H = hashToken('t');
const one = (line: string) => parseTokens(line, 'f')[0]!;

describe('tokens file options', () => {
  it('reads a line of three fields exactly as before: no restriction', () => {
    const e = one(`device:site-1:${H}`);
    assert.deepEqual(
      [e.role, e.name, e.hash.toString('hex'), e.bind, e.enroll, e.expiresAt, e.maxUses],
      ['device', 'site-1', H, undefined, undefined, undefined, undefined],
    );
  });

  it('reads bind= with a MAC in any notation, to the canonical id', () => {
    assert.equal(one(`device:sw1:${H}:bind=AA:BB:CC:DD:EE:FF`).bind, 'aa:bb:cc:dd:ee:ff');
    assert.equal(one(`device:sw1:${H}:bind=aabb.ccdd.eeff`).bind, 'aa:bb:cc:dd:ee:ff');
    assert.equal(one(`device:sw1:${H}:bind=serial:ABC-1`).bind, 'serial:ABC-1');
  });

  it('reads enroll with expires= (colons in the time) and uses= in any order', () => {
    const e = one(`device:b7:${H}:uses=50:expires=2027-01-31T18:00:00+01:00:enroll # batch 7`);
    assert.equal(e.enroll, true);
    assert.equal(e.maxUses, 50);
    assert.equal(e.expiresAt, Date.parse('2027-01-31T17:00:00Z'));
    assert.equal(one(`device:b8:${H}:enroll:single-use`).maxUses, 1);
    // In the environment variable, entries are separated by commas.
    const env = parseTokens(
      `device:a:${H}:enroll:uses=2, device:b:${hashToken('u')}:bind=x1`,
      'E',
      true,
    );
    assert.deepEqual(
      env.map((x) => [x.name, x.maxUses, x.bind]),
      [
        ['a', 2, undefined],
        ['b', undefined, 'x1'],
      ],
    );
  });

  it('allows expires= on any role', () => {
    assert.equal(
      one(`admin:alice:${H}:expires=2027-01-01T00:00:00Z`).expiresAt,
      Date.parse('2027-01-01T00:00:00Z'),
    );
  });

  it('names the line and the problem of a bad option', () => {
    const bad = (line: string, message: RegExp) =>
      assert.throws(
        () => parseTokens(`# tokens\n${line}`, 'f'),
        (e) => e instanceof ConfigError && e.message.startsWith('f:2: ') && message.test(e.message),
      );
    bad(`device:x:${H}:color=red`, /unknown option 'color=red'/);
    bad(`device:x:${H}:`, /unknown option ''/);
    bad(`device:x:${H}:bind=a:b:enroll`, /either bound to one device .* or an enrollment token/);
    bad(`device:x:${H}:bind=list`, /reserved path word/);
    bad(`device:x:${H}:bind=a b`, /device id must be/);
    bad(`admin:x:${H}:bind=a`, /for device tokens, not admin tokens/);
    bad(`device:x:${H}:uses=3`, /needs enroll/);
    bad(`device:x:${H}:enroll:uses=0`, /uses '0' must be a whole number from 1/);
    bad(`device:x:${H}:enroll:uses=3:single-use`, /option single-use is given twice/);
    bad(`device:x:${H}:enroll:expires=2027-01-01`, /ISO 8601 time with its offset/);
    bad(`device:x:${H}:enroll:expires=2027-13-01T00:00:00Z`, /ISO 8601 time/);
    bad('device:x', /expected role:name:sha256hex\[:option\]/);
  });

  it('tokenLine writes what parseTokens reads back, and refuses a bind id that would read otherwise', () => {
    const line = tokenLine('device', 'b7', 'tok', {
      enroll: true,
      maxUses: 5,
      expiresAt: 1_800_000_000_000,
    });
    assert.equal(
      line,
      `device:b7:${hashToken('tok')}:enroll:expires=2027-01-15T08:00:00.000Z:uses=5`,
    );
    const e = one(line);
    assert.deepEqual([e.enroll, e.maxUses, e.expiresAt], [true, 5, 1_800_000_000_000]);
    assert.equal(
      one(tokenLine('device', 's', 'tok', { bind: 'aa:bb:cc:dd:ee:ff' })).bind,
      'aa:bb:cc:dd:ee:ff',
    );
    assert.throws(() => tokenLine('device', 's', 'tok', { bind: 'x:single-use' }), ConfigError);
  });
});

describe('ztp token with restrictions', () => {
  const root = new URL('../../', import.meta.url).pathname;
  const cli = (args: string[], input?: string) =>
    spawnSync(process.execPath, ['bin/ztp.mjs', 'token', ...args], {
      cwd: root,
      encoding: 'utf8',
      input,
      timeout: 10_000,
    });

  it('create --bind-id writes the canonical id into the line, appended to the tokens file', () => {
    const dir = tempDir('ztp-token-opt-');
    try {
      const file = join(dir.dir, 'tokens');
      const r = cli([
        'create',
        '--role',
        'device',
        '--name',
        'sw1',
        '--bind-id',
        'AA-BB-CC-DD-EE-FF',
        '--tokens-file',
        file,
      ]);
      assert.equal(r.status, 0, r.stderr);
      const [token, line] = r.stdout.trim().split('\n') as [string, string];
      assert.equal(line, `device:sw1:${hashToken(token)}:bind=aa:bb:cc:dd:ee:ff`);
      const [entry] = parseTokens(readFileSync(file, 'utf8'), file);
      assert.equal(entry?.bind, 'aa:bb:cc:dd:ee:ff');
    } finally {
      dir.cleanup();
    }
  });

  it('create --enroll --uses --expires (a duration from now) writes an enrollment line', () => {
    const before = Date.now();
    const r = cli([
      'create',
      '--role',
      'device',
      '--name',
      'b7',
      '--enroll',
      '--uses',
      '1',
      '--expires',
      '30d',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const entry = one(r.stdout.trim().split('\n')[1]!);
    assert.equal(entry.enroll, true);
    assert.equal(entry.maxUses, 1);
    const month = 30 * 86_400_000;
    assert.ok(entry.expiresAt! >= before + month && entry.expiresAt! <= Date.now() + month);
  });

  it('hash takes the same restrictions', () => {
    const r = cli(
      ['hash', '--role', 'device', '--name', 'b9', '--enroll', '--expires', '2030-05-01T00:00:00Z'],
      'ztp_existing\n',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout.trim(),
      `device:b9:${hashToken('ztp_existing')}:enroll:expires=2030-05-01T00:00:00.000Z`,
    );
  });

  it('refuses restrictions that make no sense, with exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [['--role', 'admin', '--name', 'a', '--enroll'], /for device tokens/],
      [['--role', 'device', '--name', 'a', '--uses', '3'], /needs enroll/],
      [['--role', 'device', '--name', 'a', '--enroll', '--bind-id', 'x'], /not both/],
      [
        ['--role', 'device', '--name', 'a', '--enroll', '--expires', '2020-01-01T00:00:00Z'],
        /not in the future/,
      ],
      [['--role', 'device', '--name', 'a', '--enroll', '--expires', 'tomorrow'], /ISO 8601/],
      [['--role', 'device', '--name', 'a', '--bind-id', 'a b'], /--bind-id/],
    ];
    for (const [args, message] of cases) {
      const r = cli(['create', ...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '', 'no token is printed');
    }
  });
});

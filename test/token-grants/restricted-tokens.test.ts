/**
 * Bound and enrollment device tokens through the real app, guards and stores, on SQLite and
 * PostgreSQL: what each may register, that a refusal stores nothing, expiry on an injected clock,
 * and that the use counter survives a restart.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { DeviceService } from '../../src/devices/service.js';
import { EventBus } from '../../src/events/bus.js';
import { buildGuards } from '../../src/security/guards.js';
import { SECURITY_OFF, setupSecurity } from '../../src/security/setup.js';
import { hashToken, parseTokens, TokenSet } from '../../src/security/tokens.js';
import { openStores, type OpenedStores } from '../../src/stores.js';
import { deviceOf } from '../../src/server.js';
import { TokenAdmission } from '../../src/token-grants/admission.js';
import { ONIE_HEADERS } from '../bootstrap/fixtures.js';
import { json, tempDir } from '../helpers.js';
import { createTestDatabase, skippedPgSuite, type PgTestDatabase } from '../pg-helpers.js';

const T = {
  shared: 'ztp_shared-device-token-01',
  bound: 'ztp_bound-token-for-sw1-01',
  batch: 'ztp_batch-token-of-seven-01',
  other: 'ztp_other-batch-token-0001',
  late: 'ztp_expiring-batch-token-01',
  admin: 'ztp_admin-token-0123456789',
  boundAlias: 'ztp_bound-to-serial-of-sw2',
  boundNew: 'ztp_bound-to-serial-of-sw3',
};
const SW1 = 'aa:bb:cc:dd:ee:01';
const EXPIRES = Date.parse('2027-01-01T00:00:00Z');

const TOKENS_FILE = `
device:site:${hashToken(T.shared)}
device:sw1:${hashToken(T.bound)}:bind=${SW1.toUpperCase()}
device:batch7:${hashToken(T.batch)}:enroll:uses=2
device:batch8:${hashToken(T.other)}:enroll
device:late:${hashToken(T.late)}:enroll:expires=2027-01-01T00:00:00Z:single-use
admin:alice:${hashToken(T.admin)}
device:sw2:${hashToken(T.boundAlias)}:bind=FOC-SW2
device:sw3:${hashToken(T.boundNew)}:bind=FOC-SW3
`;

interface Running {
  app: FastifyInstance;
  stores: OpenedStores;
  clock: { now: number };
  close(): Promise<void>;
}

/** The app as server.ts wires it: the admission on the stores, the guards on the tokens. */
async function start(database: string, clock = { now: Date.parse('2026-12-05T12:00:00Z') }) {
  const stores = await openStores(database);
  const service = new DeviceService(stores, {
    triggersEnabled: false,
    historyLimit: 5,
    events: new EventBus(),
    tokenAdmission: new TokenAdmission(stores.tokenGrants, deviceOf(stores)),
    now: () => clock.now,
  });
  const tokens = new TokenSet(parseTokens(TOKENS_FILE, 'tokens'));
  const guards = buildGuards({ tokens: () => tokens, now: () => clock.now });
  const app = await buildApp({ service, guards, logger: false });
  return {
    app,
    stores,
    clock,
    close: async () => {
      await app.close();
      await stores.db.close();
    },
  } satisfies Running;
}

function register(
  r: Running,
  id: string,
  token: string,
  ip = '10.0.0.1',
  aliases: { type: string; value: string }[] = [],
) {
  return r.app.inject({
    method: 'PUT',
    url: `/ztp/register/${id}`,
    headers: { authorization: `Bearer ${token}` },
    payload: { ip, aliases },
  });
}

async function stored(r: Running, id: string): Promise<string | undefined> {
  const res = await r.app.inject({
    url: `/ztp/mng/${id}`,
    headers: { authorization: `Bearer ${T.admin}` },
  });
  return res.statusCode === 200 ? json<{ ip: string }>(res).ip : undefined;
}

function refused(res: { statusCode: number; body: string }, status: number, code: string) {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(json(res).code, code);
}

function suite(
  engine: string,
  open: () => Promise<{ database: string; done: () => Promise<void> }>,
) {
  describe(`restricted device tokens (${engine})`, () => {
    let database: string;
    let done: () => Promise<void>;
    let r: Running;
    before(async () => {
      ({ database, done } = await open());
      r = await start(database);
    });
    after(async () => {
      await r.close();
      await done();
    });

    it('a bound token registers its device (any notation) and nothing else, storing nothing', async () => {
      assert.equal((await register(r, 'AA-BB-CC-DD-EE-01', T.bound)).statusCode, 201);
      assert.equal((await register(r, SW1, T.bound, '10.0.0.2')).statusCode, 200);
      assert.equal(await stored(r, SW1), '10.0.0.2');
      const other = await register(r, 'aa:bb:cc:dd:ee:02', T.bound);
      refused(other, 403, 'token_not_for_device');
      assert.match(json<{ detail: string }>(other).detail, /bound to device 'aa:bb:cc:dd:ee:01'/);
      assert.equal(await stored(r, 'aa:bb:cc:dd:ee:02'), undefined);
      // An existing device is not moved either.
      assert.equal((await register(r, 'shared-1', T.shared, '10.1.1.1')).statusCode, 201);
      refused(await register(r, 'shared-1', T.bound, '10.6.6.6'), 403, 'token_not_for_device');
      assert.equal(await stored(r, 'shared-1'), '10.1.1.1');
    });

    it('a bound token names the device by its id or any alias, whichever it is bound to', async () => {
      const aliases = [
        { type: 'serial', value: 'FOC-SW2' },
        { type: 'mac', value: 'aa:bb:cc:dd:ee:21' },
      ];
      assert.equal(
        (await register(r, 'aa:bb:cc:dd:ee:20', T.shared, '10.0.2.1', aliases)).statusCode,
        201,
      );
      // Bound to its serial: by its primary id, its other alias, the serial itself.
      assert.equal(
        (await register(r, 'aa:bb:cc:dd:ee:20', T.boundAlias, '10.0.2.2')).statusCode,
        200,
      );
      assert.equal(
        (await register(r, 'AA-BB-CC-DD-EE-21', T.boundAlias, '10.0.2.3')).statusCode,
        200,
      );
      assert.equal((await register(r, 'FOC-SW2', T.boundAlias, '10.0.2.4')).statusCode, 200);
      assert.equal(await stored(r, 'aa:bb:cc:dd:ee:20'), '10.0.2.4');
      refused(await register(r, 'shared-1', T.boundAlias, '10.6.6.6'), 403, 'token_not_for_device');
      // Bound to a primary id (sw1): by an alias an admin gave it.
      const added = await r.app.inject({
        method: 'POST',
        url: `/ztp/mng/${SW1}/aliases`,
        headers: { authorization: `Bearer ${T.admin}` },
        payload: { type: 'serial', value: 'FOC-SW1' },
      });
      assert.equal(added.statusCode, 201, added.body);
      assert.equal((await register(r, 'FOC-SW1', T.bound, '10.0.1.9')).statusCode, 200);
      assert.equal(await stored(r, SW1), '10.0.1.9');
    });

    it('a token bound to the serial of a device not yet known admits the registration that brings it', async () => {
      const boot = (mac: string, serial: string) =>
        r.app.inject({
          url: `/ztp/bootstrap/onie?token=${T.boundNew}`,
          headers: {
            host: 'ztp.example',
            ...ONIE_HEADERS,
            'onie-eth-addr': mac,
            'onie-serial-number': serial,
          },
        });
      refused(await boot('02:00:00:00:03:01', 'FOC-OTHER'), 403, 'token_not_for_device');
      assert.equal(await stored(r, '02:00:00:00:03:01'), undefined);
      assert.equal((await boot('02:00:00:00:03:02', 'FOC-SW3')).statusCode, 200);
      assert.equal(await stored(r, 'FOC-SW3'), '127.0.0.1');
      // From then on the serial names that device, and no other device may claim it.
      assert.equal(
        (await register(r, '02:00:00:00:03:02', T.boundNew, '10.0.3.2')).statusCode,
        200,
      );
      const claim = [{ type: 'serial', value: 'FOC-SW3' }];
      refused(
        await register(r, '02:00:00:00:03:03', T.boundNew, '10.0.3.3', claim),
        403,
        'token_not_for_device',
      );
      assert.equal(await stored(r, '02:00:00:00:03:03'), undefined);
    });

    it('an enrollment token enrols up to uses=N new devices, then registers only those', async () => {
      assert.equal((await register(r, 'b7-1', T.batch)).statusCode, 201);
      assert.equal((await register(r, 'b7-2', T.batch)).statusCode, 201);
      const third = await register(r, 'b7-3', T.batch);
      refused(third, 403, 'token_used_up');
      assert.match(json<{ detail: string }>(third).detail, /batch7' has enrolled 2 of its 2/);
      assert.equal(await stored(r, 'b7-3'), undefined);
      // Its own devices keep registering (and moving) after the limit.
      assert.equal((await register(r, 'b7-1', T.batch, '10.7.0.1')).statusCode, 200);
      assert.equal(await stored(r, 'b7-1'), '10.7.0.1');
      assert.equal(await r.stores.tokenGrants.uses(hashToken(T.batch)), 2);
    });

    it("an enrollment token cannot move a device enrolled by another token, an admin's or the shared token's", async () => {
      assert.equal((await register(r, 'b8-1', T.other)).statusCode, 201);
      refused(await register(r, 'b8-1', T.batch, '10.6.6.6'), 403, 'token_not_for_device');
      refused(await register(r, 'b7-1', T.other, '10.6.6.6'), 403, 'token_not_for_device');
      assert.equal((await register(r, 'shared-2', T.shared, '10.2.2.2')).statusCode, 201);
      refused(await register(r, 'shared-2', T.other, '10.6.6.6'), 403, 'token_not_for_device');
      assert.equal(await stored(r, 'b8-1'), '10.0.0.1');
      assert.equal(await stored(r, 'b7-1'), '10.7.0.1');
      assert.equal(await stored(r, 'shared-2'), '10.2.2.2');
      // A refused attempt spends no use: batch8 (no limit) still enrolled exactly one.
      assert.equal(await r.stores.tokenGrants.uses(hashToken(T.other)), 1);
    });

    it('a device it enrolled that was deleted: re-created by it for free, by anyone else it is theirs', async () => {
      assert.equal((await register(r, 'b8-2', T.other)).statusCode, 201);
      const del = { method: 'DELETE' as const, headers: { authorization: `Bearer ${T.admin}` } };
      assert.equal((await r.app.inject({ ...del, url: '/ztp/mng/b8-2' })).statusCode, 204);
      assert.equal((await register(r, 'b8-2', T.other)).statusCode, 201);
      assert.equal(await r.stores.tokenGrants.uses(hashToken(T.other)), 2);
      assert.equal((await r.app.inject({ ...del, url: '/ztp/mng/b8-2' })).statusCode, 204);
      r.clock.now += 1000;
      assert.equal((await register(r, 'b8-2', T.shared, '10.3.3.3')).statusCode, 201);
      refused(await register(r, 'b8-2', T.other, '10.6.6.6'), 403, 'token_not_for_device');
      assert.equal(await stored(r, 'b8-2'), '10.3.3.3');
    });

    it('an expiring token works until its time, then answers 401 naming the expiry', async () => {
      r.clock.now = EXPIRES - 1;
      assert.equal((await register(r, 'late-1', T.late)).statusCode, 201);
      // single-use: one device.
      refused(await register(r, 'late-2', T.late), 403, 'token_used_up');
      r.clock.now = EXPIRES;
      const res = await register(r, 'late-1', T.late);
      refused(res, 401, 'unauthorized');
      assert.match(
        json<{ detail: string }>(res).detail,
        /'late' expired at 2027-01-01T00:00:00.000Z/,
      );
      assert.match(String(res.headers['www-authenticate']), /invalid_token/);
    });

    it('the counter survives a restart', async () => {
      await r.close();
      r = await start(database);
      assert.equal(await r.stores.tokenGrants.uses(hashToken(T.batch)), 2);
      refused(await register(r, 'b7-4', T.batch), 403, 'token_used_up');
      assert.equal((await register(r, 'b7-2', T.batch, '10.7.0.2')).statusCode, 200);
      refused(await register(r, 'b8-1', T.batch), 403, 'token_not_for_device');
    });

    it('the bootstrap fetch that registers is held to the same scope', async () => {
      const boot = (token: string, mac: string) =>
        r.app.inject({
          url: `/ztp/bootstrap/onie?token=${token}`,
          // Each switch its own serial: a serial is an alias, held by one device only.
          headers: {
            host: 'ztp.example',
            ...ONIE_HEADERS,
            'onie-eth-addr': mac,
            'onie-serial-number': `SN${mac.replace(/:/g, '')}`,
          },
        });
      refused(await boot(T.bound, '02:00:00:00:00:99'), 403, 'token_not_for_device');
      assert.equal(await stored(r, '02:00:00:00:00:99'), undefined);
      assert.equal((await boot(T.bound, SW1)).statusCode, 200);
      refused(await boot(T.batch, '02:00:00:00:00:98'), 403, 'token_used_up');
      assert.equal((await boot(T.other, '02:00:00:00:00:97')).statusCode, 200);
      assert.equal(await stored(r, '02:00:00:00:00:97'), '127.0.0.1');
    });
  });
}

suite('sqlite', () => {
  const dir = tempDir('ztp-grants-');
  return Promise.resolve({
    database: join(dir.dir, 'ztp.db'),
    done: () => {
      dir.cleanup();
      return Promise.resolve();
    },
  });
});

let pg: PgTestDatabase | undefined;
if (process.env.ZTP_TEST_DATABASE_URL) {
  suite('postgres', async () => {
    pg = await createTestDatabase('grants');
    if (!pg) throw new Error('PostgreSQL is not usable');
    return { database: pg.url, done: () => pg!.drop() };
  });
} else skippedPgSuite('restricted device tokens (postgres)');

describe('without an admission', () => {
  it('a restricted token is refused rather than let through (fail closed)', async () => {
    const dir = tempDir('ztp-grants-');
    const stores = await openStores(join(dir.dir, 'ztp.db'));
    const service = new DeviceService(stores, {
      triggersEnabled: false,
      historyLimit: 5,
      events: new EventBus(),
    });
    const tokens = new TokenSet(parseTokens(TOKENS_FILE, 'tokens'));
    const app = await buildApp({
      service,
      guards: buildGuards({ tokens: () => tokens }),
      logger: false,
    });
    try {
      const res = await app.inject({
        method: 'PUT',
        url: `/ztp/register/${SW1}`,
        headers: { authorization: `Bearer ${T.bound}` },
      });
      refused(res, 403, 'forbidden');
      const shared = await app.inject({
        method: 'PUT',
        url: `/ztp/register/${SW1}`,
        headers: { authorization: `Bearer ${T.shared}` },
      });
      assert.equal(shared.statusCode, 201);
    } finally {
      await app.close();
      await stores.db.close();
      dir.cleanup();
    }
  });
});

describe('SIGHUP', () => {
  it('a restriction added to a token line applies from the reload on', async () => {
    const dir = tempDir('ztp-grants-');
    const file = join(dir.dir, 'tokens');
    writeFileSync(file, `device:sw1:${hashToken(T.bound)}\n`);
    const security = setupSecurity({ ...SECURITY_OFF, tokensFile: file });
    const stores = await openStores(join(dir.dir, 'ztp.db'));
    const service = new DeviceService(stores, {
      triggersEnabled: false,
      historyLimit: 5,
      events: new EventBus(),
      tokenAdmission: new TokenAdmission(stores.tokenGrants),
    });
    const app = await buildApp({ service, guards: security.guards, logger: false });
    const put = (id: string) =>
      app.inject({
        method: 'PUT',
        url: `/ztp/register/${id}`,
        headers: { authorization: `Bearer ${T.bound}` },
      });
    try {
      assert.equal((await put('other-1')).statusCode, 201);
      writeFileSync(file, `device:sw1:${hashToken(T.bound)}:bind=${SW1}\n`);
      security.reload(undefined, app.log);
      refused(await put('other-1'), 403, 'token_not_for_device');
      assert.equal((await put(SW1)).statusCode, 201);
    } finally {
      await app.close();
      await stores.db.close();
      dir.cleanup();
    }
  });
});

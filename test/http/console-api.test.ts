/**
 * The console's data endpoints (devices, stats, a device's triggers), registration history
 * trimming as the detail endpoint shows it, and the console page itself (public, strict headers).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startConsoleServer, type ConsoleServer } from '../console/fixture.js';
import { TEST_ADMIN } from '../helpers.js';

interface Page {
  total: number;
  offset: number;
  limit: number;
  items: { id: string; name: string; ip: string; registrations: number; trigger: unknown }[];
}

describe('console data API', () => {
  let server: ConsoleServer;
  // A typed JSON fetch: T states what the test expects the body to be.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  const get = async <T>(path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}${path}`, { headers });
    return { status: res.status, headers: res.headers, body: (await res.json()) as T };
  };

  before(async () => {
    server = await startConsoleServer({ historyLimit: 5 });
    for (let i = 0; i < 12; i++) {
      await server.service.register(
        `dev-${String(i).padStart(2, '0')}`,
        { ip: `10.0.0.${i + 1}`, name: i % 3 === 0 ? `core-${i}` : `edge-${i}` },
        `192.0.2.${i + 1}`,
      );
    }
  });
  after(async () => server.close());

  it('pages, searches and sorts on the server', async () => {
    const first = await get<Page>('/ztp/mng/devices?limit=5');
    assert.equal(first.status, 200);
    assert.equal(first.body.total, 12);
    assert.deepEqual(
      first.body.items.map((d) => d.id),
      ['dev-00', 'dev-01', 'dev-02', 'dev-03', 'dev-04'],
    );
    const third = await get<Page>('/ztp/mng/devices?limit=5&offset=10');
    assert.deepEqual(
      third.body.items.map((d) => d.id),
      ['dev-10', 'dev-11'],
    );
    const search = await get<Page>('/ztp/mng/devices?search=CORE');
    assert.equal(search.body.total, 4);
    assert.ok(search.body.items.every((d) => d.name.startsWith('core-')));
    const byIp = await get<Page>('/ztp/mng/devices?search=10.0.0.12');
    assert.deepEqual(
      byIp.body.items.map((d) => d.id),
      ['dev-11'],
    );
    const sorted = await get<Page>('/ztp/mng/devices?sort=name&order=desc&limit=2');
    assert.deepEqual(
      sorted.body.items.map((d) => d.name),
      ['edge-8', 'edge-7'],
    );
    assert.deepEqual(first.body.items[0]!.trigger, {
      ...(first.body.items[0]!.trigger as object),
      state: 'pending',
      deviceId: 'dev-00',
    });
  });

  it('refuses bad paging, sort and filter parameters with 400 invalid_query', async () => {
    for (const q of [
      'limit=0',
      'limit=501',
      'offset=-1',
      'sort=userdata',
      'order=up',
      'trigger=broken',
      'trigger=',
    ]) {
      const res = await get<{ code: string }>(`/ztp/mng/devices?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.code, 'invalid_query', q);
    }
  });

  it('summarises the fleet', async () => {
    const res = await get<Record<string, unknown>>('/ztp/mng/stats');
    assert.equal(res.status, 200);
    assert.equal(res.body.devices, 12);
    assert.equal(res.body.registeredLastHour, 12);
    assert.equal(res.body.triggersEnabled, true);
    assert.deepEqual(res.body.triggers, { pending: 12, delivered: 0, failed: 0, dead: 0 });
  });

  it('counts devices by their latest trigger, not trigger rows, in the stats and in /metrics', async () => {
    interface Stats {
      triggers: Record<'pending' | 'delivered' | 'failed' | 'dead', number>;
    }
    const failedMetric = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('ztp_devices_by_trigger_state{state="failed"}'));
      return Number(line?.split(' ')[1]);
    };
    const before = (await get<Stats>('/ztp/mng/stats')).body.triggers;
    // dev-07's call fails, is re-queued by an operator and fails again: two failed rows, one device.
    await server.setTriggerState('dev-07', 'failed');
    await server.service.requeueTrigger('dev-07', TEST_ADMIN);
    await server.setTriggerState('dev-07', 'failed');
    const failedTwice = (await get<Stats>('/ztp/mng/stats')).body.triggers;
    assert.equal(failedTwice.failed, before.failed + 1);
    assert.equal(failedTwice.pending, before.pending - 1);
    assert.equal(await failedMetric(), failedTwice.failed);
    // Re-queued and delivered: the device no longer counts as failed, whatever its history.
    await server.service.requeueTrigger('dev-07', TEST_ADMIN);
    await server.setTriggerState('dev-07', 'delivered');
    const fixed = (await get<Stats>('/ztp/mng/stats')).body.triggers;
    assert.equal(fixed.failed, before.failed);
    assert.equal(fixed.delivered, before.delivered + 1);
    assert.equal(await failedMetric(), before.failed);
  });

  it('lists a device’s recent triggers, newest first; 404 for an unknown device', async () => {
    await server.setTriggerState('dev-05', 'failed');
    await server.service.requeueTrigger('dev-05', TEST_ADMIN);
    const res = await get<{ triggers: { state: string; lastError: string | null }[] }>(
      '/ztp/mng/devices/dev-05/triggers',
    );
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.triggers.map((t) => t.state),
      ['pending', 'failed'],
    );
    assert.equal(res.body.triggers[1]!.lastError, 'manager answered 500');
    const missing = await get<{ code: string }>('/ztp/mng/devices/nope/triggers');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'device_not_found');
  });

  it("filters by the state of each device's latest trigger", async () => {
    // Each device gets a pending trigger of its own first: earlier tests completed some.
    for (const id of ['dev-07', 'dev-08', 'dev-10'])
      await server.service.requeueTrigger(id, TEST_ADMIN);
    await server.setTriggerState('dev-07', 'failed');
    await server.setTriggerState('dev-08', 'dead');
    await server.setTriggerState('dev-10', 'failed');
    const failed = await get<Page>('/ztp/mng/devices?trigger=failed');
    assert.equal(failed.status, 200);
    assert.equal(failed.body.total, 2);
    assert.deepEqual(
      failed.body.items.map((d) => [d.id, (d.trigger as { state: string }).state]),
      [
        ['dev-07', 'failed'],
        ['dev-10', 'failed'],
      ],
    );
    const deadCore = await get<Page>('/ztp/mng/devices?trigger=dead&search=edge');
    assert.deepEqual(
      deadCore.body.items.map((d) => d.id),
      ['dev-08'],
    );
    // Re-triggered: the device's latest trigger is pending again, so it is no longer "failed".
    await server.service.requeueTrigger('dev-10', TEST_ADMIN);
    const after = await get<Page>('/ztp/mng/devices?trigger=failed');
    assert.deepEqual(
      after.body.items.map((d) => d.id),
      ['dev-07'],
    );
    const pending = await get<Page>('/ztp/mng/devices?trigger=pending&limit=1');
    assert.equal(pending.body.total, 10);
  });

  it('names the refused body member in the problem document (`field`), for the edit form', async () => {
    for (const [body, field] of [
      [{ ip: '300.1.1.1' }, 'ip'],
      [{ ip: '10.0.0.1', name: 'a\u0001b' }, 'name'],
      [{ ip: '10.0.0.1', userdata: 'a\u0000b' }, 'userdata'],
    ] as const) {
      const res = await fetch(`${server.url}/ztp/mng/dev-01`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { field?: string }).field, field);
    }
    assert.equal((await server.store.get('dev-01')).ip, '10.0.0.2');
  });

  it('keeps the last N registrations per device (time, ip, source), newest first', async () => {
    for (let i = 0; i < 8; i++) {
      await server.service.register('roamer', { ip: `10.1.0.${i}` }, `198.51.100.${i}`);
    }
    const res = await get<{
      registrations: number;
      history: { at: string; ip: string; source: string }[];
    }>('/ztp/mng/roamer');
    assert.equal(res.body.registrations, 8);
    assert.deepEqual(
      res.body.history.map((h) => [h.ip, h.source]),
      [7, 6, 5, 4, 3].map((i) => [`10.1.0.${i}`, `198.51.100.${i}`]),
    );
    const times = res.body.history.map((h) => Date.parse(h.at));
    assert.ok(times.every((t, i) => i === 0 || t <= times[i - 1]!));
  });

  it('guards the data but not the page; the page has strict security headers', async () => {
    server.auth.token = 'tok';
    try {
      for (const path of ['/ztp/mng/devices', '/ztp/mng/stats', '/ztp/mng/events', '/metrics']) {
        const res = await fetch(`${server.url}${path}`);
        assert.equal(res.status, 401, path);
        await res.body?.cancel();
      }
      const ok = await get<Page>('/ztp/mng/devices', { authorization: 'Bearer tok' });
      assert.equal(ok.status, 200);

      const page = await fetch(`${server.url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
      const html = await page.text();
      // Everything is served locally: no absolute URL in the page.
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
      const script = await fetch(`${server.url}/console/app.js`);
      assert.equal(script.status, 200);
      assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
      await script.body?.cancel();
      const missing = await fetch(`${server.url}/console/nope.js`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { code: string }).code, 'route_not_found');
    } finally {
      server.auth.token = undefined;
    }
  });
});

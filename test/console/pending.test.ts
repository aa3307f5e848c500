/**
 * The console's Pending view in Chromium against a real server in `--enrollment approve` mode:
 * the count badge, the matching rule, approve and reject (one and in bulk), the deep link.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { buildApp } from '../../src/app.js';
import { DeviceService } from '../../src/devices/service.js';
import { enrollmentPlugin } from '../../src/enrollment/routes.js';
import { RuleSet } from '../../src/enrollment/rules.js';
import { EnrollmentService } from '../../src/enrollment/service.js';
import { EventBus } from '../../src/events/bus.js';
import { operatorFeatures } from '../../src/operator.js';
import { openStores, type OpenedStores } from '../../src/stores.js';
import { tempDir } from '../helpers.js';
import { chromiumMissing, launchChromium } from './fixture.js';

const skip = chromiumMissing;

describe('console: pending approval (browser)', { skip }, () => {
  const { dir, cleanup } = tempDir();
  let stores: OpenedStores;
  let app: FastifyInstance;
  let url: string;
  let enrollment: EnrollmentService;
  let browser: Browser;

  before(async () => {
    stores = await openStores(join(dir, 'ztp.db'));
    enrollment = new EnrollmentService(stores.db, stores.enrollment, { mode: 'approve' });
    const events = new EventBus();
    const service = new DeviceService(stores, {
      triggersEnabled: true,
      historyLimit: 10,
      events,
      admission: enrollment.admission,
    });
    enrollment.attach(service);
    const operator = operatorFeatures({ service, events, processMetrics: false });
    app = await buildApp({
      service,
      logger: false,
      plugins: [enrollmentPlugin(enrollment), operator.plugin],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });

  after(async () => {
    await browser.close();
    await app.close();
    await stores.db.close();
    cleanup();
  });

  const register = async (
    id: string,
    ip: string,
    aliases: { type: string; value: string }[] = [],
  ) =>
    (
      await app.inject({
        method: 'PUT',
        url: `/ztp/register/${id}`,
        payload: { ip, name: `n-${id}`, aliases },
      })
    ).statusCode;
  const check = async (id: string) =>
    (await app.inject({ method: 'GET', url: `/ztp/check/${id}` })).statusCode;

  it('lists pending devices with a count and the matching rule; approves and rejects one and in bulk', async () => {
    for (const [id, ip] of [
      ['p-1', '10.0.0.1'],
      ['p-2', '10.0.0.2'],
      ['p-3', '10.0.0.3'],
      ['FOC-9', '10.0.0.9'],
    ] as const)
      assert.equal(await register(id, ip), 202);
    const aliases = [{ type: 'serial', value: 'FOC-7' }];
    assert.equal(await register('p-3', '10.0.0.3', aliases), 202);
    enrollment.setRules(RuleSet.parse('serial FOC-9\nserial FOC-7\n', 'lab.rules'));

    const page = await browser.newPage();
    page.setDefaultTimeout(5000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/?view=pending`);
    // The deep link opens the Pending view; the badge counts every pending device.
    await page.locator('#pending-count', { hasText: '4' }).waitFor();
    assert.equal(await page.locator('#pending-view').isVisible(), true);
    assert.equal(await page.locator('#devices-view').isVisible(), false);
    const rows = await page.locator('#pending tbody tr[data-id]').all();
    assert.deepEqual(await Promise.all(rows.map((r) => r.getAttribute('data-id'))), [
      'FOC-9',
      'p-1',
      'p-2',
      'p-3',
    ]);
    const rule = page.locator('#pending tr[data-id="FOC-9"] td[data-label="Matching rule"]');
    assert.equal(await rule.textContent(), 'serial FOC-9 (lab.rules:1)');
    assert.equal(
      await page.locator('#pending tr[data-id="p-1"] td[data-label="Matching rule"]').textContent(),
      'none',
    );
    // A rule matches an alias its registration carried.
    const p3 = page.locator('#pending tr[data-id="p-3"]');
    assert.equal(await p3.locator('td[data-label="Aliases"]').textContent(), 'serial FOC-7');
    assert.equal(
      await p3.locator('td[data-label="Matching rule"]').textContent(),
      'serial FOC-7 (lab.rules:2)',
    );

    // One: approve p-1.
    await page.getByRole('button', { name: 'Approve p-1' }).click();
    await page.locator('#pending-status', { hasText: 'Approved 1 of 1.' }).waitFor();
    await page.locator('#pending-count', { hasText: '3' }).waitFor();
    assert.equal(await check('p-1'), 200);

    // Bulk: reject p-2 and p-3.
    await page.getByLabel('Select p-2').check();
    await page.getByLabel('Select p-3').check();
    await page.getByRole('button', { name: 'Reject selected' }).click();
    await page.locator('#pending-status', { hasText: 'Rejected 2 of 2.' }).waitFor();
    await page.locator('#pending-count', { hasText: '1' }).waitFor();
    assert.equal(await register('p-2', '10.0.0.22'), 403);

    // Bulk: select all, approve.
    await page.getByLabel('Select all pending devices').check();
    assert.equal(await page.getByRole('button', { name: 'Approve selected' }).isEnabled(), true);
    await page.getByRole('button', { name: 'Approve selected' }).click();
    await page.locator('#pending-status', { hasText: 'Approved 1 of 1.' }).waitFor();
    await page.locator('#pending-count', { hasText: '0' }).waitFor();
    await page.getByText('No device is waiting for approval.').waitFor();
    assert.equal(await check('FOC-9'), 200);

    // Back to the devices: the approved ones are there, and the link no longer says pending.
    await page.getByRole('button', { name: 'Devices', exact: true }).click();
    await page.locator('#devices tbody tr[data-id="p-1"]').waitFor();
    await page.locator('#devices tbody tr[data-id="FOC-9"]').waitFor();
    assert.equal(new URL(page.url()).searchParams.get('view'), null);
    assert.deepEqual(errors, []);
    await page.close();
  });
});

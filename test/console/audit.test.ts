/**
 * The audit trail in the console's device detail, in Chromium against a real server: an edit
 * made in the console shows who did it and what changed; the deep link shows it again; the
 * console's delete is a DELETE, recorded as such.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { json } from '../helpers.js';
import {
  chromiumMissing,
  launchChromium,
  seed,
  startConsoleServer,
  type ConsoleServer,
} from './fixture.js';

const skip = chromiumMissing;

describe('console: audit trail (browser)', { skip }, () => {
  let server: ConsoleServer;
  let browser: Browser;

  before(async () => {
    server = await startConsoleServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser.close();
    await server.close();
  });

  it('shows an edit made in the console in the detail, with who and the changed fields', async () => {
    const [id] = await seed(server, 1);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(5000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/?device=${encodeURIComponent(id!)}`);
    const dialog = page.locator('#detail');
    await dialog.waitFor();
    await dialog.locator('#audit td', { hasText: 'No admin changes recorded.' }).waitFor();

    await page.getByLabel('Name', { exact: true }).fill('audited-name');
    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.getByText('Saved.').waitFor();
    const first = dialog.locator('#audit tbody tr').first();
    await first.locator('td[data-label="What"]', { hasText: 'edit · PUT /ztp/mng/:id' }).waitFor();
    assert.equal(
      await first.locator('td[data-label="Who"]').textContent(),
      'anonymous (127.0.0.1)',
    );
    const changes = await first.locator('td[data-label="Changes"]').textContent();
    assert.match(changes ?? '', /name: "sw-core-00" → "audited-name"/);
    assert.doesNotMatch(changes ?? '', /ip:/, 'only the fields that changed');

    // The deep link opens the same detail with its trail.
    await page.reload();
    await dialog.locator('#audit tbody tr td[data-label="What"]', { hasText: 'edit' }).waitFor();

    // The console deletes with DELETE, never the seed's GET delete.
    await page.locator('#delete').click();
    await page.locator('#confirm-delete-ok').click();
    await page.locator('#status', { hasText: `Deleted ${id!}.` }).waitFor();
    const trail = json(
      await server.app.inject({ method: 'GET', url: `/ztp/mng/audit?device=${id!}` }),
    ).entries as { action: string; via: string }[];
    assert.deepEqual(
      trail.map((e) => `${e.action} ${e.via}`),
      ['edit PUT /ztp/mng/:id', 'delete DELETE /ztp/mng/:id'],
    );
    assert.deepEqual(errors, []);
    await page.close();
  });
});
